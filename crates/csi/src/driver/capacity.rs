//! Turning a CSI `CapacityRange` into the size of a backing image.

use super::error::{DriverError, DriverResult};
use crate::proto::CapacityRange;

/// Images are sized in whole 1 MiB units (a multiple of every block size).
pub const ALIGNMENT: u64 = 1 << 20;

/// The limits a capacity is resolved within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Used when the range asks for nothing.
    pub default: u64,
    /// The smallest image (a filesystem's minimum, or one alignment unit).
    pub minimum: u64,
    /// The largest image.
    pub maximum: u64,
}

/// The image size for `range`: the required bytes rounded up to the
/// alignment and raised to the minimum, as long as that stays within the
/// limit; OUT_OF_RANGE when no size satisfies both the range and the
/// driver's limits, INVALID_ARGUMENT for negative values.
pub fn resolve(range: Option<&CapacityRange>, limits: Limits) -> DriverResult<u64> {
    let (required, limit) = match range {
        None => (0, 0),
        Some(r) => (r.required_bytes, r.limit_bytes),
    };
    if required < 0 || limit < 0 {
        return Err(DriverError::invalid(
            "capacity_range",
            "bytes must not be negative",
        ));
    }
    let (required, limit) = (required as u64, limit as u64);
    if limit != 0 && limit < required {
        return Err(DriverError::OutOfRange(format!(
            "limit_bytes {limit} is below required_bytes {required}"
        )));
    }
    let wanted = match (required, limit) {
        (0, 0) => limits.default,
        (0, limit) => limits.default.min(limit),
        (required, _) => required,
    };
    let size = round_up(wanted.max(limits.minimum));
    if size > limits.maximum {
        return Err(DriverError::OutOfRange(format!(
            "{wanted} bytes is more than the largest volume, {} bytes",
            limits.maximum
        )));
    }
    if limit != 0 && size > limit {
        return Err(DriverError::OutOfRange(format!(
            "the smallest volume that fits is {size} bytes, above limit_bytes {limit}"
        )));
    }
    Ok(size)
}

/// Whether an existing size satisfies a range.
pub fn satisfies(size: u64, range: Option<&CapacityRange>) -> bool {
    let Some(range) = range else { return true };
    let required_ok = range.required_bytes <= 0 || size >= range.required_bytes as u64;
    let limit_ok = range.limit_bytes <= 0 || size <= range.limit_bytes as u64;
    required_ok && limit_ok
}

fn round_up(bytes: u64) -> u64 {
    bytes.div_ceil(ALIGNMENT).saturating_mul(ALIGNMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        default: 1 << 30,
        minimum: 16 << 20,
        maximum: 1 << 40,
    };

    fn range(required: i64, limit: i64) -> CapacityRange {
        CapacityRange {
            required_bytes: required,
            limit_bytes: limit,
        }
    }

    #[test]
    fn sizes_are_rounded_and_raised_to_the_minimum() {
        assert_eq!(resolve(None, LIMITS).unwrap(), 1 << 30);
        assert_eq!(resolve(Some(&range(1, 0)), LIMITS).unwrap(), 16 << 20);
        assert_eq!(
            resolve(Some(&range((64 << 20) + 1, 0)), LIMITS).unwrap(),
            65 << 20
        );
        assert_eq!(
            resolve(Some(&range(0, 32 << 20)), LIMITS).unwrap(),
            32 << 20
        );
    }

    #[test]
    fn impossible_ranges_are_out_of_range() {
        let code = |r| resolve(Some(&r), LIMITS).unwrap_err().code();
        assert_eq!(code(range(i64::MAX, 0)), tonic::Code::OutOfRange);
        assert_eq!(code(range(10 << 20, 5 << 20)), tonic::Code::OutOfRange);
        assert_eq!(code(range(0, 1 << 20)), tonic::Code::OutOfRange);
        assert_eq!(code(range(-1, 0)), tonic::Code::InvalidArgument);
    }

    #[test]
    fn existing_sizes_are_checked_against_ranges() {
        assert!(satisfies(64 << 20, Some(&range(64 << 20, 0))));
        assert!(!satisfies(64 << 20, Some(&range(65 << 20, 0))));
        assert!(!satisfies(64 << 20, Some(&range(0, 32 << 20))));
        assert!(satisfies(64 << 20, None));
    }
}
