//! CSI for volplane: the CSI v1.12 wire protocol (messages and gRPC services
//! generated at build time from `proto/csi.proto`), a typed client for any
//! CSI driver on a unix socket ([`client::CsiClient`]), the server side
//! ([`server`]) and the built-in `local.csi.volplane.io` driver
//! ([`driver::Driver`]): sparse backing images, loop devices, ext4/xfs,
//! bind mounts, point-in-time snapshots.
//!
//! This crate talks to CSI plugins and to the host (mounts, loop devices,
//! mkfs); it never talks to the API server or the store. Host side effects
//! go through the traits in [`host`].
//!
//! `unsafe` is denied except in the one module that issues ioctls
//! (`host::ioctl`), which says why.
#![deny(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod client;
pub mod driver;
pub mod endpoint;
pub mod host;
pub mod server;

/// The CSI v1.12 messages and services (package `csi.v1`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("csi.v1");
}

pub use client::{ClientError, ClientOptions, CsiClient};
pub use driver::{DRIVER_NAME, Driver, DriverConfig};
pub use endpoint::Endpoint;
