//! Volume and snapshot ids. An id is derived from the CO's name
//! (`vol-`/`snap-` + 32 hex digits of SHA-256(name)), so a CreateVolume or
//! CreateSnapshot retried after a crash finds the same id, and the id is
//! safe to use as a file name.

use sha2::{Digest, Sha256};

use super::error::{DriverError, DriverResult};

const VOLUME_PREFIX: &str = "vol-";
const SNAPSHOT_PREFIX: &str = "snap-";
const DIGEST_HEX: usize = 32;
/// The specification's size limit for string fields.
pub const MAX_STRING_BYTES: usize = 128;

/// The volume id for a CreateVolume name.
pub fn volume_id(name: &str) -> String {
    format!("{VOLUME_PREFIX}{}", digest(name))
}

/// The snapshot id for a CreateSnapshot name.
pub fn snapshot_id(name: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{}", digest(name))
}

fn digest(name: &str) -> String {
    let hash = Sha256::digest(name.as_bytes());
    hash.iter()
        .take(DIGEST_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `id` is an id this driver could have issued for a volume.
pub fn is_volume_id(id: &str) -> bool {
    has_shape(id, VOLUME_PREFIX)
}

/// Whether `id` is an id this driver could have issued for a snapshot.
pub fn is_snapshot_id(id: &str) -> bool {
    has_shape(id, SNAPSHOT_PREFIX)
}

fn has_shape(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == DIGEST_HEX && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Checks a CO-chosen name: present, within the size limit, and free of
/// the control characters the specification bans.
pub fn check_name(field: &'static str, name: &str) -> DriverResult<()> {
    if name.is_empty() {
        return Err(DriverError::MissingField(field));
    }
    if name.len() > MAX_STRING_BYTES {
        return Err(DriverError::invalid(field, "longer than 128 bytes"));
    }
    let banned =
        |c: char| matches!(c as u32, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F..=0x9F);
    if name.chars().any(banned) {
        return Err(DriverError::invalid(
            field,
            "contains a banned control character",
        ));
    }
    Ok(())
}

/// Whether `id` can name a node: it becomes a directory name.
pub fn is_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_STRING_BYTES
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_recognisable() {
        let id = volume_id("pvc-1");
        assert_eq!(id, volume_id("pvc-1"));
        assert_ne!(id, volume_id("pvc-2"));
        assert!(is_volume_id(&id));
        assert!(!is_snapshot_id(&id));
        assert!(is_snapshot_id(&snapshot_id("s")));
        assert!(!is_volume_id("vol-../../etc"));
        assert!(!is_volume_id(""));
    }

    #[test]
    fn names_with_banned_characters_are_refused() {
        assert!(check_name("name", "pvc-ok").is_ok());
        assert!(matches!(
            check_name("name", ""),
            Err(DriverError::MissingField(_))
        ));
        assert!(check_name("name", "a\u{7}b").is_err());
        assert!(check_name("name", &"x".repeat(129)).is_err());
    }

    #[test]
    fn node_ids_must_be_file_name_safe() {
        assert!(is_node_id("node-1.example"));
        assert!(!is_node_id("../x"));
        assert!(!is_node_id(".."));
        assert!(!is_node_id(""));
    }
}
