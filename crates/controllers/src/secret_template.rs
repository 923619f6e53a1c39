//! The `${token}` templates of CSI secret parameters (`csi.storage.k8s.io/*-secret-name` and
//! `-namespace` in StorageClasses and VolumeSnapshotClasses), expanded as upstream's sidecars
//! expand them with Go's `os.Expand`: `${name}` and `$name`; a `$` not followed by a name
//! stays as it is; every token the caller does not know is reported.

use std::collections::BTreeSet;

/// Expands the tokens of `template` with `lookup`. On failure, the unknown tokens, sorted.
pub fn expand<'a>(
    template: &str,
    lookup: impl Fn(&str) -> Option<&'a str>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(template.len());
    let mut missing = BTreeSet::new();
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let Some((token, consumed)) = token_at(after) else {
            out.push('$');
            rest = after;
            continue;
        };
        match lookup(token) {
            Some(value) => out.push_str(value),
            None => {
                missing.insert(token.to_string());
            }
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing.into_iter().collect())
    }
}

/// The token right after a `$` and how many bytes it takes (braces included).
fn token_at(after: &str) -> Option<(&str, usize)> {
    if let Some(braced) = after.strip_prefix('{') {
        let end = braced.find('}')?;
        return Some((&braced[..end], end + 2));
    }
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    (end > 0).then(|| (&after[..end], end))
}

/// Whether a resolved secret name is a DNS-1123 subdomain.
pub fn is_valid_name(name: &str) -> bool {
    volplane_api::validation::is_dns1123_subdomain(name).is_empty()
}

/// Whether a resolved secret namespace is a DNS-1123 label.
pub fn is_valid_namespace(namespace: &str) -> bool {
    volplane_api::validation::is_dns1123_label(namespace).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(token: &str) -> Option<&'static str> {
        match token {
            "pvc.name" => Some("data"),
            "pvc.namespace" => Some("apps"),
            _ => None,
        }
    }

    #[test]
    fn braced_and_bare_tokens_expand_and_lone_dollars_stay() {
        assert_eq!(expand("${pvc.name}-x", lookup).unwrap(), "data-x");
        assert_eq!(expand("a$ b", lookup).unwrap(), "a$ b");
        assert_eq!(expand("${unterminated", lookup).unwrap(), "${unterminated");
        assert_eq!(expand("plain", lookup).unwrap(), "plain");
    }

    #[test]
    fn unknown_tokens_are_all_reported_sorted() {
        assert_eq!(
            expand("${zeta}-${alpha}-$beta", lookup).unwrap_err(),
            vec!["alpha".to_string(), "beta".into(), "zeta".into()]
        );
    }

    #[test]
    fn names_and_namespaces_follow_dns_rules() {
        assert!(is_valid_name("a.b-c"));
        assert!(!is_valid_name("A"));
        assert!(is_valid_namespace("apps"));
        assert!(!is_valid_namespace("a.b"));
    }
}
