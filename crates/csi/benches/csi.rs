//! `cargo bench -p volplane-csi --bench csi -- [--quick] [--no-sync] [--xfs]`
//!
//! Runs [`volplane_csi::bench`] against the `volplane-csi-driver` binary
//! started as a separate process (as an external CSI client sees it) and
//! prints a markdown report. Needs root (loop devices, mounts).
//!
//! - `--quick`: few iterations (a smoke run);
//! - `--no-sync`: the driver runs with `--sync-state=false`;
//! - `--xfs`: the state directory is on a fresh XFS filesystem (reflink on),
//!   so snapshots and clones are reflinks instead of sparse copies.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use volplane_csi::bench::{self, BenchOptions};
use volplane_csi::host::{FsKind, Host, MountOptions, image};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let dir = tempfile::Builder::new()
        .prefix("vp-bench-")
        .tempdir_in("/var/tmp")?;
    let root = dir.path().canonicalize()?;
    let result = run(&root, flag("--quick"), !flag("--no-sync"), flag("--xfs"));
    volplane_csi::host::release_everything_under(&root);
    println!("{}", result?);
    Ok(())
}

fn run(root: &Path, quick: bool, sync_state: bool, xfs: bool) -> anyhow::Result<String> {
    let work_dir = if xfs {
        xfs_work_dir(root)?
    } else {
        root.join("work")
    };
    std::fs::create_dir_all(&work_dir)?;
    let socket = work_dir.join("csi.sock");
    let mut driver = Command::new(env!("CARGO_BIN_EXE_volplane-csi-driver"))
        .arg(format!("--endpoint=unix://{}", socket.display()))
        .arg("--node-id=bench-node")
        .arg(format!("--state-dir={}", work_dir.join("state").display()))
        .arg(format!("--sync-state={sync_state}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let options = BenchOptions {
        work_dir: work_dir.clone(),
        create_delete_pairs: if quick { 200 } else { 2000 },
        node_cycles: if quick { 10 } else { 100 },
        snapshot_pairs: if quick { 10 } else { 100 },
        sync_state,
        endpoint: Some(format!("unix://{}", socket.display())),
    };
    // One thread, as a CO's sidecar issues these calls one at a time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench::run(options));
    let _ = driver.kill();
    let _ = driver.wait();
    let fs = if xfs {
        "XFS with reflink (loop-mounted)"
    } else {
        "the host filesystem"
    };
    Ok(format!("state directory on {fs}; {}", report?))
}

/// Makes a 32 GiB sparse XFS filesystem (reflink on) under `root` and
/// mounts it; `host::release_everything_under(root)` takes it down.
fn xfs_work_dir(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    let host = Host::kernel();
    let image_path = root.join("xfs.img");
    image::create_sparse(&image_path, 32 << 30)?;
    let device = host.loops.attach(&image_path, false)?;
    volplane_csi::host::filesystem::run(
        Command::new("mkfs.xfs")
            .args(["-q", "-f", "-K", "-m", "reflink=1"])
            .arg(&device),
    )
    .context("mkfs.xfs")?;
    let mount_point = root.join("xfs");
    std::fs::create_dir_all(&mount_point)?;
    host.mounter.mount(
        &device,
        &mount_point,
        FsKind::Xfs.name(),
        &MountOptions::default(),
    )?;
    Ok(mount_point.join("work"))
}
