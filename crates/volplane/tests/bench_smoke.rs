//! `volplane bench api` still runs end to end: a small run (few PVCs, clients and watchers, a
//! small preload) prints every report line with non-zero figures. No performance asserts.

use std::process::Command;

/// The first number after `marker` (looked for after `prefix`) on the line that starts with
/// `prefix`.
fn figure(output: &str, prefix: &str, marker: &str) -> f64 {
    let line = output
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{output}"));
    let after_prefix = &line[prefix.len()..];
    let rest = &after_prefix[after_prefix
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {line:?}"))
        + marker.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number after {marker:?} in {line:?}"))
}

#[test]
fn bench_api_small_run_reports_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_volplane"))
        .args([
            "bench",
            "api",
            "--count",
            "200",
            "--clients",
            "4",
            "--watchers",
            "2",
            "--preload",
            "500",
            "--markdown",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run volplane bench api");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "volplane bench api failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    assert!(figure(&stdout, "baseline: raw group commit:", "s:") > 0.0);
    assert!(figure(&stdout, "baseline: raw one writer:", "s:") > 0.0);
    assert!(figure(&stdout, "api: creates: 200 by 4 clients", "s:") > 0.0);
    assert!(figure(&stdout, "api: creates:", "p99") > 0.0);
    assert!(figure(&stdout, "api: creates/s ÷ raw group commit", ":") > 0.0);
    assert!(
        figure(
            &stdout,
            "api: watch delivery (2 watchers × 200 events)",
            "from send p50"
        ) >= 0.0
    );
    assert!(figure(&stdout, "api: watch delivery from the store commit", "p99") >= 0.0);
    assert!(
        figure(
            &stdout,
            "api: the same creates with no watcher attached",
            ":"
        ) > 0.0
    );
    assert!(stdout.contains("api: watch fan-out:"), "{stdout}");
    assert!(figure(&stdout, "api: during the creates:", "CPU of this process") > 0.0);
    assert!(
        figure(
            &stdout,
            "api: during the creates:",
            "VmRSS after the creates"
        ) > 0.0
    );
    assert!(figure(&stdout, "api: list JSON:", "request(s):") > 0.0);
    assert!(figure(&stdout, "api: list Table:", "request(s):") > 0.0);
    assert!(figure(&stdout, "api: list Table, pages of 500", "request(s):") > 0.0);
    assert!(figure(&stdout, "api: memory of this process", "VmRSS") > 0.0);
    assert!(
        figure(
            &stdout,
            "readiness: `volplane up` /readyz (empty data dir)",
            ":"
        ) > 0.0
    );
    assert!(figure(&stdout, "readiness: `volplane up` /readyz (500 PVCs)", ":") > 0.0);
    assert!(stdout.contains("target: create p99:"), "{stdout}");
    assert!(
        stdout.contains("| API creates (4 clients, 200 PVCs, 2 watchers) |"),
        "{stdout}"
    );
}
