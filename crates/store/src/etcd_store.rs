//! The distributed backend: etcd v3 over gRPC (tonic), as kube-apiserver uses it.
//!
//! Keys are passed through as they are. A create is a transaction "create_revision == 0 → put";
//! an update or a delete with a precondition is "mod_revision == expected → put/delete", and
//! reads the key on failure to tell [`StoreError::NotFound`] from [`StoreError::Conflict`].
//! Revisions are etcd's: a write's revision is the response header's, a key's mod revision is
//! its `mod_revision`. Watches start at `after + 1` with `prev_kv` and progress notifications;
//! etcd's "required revision has been compacted" becomes [`StoreError::Compacted`].

use bytes::Bytes;
use tonic::transport::Channel;

use crate::etcd_proto::etcdserverpb::{
    self, CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    ResponseOp, StatusRequest, TxnRequest, TxnResponse, WatchCreateRequest, WatchRequest, compare,
    kv_client::KvClient, maintenance_client::MaintenanceClient, request_op, response_op,
    watch_client::WatchClient, watch_request,
};
use crate::etcd_proto::mvccpb;
use crate::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// The store on an etcd v3 cluster. Cheap to clone: clones share one HTTP/2 connection.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient<Channel>,
    watch: WatchClient<Channel>,
    endpoint: String,
}

impl EtcdStore {
    /// Connects to the etcd endpoint `etcd://host:port` (or `http://host:port`) and checks that
    /// it answers.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let host_port = url
            .strip_prefix("etcd://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| StoreError::Backend {
                message: format!("store URL {url:?} is not etcd://host:port"),
                indeterminate: false,
            })?;
        let endpoint = format!("http://{host_port}");
        let channel = Channel::from_shared(endpoint.clone())
            .map_err(|e| StoreError::Backend {
                message: format!("bad etcd endpoint {url:?}: {e}"),
                indeterminate: false,
            })?
            .connect()
            .await
            .map_err(|e| StoreError::Backend {
                message: format!("cannot connect to etcd at {endpoint}: {e}"),
                indeterminate: false,
            })?;
        let status = MaintenanceClient::new(channel.clone())
            .status(StatusRequest {})
            .await
            .map_err(|status| read_error(&endpoint, status))?
            .into_inner();
        tracing::info!(%endpoint, version = %status.version, "connected to etcd");
        // A whole-prefix list can be far larger than tonic's default 4 MiB message limit.
        Ok(EtcdStore {
            kv: KvClient::new(channel.clone()).max_decoding_message_size(usize::MAX),
            watch: WatchClient::new(channel).max_decoding_message_size(usize::MAX),
            endpoint,
        })
    }

    /// The revision etcd has compacted at (0 when never compacted), read by opening a watch at
    /// revision 1, which etcd answers with its compaction revision.
    async fn compaction_revision(&self) -> Result<Revision, StoreError> {
        let (requests, request_stream) = tokio::sync::mpsc::channel(1);
        let create = watch_create(b"\0".to_vec(), Vec::new(), 1);
        requests
            .send(create)
            .await
            .map_err(|_| self.backend_error("watch request stream closed"))?;
        let mut responses = self
            .watch
            .clone()
            .watch(tokio_stream::wrappers::ReceiverStream::new(request_stream))
            .await
            .map_err(|status| read_error(&self.endpoint, status))?
            .into_inner();
        // The first answer confirms the watch; a compacted start is reported by the next one,
        // which etcd sends at once. An uncompacted store sends nothing more, so wait briefly.
        for _ in 0..2 {
            let next =
                tokio::time::timeout(std::time::Duration::from_millis(500), responses.message())
                    .await;
            match next {
                Ok(Ok(Some(response))) if response.compact_revision > 0 => {
                    return Ok(to_revision(response.compact_revision));
                }
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(status)) => return Err(read_error(&self.endpoint, status)),
            }
        }
        Ok(0)
    }

    fn backend_error(&self, message: &str) -> StoreError {
        StoreError::Backend {
            message: format!("etcd at {}: {message}", self.endpoint),
            indeterminate: false,
        }
    }

    async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, StoreError> {
        self.kv
            .clone()
            .txn(request)
            .await
            .map(|response| response.into_inner())
            .map_err(|status| write_error(&self.endpoint, status))
    }

    /// Maps a failed update/delete precondition to NotFound or Conflict from the key's state.
    fn precondition_failed(key: &str, expected: Revision, current: Option<KeyValue>) -> StoreError {
        match current {
            None => StoreError::NotFound {
                key: key.to_string(),
            },
            Some(current) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                current: current.mod_revision,
            },
        }
    }

    /// Replaces or deletes `key` only if its mod revision is `expected`.
    async fn guarded(
        &self,
        key: &str,
        expected: Revision,
        write: request_op::Request,
    ) -> Result<(TxnResponse, Option<ResponseOp>), StoreError> {
        if expected == 0 {
            // No stored key has mod revision 0, but etcd compares a missing key's as 0.
            return Err(Self::precondition_failed(key, 0, self.get(key).await?));
        }
        let mut response = self
            .txn(TxnRequest {
                compare: vec![Compare {
                    result: compare::CompareResult::Equal as i32,
                    target: compare::CompareTarget::Mod as i32,
                    key: key.as_bytes().to_vec(),
                    target_union: Some(compare::TargetUnion::ModRevision(to_etcd(expected))),
                    range_end: Vec::new(),
                }],
                success: vec![RequestOp {
                    request: Some(write),
                }],
                failure: vec![RequestOp {
                    request: Some(request_op::Request::RequestRange(RangeRequest {
                        key: key.as_bytes().to_vec(),
                        ..Default::default()
                    })),
                }],
            })
            .await?;
        let first = response.responses.drain(..).next();
        if response.succeeded {
            return Ok((response, first));
        }
        let current = match first.and_then(|op| op.response) {
            Some(response_op::Response::ResponseRange(range)) => {
                range.kvs.into_iter().next().map(to_kv).transpose()?
            }
            _ => None,
        };
        Err(Self::precondition_failed(key, expected, current))
    }
}

