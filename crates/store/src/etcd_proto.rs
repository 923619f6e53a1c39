//! The etcd v3 protocol subset (messages and gRPC clients), generated at build time from
//! `proto/etcd/*.proto` by `build.rs`.

#![allow(clippy::all, clippy::pedantic, missing_docs, dead_code)]

/// etcd's `mvccpb` package: stored key-values and watch events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// etcd's `etcdserverpb` package: the KV, Watch and Maintenance services.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
