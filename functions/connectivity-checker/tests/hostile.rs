//! The checker binary against a set of hostile targets at once for ~20 s: every probe ends with the
//! cause its target deserves, and the process's peak resident memory (VmHWM) stays bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::{event, Checker, LocalTarget, Mode};

/// Generous for the debug binary; a body or head buffered without bound would pass 1 GiB.
const PEAK_LIMIT_KIB: u64 = 64 * 1024;

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmHWM value")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_targets_for_20_s_end_on_time_with_their_causes_and_bounded_memory() {
    let huge = LocalTarget::start(Mode::HugeBody).await;
    let slow = LocalTarget::start(Mode::Slowloris).await;
    let redirect = LocalTarget::start(Mode::RedirectLoop).await;
    let closing = LocalTarget::start(Mode::AcceptClose).await;
    let silent = LocalTarget::start(Mode::Hang).await;
    let silent_tls = LocalTarget::start(Mode::Hang).await;
    let cases = [
        (huge.url(), "ok"),
        (slow.url(), "timeout"),
        (redirect.url(), "ok"),
        (closing.url(), "other"),
        (silent.url(), "timeout"),
        // A stalled handshake is a stalled path: `timeout` (tls is for certificate/protocol errors).
        (format!("https://localhost:{}/health", silent_tls.addr.port()), "timeout"),
    ];
    let urls: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let mut checker = Checker::spawn(&[("CHECK_URLS", urls.join(","))], &["--duration", "20"]);
    let pid = checker.pid();
    // The last round has been launched; the process is still up, draining it.
    checker.wait_for_log("rounds_end", |v| v["event"] == "rounds_end", Duration::from_secs(30)).await;
    let peak_kib = vm_hwm_kib(pid);
    let run = checker.finish(Duration::from_secs(10)).await;
    assert!(run.status.success());

    let mut causes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut slowest_ms = 0.0f64;
    for p in event(&run.logs, "probe") {
        let cause = p["cause"].as_str().unwrap_or("ok").to_string();
        causes.entry(p["target"].as_str().unwrap_or("?").to_string()).or_default().insert(cause);
        slowest_ms = slowest_ms.max(p["latency_ms"].as_f64().unwrap_or(0.0));
    }
    for (url, want) in &cases {
        let seen = causes.get(url.as_str()).unwrap_or_else(|| panic!("{url} never probed: {causes:?}"));
        assert_eq!(seen, &BTreeSet::from([want.to_string()]), "{url}");
    }
    let probes = event(&run.logs, "probe").len();
    assert!(probes >= 6 * 45, "{probes} probes in 20 s");
    assert!(slowest_ms <= 600.0 + 250.0, "a probe took {slowest_ms} ms (timeout 600 ms)");
    eprintln!("hostile targets: {probes} probes over 20 s, slowest {slowest_ms:.0} ms, VmHWM {peak_kib} KiB");
    assert!(peak_kib < PEAK_LIMIT_KIB, "peak RSS {peak_kib} KiB");
}
