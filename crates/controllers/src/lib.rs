//! The control loops of the PersistentVolume lifecycle, as the `controller-manager` role runs
//! them: binding, provisioning through CSI, reclaim, protection, expansion and snapshots.
//!
//! Every loop is an ordinary client of the API server (kube-runtime watchers and reflectors);
//! none reads the store. Each module holds one loop and exposes `run(...)`, which returns only
//! on a fatal error; [`manager::run`] starts them all. The decisions each loop makes are pure
//! functions beside it, so `volplane why` can ask the same questions the loops ask.
#![forbid(unsafe_code)]

pub mod context;
pub mod csi_drivers;
pub mod csi_snapshotter;
pub mod default_class;
pub mod events;
pub mod expander;
pub mod informer;
pub mod local_static;
pub mod manager;
pub mod matching;
pub mod protection;
pub mod provisioner;
pub mod pv_binder;
pub mod pv_index;
pub mod reclaim;
pub mod secret_template;
pub mod snapshot_controller;
pub mod why;

pub use context::{Context, Error, ManagerConfig};
