//! A throwaway etcd server for tests: Debian's `etcd-server` binary (`/usr/bin/etcd`, or
//! `$VOLPLANE_TEST_ETCD`) on free loopback ports with a temporary data directory. Dropping the
//! guard kills the process (by its PID) and removes the directory, also when a test panics.
//!
//! Self-contained (std and `tempfile` only) so that other crates' tests can reuse it as is.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long etcd gets to answer `/health` after starting.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running etcd, killed and cleaned up on drop.
pub struct EtcdServer {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    data: tempfile::TempDir,
}

impl EtcdServer {
    /// The etcd binary: `$VOLPLANE_TEST_ETCD` or `/usr/bin/etcd`.
    pub fn binary() -> PathBuf {
        std::env::var_os("VOLPLANE_TEST_ETCD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
    }

    /// Starts etcd on free loopback ports and waits until it is healthy. Panics with etcd's log
    /// when it does not come up (a test cannot go on without it).
    pub fn start() -> EtcdServer {
        EtcdServer::try_start().unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// As [`EtcdServer::start`], returning what went wrong instead of panicking (for tools such
    /// as `volplane bench api --spawn-etcd`).
    pub fn try_start() -> Result<EtcdServer, String> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(format!(
                "{} not found: install Debian's etcd-server (apt-get install -y etcd-server)",
                binary.display()
            ));
        }
        // Another process may grab a port between our probe and etcd's bind: try a few times.
        let mut last_failure = String::new();
        for _attempt in 0..5 {
            let (client_port, peer_port) = (free_port(), free_port());
            let data = tempfile::Builder::new()
                .prefix("volplane-etcd-")
                .tempdir()
                .map_err(|e| format!("creating etcd's data dir: {e}"))?;
            let mut server = EtcdServer {
                child: None,
                client_port,
                peer_port,
                data,
            };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(failure) => last_failure = failure,
            }
        }
        Err(format!("etcd did not start: {last_failure}"))
    }

    /// The etcd process's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// `etcd://127.0.0.1:PORT`, as volplane's `--store` takes it.
    pub fn url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    /// `http://127.0.0.1:PORT`, as etcdctl's `--endpoints` takes it.
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Kills etcd with SIGKILL (no clean shutdown) and starts it again on the same ports and
    /// data directory.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        if let Err(failure) = self.spawn_and_wait() {
            panic!("etcd did not restart: {failure}");
        }
    }

    fn log_path(&self) -> PathBuf {
        self.data.path().join("etcd.log")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open etcd log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("etcd log: {e}"))?;
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(Self::binary())
            .arg("--name=volplane-test")
            .arg(format!(
                "--data-dir={}",
                self.data.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=volplane-test={peer}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", Self::binary().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("etcd exited with {status}: {}", self.log_tail()));
            }
            if self.healthy() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "etcd not healthy after {STARTUP_TIMEOUT:?}: {}",
            self.log_tail()
        ))
    }

    /// etcd's `/health` endpoint answers `"health":"true"`.
    fn healthy(&self) -> bool {
        let address = SocketAddr::from(([127, 0, 0, 1], self.client_port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.contains("\"health\":\"true\"")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Kills exactly the process we started, by its PID.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
        // `data` (the TempDir) is removed after this.
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("bind an ephemeral loopback port")
}
