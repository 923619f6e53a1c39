//! Events: how each loop tells a user what it did or why it could not (shown by
//! `kubectl describe` and by `volplane why`).
//!
//! Events are best effort, as upstream: a failure to write one is logged, never fails the
//! reconcile that wanted to write it.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

use crate::Context;

/// Whether an event reports normal progress or a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Progress (`Normal`).
    Normal,
    /// A problem the user may have to act on (`Warning`).
    Warning,
}

/// The reference an event about `object` carries in `regarding`.
pub fn reference_to<K: Resource<DynamicType = ()>>(object: &K) -> ObjectReference {
    object.object_ref(&())
}

impl Context {
    /// Writes an event about `regarding`: `reason` (upstream's PascalCase reason, e.g.
    /// `ProvisioningFailed`), `action` (what the loop was doing), `note` (the message).
    pub async fn event(
        &self,
        regarding: &ObjectReference,
        severity: Severity,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        let event = Event {
            type_: match severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: reason.to_string(),
            note: Some(truncate_note(note.into())),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(
                reason,
                object = regarding.name.as_deref().unwrap_or(""),
                %error,
                "could not write an event"
            );
        }
    }
}

/// The Events API refuses notes over 1 kB.
fn truncate_note(mut note: String) -> String {
    const MAX: usize = 1024;
    if note.len() > MAX {
        let mut end = MAX - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut_on_a_character_boundary() {
        let note = "é".repeat(600);
        let cut = truncate_note(note);
        assert!(cut.len() <= 1024);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate_note("short".into()), "short");
    }
}
