//! List pagination. The `next_token` is the id of the last entry returned;
//! the next page starts after it, so deleting entries between calls never
//! skips or repeats one. A token that is not an id of the listed kind was
//! not issued by the driver and is answered with ABORTED.

use super::error::{DriverError, DriverResult};

/// One page of `ids` (sorted) after `starting_token`, at most `max_entries`
/// long (0 = no limit), and the token for the next page ("" at the end).
pub fn page<'a>(
    ids: &'a [String],
    starting_token: &str,
    max_entries: i32,
    is_valid_token: fn(&str) -> bool,
) -> DriverResult<(&'a [String], String)> {
    if max_entries < 0 {
        return Err(DriverError::invalid("max_entries", "must not be negative"));
    }
    let start = if starting_token.is_empty() {
        0
    } else if is_valid_token(starting_token) {
        ids.partition_point(|id| id.as_str() <= starting_token)
    } else {
        return Err(DriverError::InvalidToken(starting_token.to_string()));
    };
    let rest = &ids[start..];
    let take = if max_entries == 0 {
        rest.len()
    } else {
        rest.len().min(max_entries as usize)
    };
    let page = &rest[..take];
    let next = if take < rest.len() {
        page.last().cloned().unwrap_or_default()
    } else {
        String::new()
    };
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        ["a1", "a2", "a3", "a4", "a5"].map(String::from).to_vec()
    }

    fn valid(token: &str) -> bool {
        token.starts_with('a')
    }

    #[test]
    fn pages_cover_every_id_once() {
        let ids = ids();
        let (first, next) = page(&ids, "", 2, valid).unwrap();
        assert_eq!(first, &ids[0..2]);
        assert_eq!(next, "a2");
        let (second, next) = page(&ids, &next, 2, valid).unwrap();
        assert_eq!(second, &ids[2..4]);
        let (last, next) = page(&ids, &next, 2, valid).unwrap();
        assert_eq!(last, &ids[4..5]);
        assert_eq!(next, "");
    }

    #[test]
    fn foreign_tokens_abort_and_negative_limits_are_invalid() {
        let ids = ids();
        assert_eq!(
            page(&ids, "zzz", 1, valid).unwrap_err().code(),
            tonic::Code::Aborted
        );
        assert_eq!(
            page(&ids, "", -1, valid).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn a_token_whose_entry_was_deleted_still_works() {
        let ids: Vec<String> = ["a1", "a3"].map(String::from).to_vec();
        let (rest, _) = page(&ids, "a2", 0, valid).unwrap();
        assert_eq!(rest, &ids[1..]);
    }
}
