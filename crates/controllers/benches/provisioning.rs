//! `cargo bench -p volplane-controllers --bench provisioning`: how fast claims are
//! dynamically provisioned and bound.
//!
//! An API server in this process (embedded store), the built-in CSI driver on a unix socket
//! with durable state (fsync per record, as `volplane up` runs it), the binder and the
//! provisioner. N claims of an Immediate class are created concurrently; the time is measured
//! from the first create until a watch has seen every claim Bound (CreateVolume, the PV, and
//! the binder's four writes each). In the same run, the driver's own rate of CreateVolume
//! calls (the same N, same concurrency, straight over its socket) is the baseline.
//!
//! Environment: `VP_BENCH_COUNT` (1000), `VP_BENCH_WORKERS` (32).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use volplane_controllers::csi_drivers::Registry;
use volplane_controllers::pv_binder::{self, BinderOptions};
use volplane_controllers::{Context, ManagerConfig, provisioner};
use volplane_csi::proto;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CreateVolume straight over the socket, `count` volumes 32 at a time: the driver's own rate.
async fn driver_baseline(driver: &common::CsiDriver, count: usize) -> f64 {
    let started = Instant::now();
    stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let client = driver.client.clone();
            async move {
                let capability = proto::VolumeCapability {
                    access_type: Some(proto::volume_capability::AccessType::Mount(
                        proto::volume_capability::MountVolume::default(),
                    )),
                    access_mode: Some(proto::volume_capability::AccessMode {
                        mode: proto::volume_capability::access_mode::Mode::SingleNodeWriter as i32,
                    }),
                };
                client
                    .create_volume(proto::CreateVolumeRequest {
                        name: format!("baseline-{i}"),
                        capacity_range: Some(proto::CapacityRange {
                            required_bytes: 64 << 20,
                            limit_bytes: 0,
                        }),
                        volume_capabilities: vec![capability],
                        ..Default::default()
                    })
                    .await
                    .expect("CreateVolume");
            }
        })
        .await;
    started.elapsed().as_secs_f64()
}

async fn provision(count: usize, workers: usize) -> (f64, f64, Vec<Duration>) {
    let api = common::ApiServer::start().await;
    let driver = common::CsiDriver::start_with(|config| config.sync_state = true).await;
    let baseline_s = driver_baseline(&driver, count).await;
    let client = api.client.clone();
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "bench"}, "provisioner": volplane_csi::DRIVER_NAME,
        "volumeBindingMode": "Immediate", "reclaimPolicy": "Delete"});
    classes
        .create(
            &PostParams::default(),
            &serde_json::from_value(class).unwrap(),
        )
        .await
        .unwrap();
    let drivers = Arc::new(Registry::new());
    drivers
        .register(volplane_csi::DRIVER_NAME, &driver.endpoint())
        .unwrap();
    let ctx = Context::new(
        client.clone(),
        ManagerConfig {
            workers,
            ..ManagerConfig::default()
        },
    );
    let binder = tokio::spawn(pv_binder::run(ctx.clone(), BinderOptions::indexed(workers)));
    let provisioner = tokio::spawn(provisioner::run(ctx, drivers));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let watch = tokio::spawn(wait_all_bound(claims.clone(), count, started));
    stream::iter(0..count)
        .for_each_concurrent(32, |i| {
            let claims = claims.clone();
            async move {
                let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": format!("claim-{i}")},
                    "spec": {"storageClassName": "bench", "accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "64Mi"}}}});
                claims
                    .create(
                        &PostParams::default(),
                        &serde_json::from_value(claim).unwrap(),
                    )
                    .await
                    .expect("create claim");
            }
        })
        .await;
    let latencies = watch.await.unwrap();
    let bound_s = started.elapsed().as_secs_f64();
    binder.abort();
    provisioner.abort();
    (baseline_s, bound_s, latencies)
}

/// Each claim's time from `started` to the first time a watch sees it Bound.
async fn wait_all_bound(
    claims: Api<PersistentVolumeClaim>,
    count: usize,
    started: Instant,
) -> Vec<Duration> {
    let mut seen = HashSet::new();
    let mut latencies = Vec::with_capacity(count);
    let mut events = watcher(claims, watcher::Config::default()).boxed();
    while seen.len() < count {
        let event = events.try_next().await.expect("watch").expect("stream");
        let objects: Vec<PersistentVolumeClaim> = match event {
            watcher::Event::Apply(c) | watcher::Event::InitApply(c) => vec![c],
            _ => continue,
        };
        for claim in objects {
            let bound = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
            if bound && seen.insert(claim.metadata.name.clone().unwrap_or_default()) {
                latencies.push(started.elapsed());
            }
        }
    }
    latencies
}

fn main() {
    let count = env("VP_BENCH_COUNT", 1_000);
    let workers = env("VP_BENCH_WORKERS", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (baseline_s, bound_s, mut latencies) = runtime.block_on(provision(count, workers));
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!("## Dynamic provisioning ({count} claims, {workers} workers)\n");
    println!("| measure | result |");
    println!("| --- | --- |");
    println!(
        "| driver alone: {count} CreateVolume, 32 in flight (baseline) | {baseline_s:.2} s ({:.0}/s) |",
        count as f64 / baseline_s
    );
    println!(
        "| claims created → all Bound (provisioner + binder + API) | **{bound_s:.2} s** ({:.0} claims/s) |",
        count as f64 / bound_s
    );
    println!(
        "| time to Bound per claim | p50 {:.0} ms, p99 {:.0} ms |",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0
    );
    println!(
        "| all Bound ÷ driver alone | {:.1}× |",
        bound_s / baseline_s
    );
}
