//! WATCH: a stream of JSON events, one per line, from the watch cache.
//!
//! Semantics as kube-apiserver: without a resourceVersion (or with "0") the stream starts with
//! an ADDED event per existing object; with one it replays what happened after it, or sends an
//! in-stream 410 Expired ERROR when that is no longer known; `sendInitialEvents=true` ends the
//! initial events with a BOOKMARK annotated `k8s.io/initial-events-end`. Selectors apply to
//! transitions: an object that stops matching is DELETED for this watcher, one that starts
//! matching is ADDED. Bookmarks are sent every minute when asked for.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use volplane_api::resources::ResourceInfo;
use volplane_store::Revision;

use crate::read::Filter;
use crate::request::ResourceRequest;
use crate::server::ApiServer;
use crate::status::ApiError;
use crate::table::{IncludeObject, table};
use crate::watch_cache::{CacheEvent, CachedObject, EventType, TooOld, range_of};

const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// How a watch encodes its objects.
#[derive(Debug, Clone, Copy)]
pub enum Encoding {
    Object,
    Table(IncludeObject),
}

/// What the watch must do before streaming live events.
enum Start {
    /// ADDED for every matching object of the snapshot, then events after `revision`.
    Initial { end_bookmark: bool },
    /// Replay the ring after this revision.
    After(Revision),
}

/// The body of a watch response: chunks of JSON lines.
pub type WatchBody = std::pin::Pin<Box<dyn futures::Stream<Item = Bytes> + Send>>;

/// Starts a watch. The returned stream is the response body; the connection's own task polls
/// it, so an event costs one task wake-up per watcher (no task in between).
pub async fn start(
    server: Arc<ApiServer>,
    req: ResourceRequest,
    encoding: Encoding,
) -> Result<WatchBody, ApiError> {
    let filter = Filter::from_request(&req)?;
    let start = plan_start(&server, &req).await?;
    let timeout = req
        .query
        .u64("timeoutSeconds")?
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = req.query.flag("allowWatchBookmarks");
    let watcher = Watcher {
        resource: req.resource,
        prefix: req.resource.storage_prefix_in(filter.namespace.as_deref()),
        filter,
        encoding,
        sent_columns: false,
        bookmarks,
        pending: Vec::new(),
    };
    let open = OpenWatch::new(Arc::clone(&server.metrics));
    let events = watcher.events(server, start, open);
    Ok(Box::pin(events.take_until(tokio::time::sleep(timeout))))
}

/// Counts an open watch in the metrics for as long as its stream lives.
struct OpenWatch(Arc<crate::metrics::Metrics>);

impl OpenWatch {
    fn new(metrics: Arc<crate::metrics::Metrics>) -> OpenWatch {
        metrics.watch_started();
        OpenWatch(metrics)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.watch_ended();
    }
}

async fn plan_start(server: &ApiServer, req: &ResourceRequest) -> Result<Start, ApiError> {
    let rv = req.query.get("resourceVersion");
    if req.query.flag("sendInitialEvents") {
        if req.query.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::invalid_watch(
                "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
            ));
        }
        match rv {
            None | Some("0") => {}
            Some(rv) => wait_for(server, rv).await?,
        }
        if rv.is_none() {
            server.consistent_cache().await?;
        }
        return Ok(Start::Initial { end_bookmark: true });
    }
    match rv {
        None | Some("0") => Ok(Start::Initial {
            end_bookmark: false,
        }),
        Some(rv) => Ok(Start::After(parse_rv(rv)?)),
    }
}

fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))
}

async fn wait_for(server: &ApiServer, rv: &str) -> Result<(), ApiError> {
    let rv = parse_rv(rv)?;
    if server
        .cache
        .wait_for(rv, crate::server::CACHE_CATCH_UP)
        .await
    {
        Ok(())
    } else {
        Err(ApiError::timeout(format!(
            "Too large resource version: {rv}, current: {}",
            server.cache.current_revision()
        )))
    }
}

impl ApiError {
    fn invalid_watch(message: &str) -> ApiError {
        ApiError::new(
            422,
            "Invalid",
            format!(
                "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: {message}"
            ),
        )
    }
}

struct Watcher {
    resource: &'static ResourceInfo,
    /// The store keys of the watched resource (and namespace): the cache's events cover every
    /// resource.
    prefix: String,
    filter: Filter,
    encoding: Encoding,
    sent_columns: bool,
    bookmarks: bool,
    /// Lines not yet handed to the connection: events that arrive together leave together, so a
    /// burst costs one write (and one TLS record run) per watcher instead of one per event.
    pending: Vec<u8>,
}

/// Flush a watcher's pending lines once they reach this size, even mid-burst.
const FLUSH_AT: usize = 64 * 1024;

