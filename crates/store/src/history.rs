//! The in-memory history of the embedded store: a bounded ring of the most recent committed
//! events, and the notification of each newly committed revision.
//!
//! Watches replay from the ring and then follow it; lists at a past revision undo the ring's
//! events on top of the current state. Every event with a revision `>= events_from` is in the ring
//! (or has not happened yet). Events older than that are gone: after a restart (the ring starts
//! empty, so `events_from` is the revision at open + 1), when the ring is full (the oldest events
//! are dropped), and after [`History::compact`].

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::{Revision, StoreError, WatchEvent};

/// The revision of the change an event reports.
pub(crate) fn event_revision(event: &WatchEvent) -> Revision {
    match event {
        WatchEvent::Put { kv, .. } => kv.mod_revision,
        WatchEvent::Delete { revision, .. } => *revision,
        WatchEvent::Progress { revision } => *revision,
    }
}

/// The key an event is about (empty for progress notifications, which match every prefix).
fn event_key(event: &WatchEvent) -> &str {
    match event {
        WatchEvent::Put { kv, .. } => &kv.key,
        WatchEvent::Delete { prev, .. } => &prev.key,
        WatchEvent::Progress { .. } => "",
    }
}

/// Matching events after a revision, as read from the ring by a watcher.
pub(crate) struct EventsAfter {
    /// The events under the prefix, in revision order.
    pub events: Vec<WatchEvent>,
    /// Every committed change up to this revision has been looked at.
    pub scanned_to: Revision,
}

struct Ring {
    events: VecDeque<WatchEvent>,
    /// Every event with a revision >= this one is in `events` (or has not been committed yet).
    events_from: Revision,
}

impl Ring {
    fn compacted_error(&self, requested: Revision) -> StoreError {
        StoreError::Compacted {
            requested,
            compacted: self.events_from - 1,
        }
    }

    /// Index of the first event with a revision > `after`.
    fn first_after(&self, after: Revision) -> usize {
        self.events.partition_point(|e| event_revision(e) <= after)
    }

    fn last_revision(&self) -> Revision {
        self.events
            .back()
            .map(event_revision)
            .unwrap_or(self.events_from - 1)
    }
}

/// The ring of recent events and the committed-revision notification.
pub(crate) struct History {
    ring: Mutex<Ring>,
    capacity: usize,
    committed: watch::Receiver<Revision>,
}

/// The sending side of the committed-revision notification, owned by the writer. When it is
/// dropped (the store closed), watches end.
pub(crate) struct Announcer(watch::Sender<Revision>);

