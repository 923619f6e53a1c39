//! The controller-manager: every control loop of this crate, side by side on one API client.
//!
//! The binder also assigns the default StorageClass to class-less claims and reclaims
//! Released volumes (Retain, Recycle); the provisioner also deletes the CSI volumes of
//! Released volumes whose policy is Delete. The loops share nothing but the [`Context`] (client, recorder, configuration) and the CSI
//! driver [`Registry`]; each keeps its own watches and caches, as upstream's separate
//! controllers and sidecars do. When one loop fails for good the manager stops and reports
//! which; the caller (the binary) exits non-zero so a supervisor restarts the role, and every
//! loop resumes from the API's state (all of them are level-triggered and idempotent).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::future::select_all;

use crate::csi_drivers::Registry;
use crate::pv_binder::BinderOptions;
use crate::{
    Context, Error, csi_snapshotter, expander, protection, provisioner, pv_binder,
    snapshot_controller,
};

type LoopFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

/// Why the controller-manager stopped: the loop that failed and its error.
#[derive(Debug, thiserror::Error)]
#[error("the {name} loop stopped: {source}")]
pub struct Stopped {
    /// The loop's name (`pv-binder`, `provisioner`, …).
    pub name: &'static str,
    /// Its error.
    pub source: Error,
}

/// Runs every loop until one fails for good.
pub async fn run(ctx: Arc<Context>, drivers: Arc<Registry>) -> Result<(), Stopped> {
    let workers = ctx.config.workers;
    let loops: Vec<(&'static str, LoopFuture)> = vec![
        (
            "pv-binder",
            Box::pin(pv_binder::run(ctx.clone(), BinderOptions::indexed(workers))),
        ),
        ("protection", Box::pin(protection::run(ctx.clone()))),
        (
            "provisioner",
            Box::pin(provisioner::run(ctx.clone(), drivers.clone())),
        ),
        (
            "expander",
            Box::pin(expander::run(ctx.clone(), drivers.clone())),
        ),
        (
            "snapshot-controller",
            Box::pin(snapshot_controller::run(ctx.clone())),
        ),
        (
            "csi-snapshotter",
            Box::pin(csi_snapshotter::run(ctx.clone(), drivers.clone())),
        ),
    ];
    let (names, futures): (Vec<_>, Vec<_>) = loops.into_iter().unzip();
    tracing::info!(loops = ?names, drivers = ?drivers.names(), "controller-manager running");
    let (result, index, _rest) = select_all(futures).await;
    let name = names[index];
    match result {
        Ok(()) => Err(Stopped {
            name,
            source: Error::Invalid(format!("the {name} loop returned without an error")),
        }),
        Err(source) => Err(Stopped { name, source }),
    }
}