impl Watcher {
    fn events(
        mut self,
        server: Arc<ApiServer>,
        start: Start,
        open: OpenWatch,
    ) -> impl futures::Stream<Item = Bytes> + Send {
        async_stream::stream! {
            let _open = open;
            let (mut rx, mut seen) = match start {
                Start::Initial { end_bookmark } => {
                    let (objects, revision, rx) = server.cache.snapshot_and_subscribe();
                    let prefix = self.resource.storage_prefix_in(self.filter.namespace.as_deref());
                    for (_, obj) in range_of(&objects, &prefix) {
                        if self.filter.matches(obj) {
                            self.push(EventType::Added.as_str(), obj);
                            if self.pending.len() >= FLUSH_AT {
                                yield self.take();
                            }
                        }
                    }
                    if end_bookmark {
                        self.bookmark(revision, true);
                    }
                    (rx, revision)
                }
                Start::After(after) => match server.cache.subscribe(after) {
                    Ok((backlog, rx)) => {
                        for event in &backlog {
                            self.deliver(event);
                            if self.pending.len() >= FLUSH_AT {
                                yield self.take();
                            }
                        }
                        (rx, backlog.last().map_or(after, |e| e.rv))
                    }
                    Err(too_old) => {
                        self.expired(too_old);
                        yield self.take();
                        return;
                    }
                },
            };
            if !self.pending.is_empty() {
                yield self.take();
            }
            let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
            ticker.tick().await;
            loop {
                let received = tokio::select! {
                    received = rx.recv() => Some(received),
                    _ = ticker.tick(), if self.bookmarks => None,
                };
                let Some(received) = received else {
                    self.bookmark(seen, false);
                    yield self.take();
                    continue;
                };
                let mut next = Some(received);
                // Take everything already queued before writing once.
                while let Some(received) = next.take() {
                    match received {
                        Ok(event) if event.rv <= seen => {}
                        Ok(event) => {
                            seen = event.rv;
                            self.deliver(&event);
                        }
                        Err(RecvError::Lagged(_)) => match server.cache.subscribe(seen) {
                            // Fell behind the broadcast: catch up from the ring.
                            Ok((backlog, fresh)) => {
                                rx = fresh;
                                for event in &backlog {
                                    seen = event.rv;
                                    self.deliver(event);
                                }
                            }
                            Err(too_old) => {
                                self.expired(too_old);
                                yield self.take();
                                return;
                            }
                        },
                        Err(RecvError::Closed) => return,
                    }
                    if self.pending.len() >= FLUSH_AT {
                        yield self.take();
                    }
                    next = match rx.try_recv() {
                        Ok(event) => Some(Ok(event)),
                        Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                        Err(TryRecvError::Empty) => None,
                        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                    };
                }
                if !self.pending.is_empty() {
                    yield self.take();
                }
            }
        }
    }

    /// Queues what this watcher sees of one change, given its selectors.
    fn deliver(&mut self, event: &CacheEvent) {
        if !event.key.starts_with(&self.prefix) {
            return;
        }
        let now = self.filter.matches(&event.object);
        let before = event.prev.as_ref().is_some_and(|p| self.filter.matches(p));
        let kind = match event.kind {
            EventType::Added if now => EventType::Added,
            EventType::Modified if now && before => EventType::Modified,
            EventType::Modified if now => EventType::Added,
            EventType::Modified if before => {
                // As upstream: the object that left carries its last matching state, at the
                // revision of the change that made it leave.
                let prev = event
                    .prev
                    .as_ref()
                    .expect("`before` implies a previous object");
                self.push(EventType::Deleted.as_str(), &prev.at_revision(event.rv));
                return;
            }
            EventType::Deleted if now => EventType::Deleted,
            _ => return,
        };
        self.push(kind.as_str(), &event.object);
    }

    fn push(&mut self, kind: &str, obj: &CachedObject) {
        match self.encoding {
            Encoding::Object => {
                let object = crate::conversion::served_json(self.resource, &obj.json);
                // One allocation per burst: `take` leaves an empty buffer, and growing it by
                // doubling cost ~8 reallocations per event per watcher.
                self.pending.reserve(object.len() + 32);
                self.pending.extend_from_slice(b"{\"type\":\"");
                self.pending.extend_from_slice(kind.as_bytes());
                self.pending.extend_from_slice(b"\",\"object\":");
                self.pending.extend_from_slice(&object);
                self.pending.extend_from_slice(b"}\n");
            }
            Encoding::Table(include) => {
                let value = crate::conversion::served(self.resource, obj.value());
                let rv = obj.rv.to_string();
                let t = table(
                    self.resource,
                    &[value],
                    include,
                    &rv,
                    !self.sent_columns,
                    None,
                );
                self.sent_columns = true;
                self.push_raw(kind, t);
            }
        }
    }

    fn push_raw(&mut self, kind: &str, object: Value) {
        let line = json!({"type": kind, "object": object});
        serde_json::to_writer(&mut self.pending, &line).expect("serialises");
        self.pending.push(b'\n');
    }

    /// The pending lines as one chunk of the body.
    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.pending))
    }

    fn bookmark(&mut self, revision: Revision, initial_end: bool) {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.resource.kind, "apiVersion": self.resource.api_version(), "metadata": metadata});
        self.push_raw("BOOKMARK", object);
    }

    fn expired(&mut self, too_old: TooOld) {
        let message = format!(
            "too old resource version: {} ({})",
            too_old.requested, too_old.oldest
        );
        let status = ApiError::expired(message).to_status();
        self.push_raw("ERROR", status);
    }
}
