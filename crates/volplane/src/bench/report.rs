//! The benchmark's report: one text line per figure as it is measured, the targets of issue 2
//! with met / not met, and a Markdown table for docs/benchmarks.md.

use std::fmt::Write;
use std::time::Duration;

use super::api::ApiResult;
use super::baseline::Baseline;
use super::readiness::Readiness;
use super::{Latencies, ms};

/// Targets of issue 2.
const TARGET_CREATES_PER_SECOND: f64 = 5_000.0;
const TARGET_RATIO: f64 = 0.5;
const TARGET_CREATE_P99: Duration = Duration::from_millis(50);
const TARGET_WATCH_P99: Duration = Duration::from_millis(10);
const TARGET_READY_EMPTY: Duration = Duration::from_secs(1);
const TARGET_READY_LOADED: Duration = Duration::from_secs(3);

/// Memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set size now (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident set size (VmHWM), KiB.
    pub hwm_kib: u64,
}

impl Memory {
    pub fn of_self() -> Option<Memory> {
        Self::read("/proc/self/status")
    }

    pub fn of_pid(pid: u32) -> Option<Memory> {
        Self::read(&format!("/proc/{pid}/status"))
    }

    fn read(path: &str) -> Option<Memory> {
        let status = std::fs::read_to_string(path).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat` (`self` for
/// this one); in clock ticks of 10 ms.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15 of the whole line.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

/// This process's memory before and after the API phase (the in-process server's share is
/// roughly the difference; the benchmark's own watch bookkeeping is part of it).
#[derive(Debug, Clone, Copy)]
pub struct ProcessMemory {
    pub before: Option<Memory>,
    pub after: Option<Memory>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub machine: String,
    pub store: String,
    pub clients: usize,
    pub count: usize,
    pub watchers: usize,
    pub baseline: Option<Baseline>,
    pub api: Option<ApiResult>,
    pub readiness: Vec<Readiness>,
}

/// A one-line description of this machine: CPU model and count, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "? GiB".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} × {model}, {memory} RAM, Linux {}", kernel.trim())
}

fn latencies(l: &Latencies) -> String {
    format!("p50 {}, p99 {}, max {}", ms(l.p50), ms(l.p99), ms(l.max))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

impl Report {
    fn is_etcd(&self) -> bool {
        self.store.starts_with("etcd")
    }

    /// `creates_per_second` ÷ the raw group-commit rate of the same run.
    fn of_baseline(&self, creates_per_second: f64) -> Option<f64> {
        let baseline = self.baseline.as_ref()?;
        Some(creates_per_second / baseline.group.puts_per_second.max(f64::EPSILON))
    }

    /// Creates/s ÷ the raw group-commit rate of the same run.
    fn ratio(&self) -> Option<f64> {
        self.of_baseline(self.api.as_ref()?.creates_per_second)
    }

    /// Creates/s with no watcher attached ÷ the raw group-commit rate: the ceiling of
    /// [`Report::ratio`] whatever the fan-out costs.
    fn quiet_ratio(&self) -> Option<f64> {
        let quiet = self.api.as_ref()?.without_watchers.as_ref()?;
        self.of_baseline(quiet.creates_per_second)
    }

    /// Wall time the watchers added per delivered event: the difference of the two phases'
    /// time per create, spread over the watchers. (On a saturated machine the CPU per event is
    /// this times the cores.)
    fn fan_out_cost(&self) -> Option<f64> {
        let api = self.api.as_ref()?;
        let quiet = api.without_watchers.as_ref()?;
        let per_create = 1.0 / api.creates_per_second.max(f64::EPSILON)
            - 1.0 / quiet.creates_per_second.max(f64::EPSILON);
        Some(per_create / self.watchers.max(1) as f64)
    }

    /// CPU per create during the create phase, and memory after it: "this process 310 µs,
    /// store 216 µs per create; VmRSS after the creates 230 MiB (+19.3 KiB per create)".
    fn create_costs(&self) -> Option<String> {
        let a = self.api.as_ref()?;
        let per_create = |cpu: Duration| {
            format!(
                "{:.0} µs",
                cpu.as_secs_f64() * 1e6 / a.creates.count.max(1) as f64
            )
        };
        let mut parts = Vec::new();
        if let Some(cpu) = a.create_cpu.this_process {
            parts.push(format!(
                "CPU of this process {} per create",
                per_create(cpu)
            ));
        }
        if let Some(cpu) = a.create_cpu.store_process {
            parts.push(format!(
                "of the store's process {} per create",
                per_create(cpu)
            ));
        }
        if let Some(after) = a.memory_after_creates {
            let growth = a
                .memory
                .and_then(|m| m.before)
                .map(|before| {
                    let kib = after.rss_kib.saturating_sub(before.rss_kib) as f64;
                    format!(
                        " (+{:.1} KiB per create)",
                        kib / a.creates.count.max(1) as f64
                    )
                })
                .unwrap_or_default();
            parts.push(format!(
                "VmRSS after the creates {}{growth}",
                mib(after.rss_kib)
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    pub fn print_baseline(&self) {
        let Some(b) = &self.baseline else { return };
        let per_commit = b
            .writes_per_commit
            .map(|w| format!(", {w:.1} writes/commit"))
            .unwrap_or_default();
        println!("machine: {}", self.machine);
        println!("store: {}", self.store);
        println!("baseline: raw group commit: {}{per_commit}", b.group);
        println!("baseline: raw one writer: {}", b.single);
    }

    pub fn print_api(&self) {
        let Some(a) = &self.api else { return };
        println!(
            "api: creates: {} by {} clients in {:.2} s: {:.0} creates/s, {}",
            a.creates.count,
            self.clients,
            a.create_elapsed.as_secs_f64(),
            a.creates_per_second,
            latencies(&a.creates)
        );
        if let Some(ratio) = self.ratio() {
            println!(
                "api: creates/s ÷ raw group commit: {ratio:.2} ({:.0} %)",
                ratio * 100.0
            );
        }
        let pairs = a.watch_from_send.count.max(1);
        println!(
            "api: watch delivery ({} watchers × {} events): from send {}; after the 2xx answer {} ({:.0} % arrived before the answer)",
            self.watchers,
            self.count,
            latencies(&a.watch_from_send),
            latencies(&a.watch_after_answer),
            a.events_before_answer as f64 * 100.0 / pairs as f64
        );
        if let Some(from_commit) = &a.watch_from_commit {
            println!(
                "api: watch delivery from the store commit (the server's own delivery time): {}",
                latencies(from_commit)
            );
        }
        if let Some(costs) = self.create_costs() {
            println!("api: during the creates: {costs}");
        }
        if let Some(quiet) = &a.without_watchers {
            println!(
                "api: the same creates with no watcher attached: {:.0} creates/s, {}{}",
                quiet.creates_per_second,
                latencies(&quiet.creates),
                self.quiet_ratio()
                    .map(|r| format!(" ({:.0} % of the baseline)", r * 100.0))
                    .unwrap_or_default()
            );
            if let Some(per_event) = self.fan_out_cost() {
                println!(
                    "api: watch fan-out: {:.2} µs of wall time per delivered event ({} watchers)",
                    per_event * 1e6,
                    self.watchers
                );
            }
        }
        if let Some(server) = &a.server {
            let create = server.create_mean.map(ms).unwrap_or_else(|| "?".into());
            let write = server
                .store_write_mean
                .map(ms)
                .unwrap_or_else(|| "?".into());
            println!(
                "api: server side (from /metrics): create handled in {create} mean (client saw {}), store write {write} mean",
                ms(a.creates.mean)
            );
        }
        if let Some(c) = &a.commits
            && c.commits > 0
        {
            println!(
                "api: group commit during the creates: {} commits, {:.1} writes/commit, {} per commit",
                c.commits,
                c.writes as f64 / c.commits as f64,
                ms(c.commit_time / c.commits as u32)
            );
        }
        for list in &a.lists {
            println!(
                "api: list {}: {} items, {:.1} MB in {} request(s): {}",
                list.what,
                list.items,
                list.bytes as f64 / 1e6,
                list.requests,
                ms(list.elapsed)
            );
        }
        if let Some(memory) = &a.memory {
            let before = memory.before.map(|m| mib(m.rss_kib)).unwrap_or("?".into());
            if let Some(after) = memory.after {
                println!(
                    "api: memory of this process (in-process server + benchmark clients): VmRSS {} after ({before} before the API phase), VmHWM {}",
                    mib(after.rss_kib),
                    mib(after.hwm_kib)
                );
            }
        }
    }

    pub fn print_readiness(&self, index: usize) {
        let Some(r) = self.readiness.get(index) else {
            return;
        };
        let preload = if r.preloaded > 0 {
            format!(
                ", preloaded through the store in {:.1} s ({:.0}/s)",
                r.preload_elapsed.as_secs_f64(),
                r.preloaded as f64 / r.preload_elapsed.as_secs_f64().max(1e-9)
            )
        } else {
            String::new()
        };
        let memory = r
            .child_memory
            .map(|m| format!(", child VmRSS {}", mib(m.rss_kib)))
            .unwrap_or_default();
        println!(
            "readiness: `volplane up` /readyz ({}): {}{memory}{preload}",
            r.store_content,
            ms(r.ready_after)
        );
    }

    /// The targets of issue 2, each with the figure and whether it is met.
    fn targets(&self) -> Vec<(String, String, String, bool)> {
        let mut rows = Vec::new();
        if let Some(a) = &self.api {
            if !self.is_etcd() {
                rows.push((
                    "creates/s".into(),
                    format!("{:.0}", a.creates_per_second),
                    "≥ 5,000".into(),
                    a.creates_per_second >= TARGET_CREATES_PER_SECOND,
                ));
            }
            if let Some(ratio) = self.ratio() {
                let of = if self.is_etcd() {
                    "etcd's create-txn rate"
                } else {
                    "raw group commit"
                };
                rows.push((
                    format!("creates/s ÷ {of}"),
                    format!("{:.0} %", ratio * 100.0),
                    "≥ 50 %".into(),
                    ratio >= TARGET_RATIO,
                ));
            }
            rows.push((
                "create p99".into(),
                ms(a.creates.p99),
                "≤ 50 ms".into(),
                a.creates.p99 <= TARGET_CREATE_P99,
            ));
            if let Some(from_commit) = &a.watch_from_commit {
                rows.push((
                    "watch delivery p99, from the store commit".into(),
                    ms(from_commit.p99),
                    "≤ 10 ms".into(),
                    from_commit.p99 <= TARGET_WATCH_P99,
                ));
            }
            rows.push((
                "watch delivery p99, from send".into(),
                ms(a.watch_from_send.p99),
                "≤ 10 ms".into(),
                a.watch_from_send.p99 <= TARGET_WATCH_P99,
            ));
            rows.push((
                "watch delivery p99, after the 2xx answer".into(),
                ms(a.watch_after_answer.p99),
                "≤ 10 ms".into(),
                a.watch_after_answer.p99 <= TARGET_WATCH_P99,
            ));
        }
        for r in &self.readiness {
            let (target, limit) = if r.preloaded == 0 {
                ("< 1 s", TARGET_READY_EMPTY)
            } else {
                ("< 3 s", TARGET_READY_LOADED)
            };
            rows.push((
                format!("/readyz, {}", r.store_content),
                ms(r.ready_after),
                target.into(),
                r.ready_after < limit,
            ));
        }
        rows
    }

    pub fn print_targets(&self) {
        for (what, figure, target, ok) in self.targets() {
            println!("target: {what}: {figure} (target {target}): {}", met(ok));
        }
    }

    /// The run as Markdown: the command, the machine, every figure, and the targets.
    pub fn markdown(&self, command: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "```sh\n{command}\n```\n");
        let _ = writeln!(out, "Machine: {}. Store: {}.\n", self.machine, self.store);
        let _ = writeln!(out, "| measure | result |\n| --- | --- |");
        if let Some(b) = &self.baseline {
            let per_commit = b
                .writes_per_commit
                .map(|w| format!(", {w:.1} writes/commit"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| raw store, {} writers (baseline) | **{:.0} puts/s**, p50 {}, p99 {}{per_commit} |",
                b.group.writers,
                b.group.puts_per_second,
                ms(b.group.p50),
                ms(b.group.p99)
            );
            let _ = writeln!(
                out,
                "| raw store, 1 writer | {:.0} puts/s, p50 {}, p99 {} |",
                b.single.puts_per_second,
                ms(b.single.p50),
                ms(b.single.p99)
            );
        }
        if let Some(a) = &self.api {
            let _ = writeln!(
                out,
                "| API creates ({} clients, {} PVCs, {} watchers) | **{:.0} creates/s**, p50 {}, p99 {}, max {} |",
                self.clients,
                self.count,
                self.watchers,
                a.creates_per_second,
                ms(a.creates.p50),
                ms(a.creates.p99),
                ms(a.creates.max)
            );
            if let Some(ratio) = self.ratio() {
                let _ = writeln!(
                    out,
                    "| creates/s ÷ raw {} writers | **{:.0} %** |",
                    self.clients,
                    ratio * 100.0
                );
            }
            let _ = writeln!(
                out,
                "| watch delivery, from send | p50 {}, p99 {}, max {} |",
                ms(a.watch_from_send.p50),
                ms(a.watch_from_send.p99),
                ms(a.watch_from_send.max)
            );
            let _ = writeln!(
                out,
                "| watch delivery, after the 2xx answer | p50 {}, p99 {}, max {} ({:.0} % of events arrived before the answer) |",
                ms(a.watch_after_answer.p50),
                ms(a.watch_after_answer.p99),
                ms(a.watch_after_answer.max),
                a.events_before_answer as f64 * 100.0 / a.watch_from_send.count.max(1) as f64
            );
            if let Some(from_commit) = &a.watch_from_commit {
                let _ = writeln!(
                    out,
                    "| watch delivery, from the store commit | p50 {}, p99 {}, max {} |",
                    ms(from_commit.p50),
                    ms(from_commit.p99),
                    ms(from_commit.max)
                );
            }
            if let Some(costs) = self.create_costs() {
                let _ = writeln!(out, "| during the creates | {costs} |");
            }
            if let Some(quiet) = &a.without_watchers {
                let ratio = self
                    .quiet_ratio()
                    .map(|r| format!(", {:.0} % of the baseline", r * 100.0))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| the same creates, no watcher attached | {:.0} creates/s, p50 {}, p99 {}{ratio} |",
                    quiet.creates_per_second,
                    ms(quiet.creates.p50),
                    ms(quiet.creates.p99)
                );
                if let Some(per_event) = self.fan_out_cost() {
                    let _ = writeln!(
                        out,
                        "| watch fan-out, wall time per delivered event | {:.2} µs |",
                        per_event * 1e6
                    );
                }
            }
            if let Some(server) = &a.server {
                let _ = writeln!(
                    out,
                    "| server side (from /metrics) | create {} mean (client saw {}), store write {} mean |",
                    server.create_mean.map(ms).unwrap_or("?".into()),
                    ms(a.creates.mean),
                    server.store_write_mean.map(ms).unwrap_or("?".into())
                );
            }
            if let Some(c) = &a.commits
                && c.commits > 0
            {
                let _ = writeln!(
                    out,
                    "| group commit during the creates | {:.1} writes/commit, {} per commit |",
                    c.writes as f64 / c.commits as f64,
                    ms(c.commit_time / c.commits as u32)
                );
            }
            for list in &a.lists {
                let _ = writeln!(
                    out,
                    "| list {} PVCs, {} | {} ({:.1} MB, {} request(s)) |",
                    list.items,
                    list.what,
                    ms(list.elapsed),
                    list.bytes as f64 / 1e6,
                    list.requests
                );
            }
            if let Some(memory) = &a.memory
                && let Some(after) = memory.after
            {
                let before = memory.before.map(|m| mib(m.rss_kib)).unwrap_or("?".into());
                let _ = writeln!(
                    out,
                    "| RSS after (server + benchmark clients, one process) | VmRSS {} ({before} before the API phase), VmHWM {} |",
                    mib(after.rss_kib),
                    mib(after.hwm_kib)
                );
            }
        }
        for r in &self.readiness {
            let memory = r
                .child_memory
                .map(|m| format!(", VmRSS {}", mib(m.rss_kib)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `volplane up` → /readyz, {} | **{}**{memory} |",
                r.store_content,
                ms(r.ready_after)
            );
        }
        let _ = writeln!(
            out,
            "\n| target (issue 2) | this run | target | |\n| --- | --- | --- | --- |"
        );
        for (what, figure, target, ok) in self.targets() {
            let _ = writeln!(out, "| {what} | {figure} | {target} | {} |", met(ok));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_of_this_process_grows_with_work() {
        let before = cpu_time("self").expect("/proc/self/stat");
        let target = before + Duration::from_millis(30);
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while cpu_time("self").unwrap() < target && started.elapsed() < Duration::from_secs(10) {
            for _ in 0..100_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        assert!(cpu_time("self").unwrap() >= target);
        assert_eq!(cpu_time("no-such-pid"), None);
    }
}