impl History {
    /// An empty history for a store whose last committed revision is `revision`, and the
    /// announcer to [`publish`](Self::publish) commits with.
    pub fn new(revision: Revision, capacity: usize) -> (Self, Announcer) {
        let (announcer, committed) = watch::channel(revision);
        let history = History {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                events_from: revision + 1,
            }),
            capacity: capacity.max(1),
            committed,
        };
        (history, Announcer(announcer))
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves the ring consistent (every mutation is a single
        // push/pop sequence), so a poisoned lock is still usable.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The revision of the last committed and published write.
    pub fn committed_revision(&self) -> Revision {
        *self.committed.borrow()
    }

    /// A receiver that is told about every newly committed revision, and fails once the store
    /// is closed.
    pub fn subscribe(&self) -> watch::Receiver<Revision> {
        let mut receiver = self.committed.clone();
        receiver.borrow_and_update();
        receiver
    }

    /// Records the events of one commit (in revision order) and announces `revision`, the last
    /// revision of the commit.
    pub fn publish(&self, announcer: &Announcer, events: Vec<WatchEvent>, revision: Revision) {
        let mut ring = self.ring();
        ring.events.extend(events);
        while ring.events.len() > self.capacity {
            if let Some(dropped) = ring.events.pop_front() {
                ring.events_from = ring.events_from.max(event_revision(&dropped) + 1);
            }
        }
        // Announce while holding the lock so that a watcher never sees a revision whose events
        // are not in the ring yet.
        announcer.0.send_replace(revision);
    }

    /// Forgets every event with a revision <= `revision`.
    pub fn compact(&self, revision: Revision) {
        let mut ring = self.ring();
        if revision < ring.events_from {
            return;
        }
        let drop = ring.first_after(revision);
        ring.events.drain(..drop);
        ring.events_from = revision + 1;
    }

    /// The oldest revision whose state can still be read (lists at older revisions fail).
    pub fn compacted_revision(&self) -> Revision {
        self.ring().events_from - 1
    }

    /// Up to `max` events under `prefix` with a revision > `after`, or
    /// [`StoreError::Compacted`] when some of them are no longer in the ring.
    pub fn events_after(
        &self,
        after: Revision,
        prefix: &str,
        max: usize,
    ) -> Result<EventsAfter, StoreError> {
        let ring = self.ring();
        if after + 1 < ring.events_from {
            return Err(ring.compacted_error(after));
        }
        let mut events = Vec::new();
        let mut scanned_to = after.max(ring.last_revision());
        for event in ring.events.range(ring.first_after(after)..) {
            if events.len() == max {
                // Stop at a revision boundary so that no event of a revision is skipped.
                scanned_to = event_revision(event) - 1;
                break;
            }
            if event_key(event).starts_with(prefix) {
                events.push(event.clone());
            }
        }
        Ok(EventsAfter { events, scanned_to })
    }

    /// The events under `prefix` with revisions in `(after, upto]`, for undoing them on top of
    /// the state at `upto`. `None` when the ring does not hold all of `upto` yet (the commit is
    /// being published: try again). [`StoreError::Compacted`] when events are gone.
    pub fn events_between(
        &self,
        after: Revision,
        upto: Revision,
        prefix: &str,
    ) -> Result<Option<Vec<WatchEvent>>, StoreError> {
        let ring = self.ring();
        if after + 1 < ring.events_from {
            return Err(ring.compacted_error(after));
        }
        if ring.last_revision() < upto {
            return Ok(None);
        }
        Ok(Some(
            ring.events
                .range(ring.first_after(after)..)
                .take_while(|e| event_revision(e) <= upto)
                .filter(|e| event_key(e).starts_with(prefix))
                .cloned()
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyValue;

    fn put(key: &str, revision: Revision) -> WatchEvent {
        WatchEvent::Put {
            kv: KeyValue {
                key: key.to_string(),
                value: bytes::Bytes::new(),
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        }
    }

    #[test]
    fn full_ring_drops_oldest_events_and_reports_them_compacted() {
        let (history, announcer) = History::new(0, 2);
        history.publish(
            &announcer,
            vec![put("/a", 1), put("/b", 2), put("/c", 3)],
            3,
        );
        assert_eq!(history.compacted_revision(), 1);
        assert!(matches!(
            history.events_after(0, "", 10),
            Err(StoreError::Compacted {
                requested: 0,
                compacted: 1
            })
        ));
        let after = history.events_after(1, "", 10).unwrap();
        assert_eq!(after.events.len(), 2);
        assert_eq!(after.scanned_to, 3);
    }

    #[test]
    fn events_after_filters_by_prefix_but_scans_everything() {
        let (history, announcer) = History::new(0, 10);
        history.publish(
            &announcer,
            vec![put("/a/1", 1), put("/b/1", 2), put("/a/2", 3)],
            3,
        );
        let after = history.events_after(0, "/a/", 10).unwrap();
        let revisions: Vec<_> = after.events.iter().map(event_revision).collect();
        assert_eq!(revisions, vec![1, 3]);
        assert_eq!(after.scanned_to, 3);
        let limited = history.events_after(0, "", 2).unwrap();
        assert_eq!(limited.events.len(), 2);
        assert_eq!(limited.scanned_to, 2);
    }

    #[test]
    fn history_starts_compacted_at_the_open_revision() {
        let (history, _announcer) = History::new(7, 10);
        assert_eq!(history.compacted_revision(), 7);
        assert!(history.events_after(6, "", 10).is_err());
        assert!(history.events_after(7, "", 10).unwrap().events.is_empty());
    }

    #[test]
    fn compact_forgets_events_up_to_the_revision() {
        let (history, announcer) = History::new(0, 10);
        history.publish(
            &announcer,
            vec![put("/a", 1), put("/a", 2), put("/a", 3)],
            3,
        );
        history.compact(2);
        assert_eq!(history.compacted_revision(), 2);
        assert!(history.events_after(1, "", 10).is_err());
        assert_eq!(history.events_after(2, "", 10).unwrap().events.len(), 1);
        assert_eq!(history.events_between(2, 3, "").unwrap().unwrap().len(), 1);
        assert!(history.events_between(2, 4, "").unwrap().is_none());
    }
}
