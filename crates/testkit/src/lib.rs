//! The test harness every end-to-end test shares.
//!
//! [`Cluster::start`] runs `volplane up` (or any server command) on a fresh temp data directory
//! and a free loopback port, waits until it answers, and on drop kills it by PID and removes the
//! directory — also when the test fails. [`Kubectl`] runs the machine's kubectl against it with a
//! private `--cache-dir`.
#![forbid(unsafe_code)]

pub mod etcd;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running volplane server process.
pub struct Cluster {
    child: Option<Child>,
    binary: PathBuf,
    args: Vec<String>,
    /// Extra environment variables of the server process.
    env: Vec<(String, String)>,
    /// The data directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Starts `binary up --data-dir <temp> --listen 127.0.0.1:0` plus `extra` arguments.
    pub fn start(binary: &Path, extra: &[&str]) -> Cluster {
        Cluster::start_with_env(binary, extra, &[])
    }

    /// As [`Cluster::start`], with extra environment variables for the server (kept across
    /// [`Cluster::restart`]), e.g. `RUST_LOG=warn` for tests whose thousands of writes would
    /// otherwise bury a failure under info lines.
    pub fn start_with_env(binary: &Path, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        Cluster::start_role(binary, "up", extra, env)
    }

    /// As [`Cluster::start_with_env`] for another server command, e.g. `apiserver` (just the
    /// API, for tests that run the other roles as processes of their own).
    pub fn start_role(binary: &Path, role: &str, extra: &[&str], env: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("volplane-test-")
            .tempdir()
            .expect("temp dir");
        let mut args = vec![
            role.to_string(),
            "--data-dir".into(),
            dir.path().display().to_string(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut cluster = Cluster {
            child: None,
            binary: binary.to_path_buf(),
            args,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
            url: String::new(),
            kubeconfig: PathBuf::new(),
        };
        cluster.spawn();
        cluster
    }

    fn spawn(&mut self) {
        let mut child = Command::new(&self.binary)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting volplane");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut url = None;
        let mut kubeconfig = None;
        while url.is_none() || kubeconfig.is_none() {
            assert!(Instant::now() < deadline, "volplane did not start in time");
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!(
                    "volplane exited before it was serving: {:?}",
                    child.try_wait()
                ),
            };
            if let Some(u) = line.strip_prefix("volplane is serving on ") {
                url = Some(u.trim().to_string());
            }
            if let Some(k) = line.strip_prefix("export KUBECONFIG=") {
                kubeconfig = Some(PathBuf::from(k.trim()));
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.url = url.expect("checked above");
        self.kubeconfig = kubeconfig.expect("checked above");
        self.child = Some(child);
    }

    /// The listen address as `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("https://").to_string()
    }

    /// Kills the server with SIGKILL (no chance to flush anything) and waits for it.
    pub fn kill9(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// Starts the server again on the same data directory and port.
    pub fn restart(&mut self) {
        self.kill9();
        let listen = self.addr();
        if let Some(i) = self.args.iter().position(|a| a == "--listen") {
            self.args[i + 1] = listen;
        }
        self.spawn();
    }

    /// The PID of the server process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A kubectl bound to this cluster.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(&self.kubeconfig)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// SIGKILLs the process in `child`, if any, and waits for it (no zombie is left).
fn kill_and_reap(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Another process of a test (a controller-manager, a CSI driver): killed with SIGKILL on
/// drop, also when the test fails.
pub struct Daemon {
    binary: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl Daemon {
    /// Starts `binary args…` with stdout discarded and stderr inherited.
    pub fn start(binary: &Path, args: &[String]) -> Daemon {
        let mut daemon = Daemon {
            binary: binary.to_path_buf(),
            args: args.to_vec(),
            child: None,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting a volplane process");
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// Kills the process (if running) and starts it again with the same arguments.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The machine's kubectl with this cluster's kubeconfig and a private discovery cache.
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    pub fn new(kubeconfig: &Path) -> Kubectl {
        let cache = tempfile::Builder::new()
            .prefix("volplane-kubectl-cache-")
            .tempdir()
            .expect("temp dir");
        Kubectl {
            kubeconfig: kubeconfig.to_path_buf(),
            cache,
        }
    }

    /// A kubectl command with the cluster's flags, ready for more arguments.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path());
        cmd
    }

    /// Runs kubectl with `args` (and `stdin` as its input), returning its output.
    pub fn run_with_input(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("running kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(input.as_bytes())
                .expect("writing kubectl's input");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns its stdout; panics with stderr when it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with_input(args, None)
    }

    /// As [`Kubectl::ok`], feeding `stdin`.
    pub fn ok_with_input(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_with_input(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure and returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run_with_input(args, stdin);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded but should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Puts the finalizer `example.com/hold` on an object, so its deletion waits.
    /// `object`: what `kubectl patch` takes before its flags (`configmap x -n ns`).
    pub fn hold(&self, object: &[&str]) {
        self.patch(
            object,
            "merge",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        );
    }

    /// Removes every finalizer of an object, letting a pending deletion finish.
    pub fn release(&self, object: &[&str]) {
        self.patch(
            object,
            "json",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        );
    }

    fn patch(&self, object: &[&str], patch_type: &str, patch: &str) {
        let mut args = vec!["patch"];
        args.extend_from_slice(object);
        args.extend_from_slice(&["--type", patch_type, "-p", patch]);
        self.ok(&args);
    }

    /// `kubectl get … -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl printed JSON")
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    /// A kube-rs configuration from this cluster's kubeconfig.
    pub async fn kube_config(&self) -> kube::Config {
        kube_config_for(&self.kubeconfig).await
    }

    /// A kube-rs client of this cluster.
    pub async fn kube_client(&self) -> kube::Client {
        kube::Client::try_from(self.kube_config().await).expect("kube client")
    }
}

/// A kube-rs configuration from a kubeconfig file (its current context).
pub async fn kube_config_for(kubeconfig: &Path) -> kube::Config {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("reading the kubeconfig");
    kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kube config from the kubeconfig")
}
