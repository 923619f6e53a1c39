//! Parsing of resource quantities (`1Gi`, `500M`, `1.5e3`, `100m`) far enough to compare sizes,
//! as the storage rules need (positive requests, no shrinking below capacity).

use std::cmp::Ordering;

/// The regular expression upstream quotes when a quantity does not parse.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity in thousandths of its unit (so `100m` CPU is exact), rounded up like
/// upstream's `Quantity` rounds fractions of the smallest unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Milli(pub i128);

impl Milli {
    pub fn is_positive(self) -> bool {
        self.0 > 0
    }
}

/// Parses a quantity string; `None` when it is not one.
pub fn parse(s: &str) -> Option<Milli> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = 0;
    for d in digits.bytes() {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(d - b'0'))?;
    }
    // value = mantissa * 10^-frac * factor; kept as numerator/denominator to stay exact.
    let mut numerator = mantissa.checked_mul(1000)?;
    let mut denominator: i128 = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
    let pow10 = |e: i32, num: &mut i128, den: &mut i128| -> Option<()> {
        if e >= 0 {
            *num = num.checked_mul(10i128.checked_pow(e.unsigned_abs())?)?;
        } else {
            *den = den.checked_mul(10i128.checked_pow(e.unsigned_abs())?)?;
        }
        Some(())
    };
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let exp = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            numerator = numerator.checked_mul(1i128 << exp)?;
        }
        "n" => pow10(-9, &mut numerator, &mut denominator)?,
        "u" => pow10(-6, &mut numerator, &mut denominator)?,
        "m" => pow10(-3, &mut numerator, &mut denominator)?,
        "k" => pow10(3, &mut numerator, &mut denominator)?,
        "M" => pow10(6, &mut numerator, &mut denominator)?,
        "G" => pow10(9, &mut numerator, &mut denominator)?,
        "T" => pow10(12, &mut numerator, &mut denominator)?,
        "P" => pow10(15, &mut numerator, &mut denominator)?,
        "E" => pow10(18, &mut numerator, &mut denominator)?,
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            pow10(e, &mut numerator, &mut denominator)?;
        }
        _ => return None,
    }
    let value = (numerator + denominator - 1) / denominator;
    Some(Milli(if negative { -value } else { value }))
}

/// A quantity of bytes (`10Gi`, `500M`), rounded up to a whole byte; `None` when it is not a
/// quantity or is negative.
pub fn to_bytes(s: &str) -> Option<u64> {
    let milli = parse(s)?.0;
    if milli < 0 {
        return None;
    }
    u64::try_from((milli + 999) / 1000).ok()
}

/// Compares two quantity strings; `None` when either does not parse.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp(&parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_decimal_suffixes() {
        assert_eq!(parse("1Gi"), Some(Milli(1_073_741_824_000)));
        assert_eq!(parse("1G"), Some(Milli(1_000_000_000_000)));
        assert_eq!(parse("1.5Gi"), Some(Milli(1_610_612_736_000)));
        assert_eq!(parse("100m"), Some(Milli(100)));
        assert_eq!(parse("1e3"), Some(Milli(1_000_000)));
        assert_eq!(parse("0"), Some(Milli(0)));
        assert_eq!(parse("-1"), Some(Milli(-1000)));
    }

    #[test]
    fn byte_quantities_round_up_to_whole_bytes() {
        assert_eq!(to_bytes("1Gi"), Some(1 << 30));
        assert_eq!(to_bytes("1.5Ki"), Some(1536));
        assert_eq!(to_bytes("500M"), Some(500_000_000));
        assert_eq!(to_bytes("100m"), Some(1));
        assert_eq!(to_bytes("-1"), None);
        assert_eq!(to_bytes("lots"), None);
    }

    #[test]
    fn garbage_is_not_a_quantity() {
        for s in ["", "Gi", "1GB", "1..0", "abc", "1 Gi"] {
            assert_eq!(parse(s), None, "{s}");
        }
    }

    #[test]
    fn compare_orders_across_units() {
        assert_eq!(compare("1Gi", "1G"), Some(Ordering::Greater));
        assert_eq!(compare("1024Mi", "1Gi"), Some(Ordering::Equal));
        assert_eq!(compare("x", "1Gi"), None);
    }
}