fn to_revision(revision: i64) -> Revision {
    revision.max(0) as Revision
}

fn to_etcd(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

fn header_revision(header: Option<etcdserverpb::ResponseHeader>) -> Revision {
    header.map(|h| to_revision(h.revision)).unwrap_or(0)
}

fn to_kv(kv: mvccpb::KeyValue) -> Result<KeyValue, StoreError> {
    let key = String::from_utf8(kv.key).map_err(|e| StoreError::Backend {
        message: format!("etcd returned a key that is not UTF-8: {e}"),
        indeterminate: false,
    })?;
    Ok(KeyValue {
        key,
        value: Bytes::from(kv.value),
        create_revision: to_revision(kv.create_revision),
        mod_revision: to_revision(kv.mod_revision),
    })
}

/// The end of the key range that holds exactly the keys starting with `prefix` (etcd's
/// "prefix + 1"); `\0` (every key from the start) for an empty prefix or one of only 0xff bytes.
fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn watch_create(key: Vec<u8>, range_end: Vec<u8>, start_revision: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key,
                range_end,
                start_revision,
                progress_notify: true,
                filters: Vec::new(),
                prev_kv: true,
                watch_id: 0,
                fragment: false,
            },
        )),
    }
}

const COMPACTED: &str = "required revision has been compacted";
const FUTURE_REVISION: &str = "required revision is a future revision";

fn read_error(endpoint: &str, status: tonic::Status) -> StoreError {
    StoreError::Backend {
        message: format!("etcd at {endpoint}: {}", status.message()),
        indeterminate: false,
    }
}

