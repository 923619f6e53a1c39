//! Durability of the embedded store under SIGKILL: a child process (this test binary, re-run in
//! writer mode) writes concurrently and reports each acknowledged write; it is killed at a random
//! moment; the store is reopened and must hold every acknowledged write, with revisions that
//! keep growing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use volplane_store::Store;
use volplane_store::redb_store::RedbStore;

/// Set in the child: the store file to write to.
const WRITER_ENV: &str = "VOLPLANE_STORE_CRASH_WRITER_DB";
const TEST_NAME: &str = "redb_acknowledged_writes_survive_sigkill";
const ROUNDS: usize = 5;
/// The writer stops by itself after this many writes if nobody kills it.
const WRITER_LIMIT: usize = 20_000;

#[test]
fn redb_acknowledged_writes_survive_sigkill() {
    if let Some(path) = std::env::var_os(WRITER_ENV) {
        run_writer(path.into());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    let mut highest = 0;
    for round in 0..ROUNDS {
        let kill_after = rand::random_range(20..400);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, &path)
            .env("VOLPLANE_STORE_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Kills the child (by PID) even if an assertion below fails.
        struct KillOnDrop(std::process::Child);
        impl Drop for KillOnDrop {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let stdout = child.stdout.take().unwrap();
        let child = KillOnDrop(child);
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some(ack) = line.strip_prefix("ack ") else {
                continue;
            };
            let (key, revision) = ack.split_once(' ').unwrap();
            let revision: u64 = revision.parse().unwrap();
            assert!(
                revision > highest,
                "round {round}: revision {revision} not above {highest} from before the crash"
            );
            acknowledged.insert(key.to_string(), revision);
            seen += 1;
            if seen == kill_after {
                break;
            }
        }
        assert_eq!(seen, kill_after, "writer stopped early");
        drop(child); // SIGKILL, mid-flight writes included.

        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = RedbStore::open(&path).unwrap();
            let current = store.current_revision().await.unwrap();
            for (key, revision) in &acknowledged {
                let kv = store
                    .get(key)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("round {round}: acknowledged {key} lost"));
                assert_eq!(kv.mod_revision, *revision, "{key}");
                assert!(current >= *revision);
            }
            let next = store.create("/probe", Bytes::new()).await.unwrap();
            assert!(next > current, "revisions keep growing after a crash");
            store.delete("/probe", Some(next)).await.unwrap();
            highest = store.current_revision().await.unwrap();
        });
    }
}

/// Writer mode: 8 tasks create keys as fast as they are acknowledged, printing each ack.
fn run_writer(path: std::path::PathBuf) {
    let round = std::env::var("VOLPLANE_STORE_CRASH_ROUND").unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Arc::new(RedbStore::open(&path).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for writer in 0..8 {
            let store = store.clone();
            let round = round.clone();
            tasks.spawn(async move {
                for i in 0..WRITER_LIMIT / 8 {
                    let key = format!("/crash/{round}/{writer}/{i}");
                    let revision = store
                        .create(&key, Bytes::from(vec![b'v'; 600]))
                        .await
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {key} {revision}").unwrap();
                    out.flush().unwrap();
                }
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap();
        }
    });
}
