//! `--spawn-etcd`: a throwaway etcd (`/usr/bin/etcd`, or `$VOLPLANE_ETCD`) on free loopback
//! ports with its data in a temp dir (on the same disk as the embedded store's), killed by its
//! PID when the benchmark ends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::baseline;
use super::readiness::free_port;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running etcd; killed and its data removed on drop.
pub struct EtcdProcess {
    child: Child,
    client_port: u16,
    _data: tempfile::TempDir,
}

impl EtcdProcess {
    /// Starts etcd and waits until `/health` says it is healthy.
    pub async fn start() -> anyhow::Result<EtcdProcess> {
        let binary = std::env::var_os("VOLPLANE_ETCD")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
        let data = baseline::temp_dir("volplane-bench-etcd-")?;
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log_path = data.path().join("etcd.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(&binary)
            .arg("--name=volplane-bench")
            .arg(format!("--data-dir={}", data.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=volplane-bench={peer}"))
            .arg("--initial-cluster-state=new")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (install Debian's etcd-server, or set VOLPLANE_ETCD)",
                    binary.display()
                )
            })?;
        let mut etcd = EtcdProcess {
            child,
            client_port,
            _data: data,
        };
        let started = Instant::now();
        loop {
            if let Some(status) = etcd.child.try_wait()? {
                bail!(
                    "etcd exited with {status} while starting; its log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            if etcd.healthy() {
                eprintln!("etcd: started {} at {}", binary.display(), etcd.url());
                return Ok(etcd);
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!("etcd was not healthy within {STARTUP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `etcd://127.0.0.1:PORT`, as `--store` takes it.
    pub fn url(&self) -> String {
        format!("etcd://127.0.0.1:{}", self.client_port)
    }

    /// etcd's `/health` answers `"health":"true"`.
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
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // Exactly the process we started, by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