/// A failed write: whether it happened is unknown when the request may have reached etcd.
fn write_error(endpoint: &str, status: tonic::Status) -> StoreError {
    use tonic::Code;
    let indeterminate = matches!(
        status.code(),
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
    );
    StoreError::Backend {
        message: format!("etcd at {endpoint}: {}", status.message()),
        indeterminate,
    }
}

fn watch_event(event: mvccpb::Event) -> Result<WatchEvent, StoreError> {
    let kv = event
        .kv
        .map(to_kv)
        .transpose()?
        .ok_or_else(|| StoreError::Backend {
            message: "etcd sent a watch event without a key".into(),
            indeterminate: false,
        })?;
    let prev = event.prev_kv.map(to_kv).transpose()?;
    if event.r#type == mvccpb::event::EventType::Delete as i32 {
        let revision = kv.mod_revision;
        // etcd leaves prev_kv out when the previous value is already compacted.
        let prev = prev.unwrap_or(KeyValue {
            key: kv.key,
            value: Bytes::new(),
            create_revision: 0,
            mod_revision: 0,
        });
        Ok(WatchEvent::Delete { prev, revision })
    } else {
        Ok(WatchEvent::Put { kv, prev })
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let response = self
            .kv
            .clone()
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .map_err(|status| read_error(&self.endpoint, status))?
            .into_inner();
        response.kvs.into_iter().next().map(to_kv).transpose()
    }

    async fn list(&self, options: ListOptions) -> Result<ListPage, StoreError> {
        let prefix = options.prefix.as_bytes();
        let start = match &options.start_after {
            Some(after) if after.as_bytes() >= prefix => {
                let mut start = after.as_bytes().to_vec();
                start.push(0);
                start
            }
            _ if prefix.is_empty() => vec![0],
            _ => prefix.to_vec(),
        };
        let requested = options.revision.map(to_etcd).unwrap_or(0);
        let result = self
            .kv
            .clone()
            .range(RangeRequest {
                key: start,
                range_end: prefix_range_end(prefix),
                limit: i64::try_from(options.limit).unwrap_or(i64::MAX),
                revision: requested,
                ..Default::default()
            })
            .await;
        let response = match result {
            Ok(response) => response.into_inner(),
            Err(status) if status.message().contains(COMPACTED) => {
                return Err(StoreError::Compacted {
                    requested: options.revision.unwrap_or(0),
                    compacted: self.compaction_revision().await?,
                });
            }
            Err(status) if status.message().contains(FUTURE_REVISION) => {
                return Err(StoreError::FutureRevision {
                    requested: options.revision.unwrap_or(0),
                    current: self.current_revision().await?,
                });
            }
            Err(status) => return Err(read_error(&self.endpoint, status)),
        };
        let items = response
            .kvs
            .into_iter()
            .map(to_kv)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListPage {
            items,
            revision: options
                .revision
                .unwrap_or_else(|| header_revision(response.header)),
            more: response.more,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision, StoreError> {
        let response = self
            .txn(TxnRequest {
                compare: vec![Compare {
                    result: compare::CompareResult::Equal as i32,
                    target: compare::CompareTarget::Create as i32,
                    key: key.as_bytes().to_vec(),
                    target_union: Some(compare::TargetUnion::CreateRevision(0)),
                    range_end: Vec::new(),
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: key.as_bytes().to_vec(),
                        value: value.to_vec(),
                        ..Default::default()
                    })),
                }],
                failure: Vec::new(),
            })
            .await?;
        if !response.succeeded {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        Ok(header_revision(response.header))
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        let put = request_op::Request::RequestPut(PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            ..Default::default()
        });
        let (response, _) = self.guarded(key, expected, put).await?;
        Ok(header_revision(response.header))
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        let request = DeleteRangeRequest {
            key: key.as_bytes().to_vec(),
            range_end: Vec::new(),
            prev_kv: true,
        };
        let (revision, deleted) = match expected {
            Some(expected) => {
                let delete = request_op::Request::RequestDeleteRange(request);
                let (response, op) = self.guarded(key, expected, delete).await?;
                let deleted = match op.and_then(|op| op.response) {
                    Some(response_op::Response::ResponseDeleteRange(deleted)) => deleted.prev_kvs,
                    _ => Vec::new(),
                };
                (header_revision(response.header), deleted)
            }
            None => {
                let response = self
                    .kv
                    .clone()
                    .delete_range(request)
                    .await
                    .map_err(|status| write_error(&self.endpoint, status))?
                    .into_inner();
                (header_revision(response.header), response.prev_kvs)
            }
        };
        match deleted.into_iter().next() {
            Some(prev) => Ok((revision, to_kv(prev)?)),
            None => Err(StoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let (requests, request_stream) = tokio::sync::mpsc::channel(1);
        let key = if prefix.is_empty() {
            vec![0]
        } else {
            prefix.as_bytes().to_vec()
        };
        let create = watch_create(key, prefix_range_end(prefix.as_bytes()), to_etcd(after + 1));
        requests
            .send(create)
            .await
            .map_err(|_| self.backend_error("watch request stream closed"))?;
        let mut responses = self
            .watch
            .clone()
            .watch(tokio_stream::wrappers::ReceiverStream::new(request_stream))
            .await
            .map_err(|status| read_error(&self.endpoint, status))?
            .into_inner();
        // Wait for etcd to confirm the watch, so that it is in place when this call returns.
        match responses.message().await {
            Ok(Some(created)) if created.compact_revision > 0 => {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted: to_revision(created.compact_revision),
                });
            }
            Ok(Some(created)) if created.canceled => {
                return Err(
                    self.backend_error(&format!("watch refused: {}", created.cancel_reason))
                );
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(self.backend_error("watch stream closed before it started")),
            Err(status) => return Err(read_error(&self.endpoint, status)),
        }
        let endpoint = self.endpoint.clone();
        Ok(Box::pin(async_stream::stream! {
            // Keeping the request side open keeps the watch alive.
            let _requests = requests;
            loop {
                let response = match responses.message().await {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        yield Err(StoreError::Backend {
                            message: format!("etcd at {endpoint}: watch stream ended"),
                            indeterminate: false,
                        });
                        break;
                    }
                    Err(status) => {
                        yield Err(read_error(&endpoint, status));
                        break;
                    }
                };
                if response.compact_revision > 0 {
                    yield Err(StoreError::Compacted {
                        requested: after,
                        compacted: to_revision(response.compact_revision),
                    });
                    break;
                }
                if response.canceled {
                    yield Err(StoreError::Backend {
                        message: format!(
                            "etcd at {endpoint}: watch canceled: {}",
                            response.cancel_reason
                        ),
                        indeterminate: false,
                    });
                    break;
                }
                if response.events.is_empty() {
                    yield Ok(WatchEvent::Progress { revision: header_revision(response.header) });
                    continue;
                }
                for event in response.events {
                    yield watch_event(event);
                }
            }
        }))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self
            .kv
            .clone()
            .range(RangeRequest {
                key: vec![0],
                limit: 1,
                count_only: true,
                ..Default::default()
            })
            .await
            .map_err(|status| read_error(&self.endpoint, status))?
            .into_inner();
        Ok(header_revision(response.header))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let result = self
            .kv
            .clone()
            .compact(CompactionRequest {
                revision: to_etcd(revision),
                physical: false,
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already compacted at or after `revision`: nothing more to forget.
            Err(status) if status.message().contains(COMPACTED) => Ok(()),
            Err(status) if status.message().contains(FUTURE_REVISION) => {
                Err(StoreError::FutureRevision {
                    requested: revision,
                    current: self.current_revision().await?,
                })
            }
            Err(status) => Err(write_error(&self.endpoint, status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_increments_the_last_byte_below_0xff() {
        assert_eq!(
            prefix_range_end(b"/registry/pods/"),
            b"/registry/pods0".to_vec()
        );
        assert_eq!(prefix_range_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }
}
