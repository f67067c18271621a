//! Arbitrary MetricsBuffer operations: every drained document passes emf::validate (one line, JSON,
//! limits of the specification) and no recorded count is lost.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nat_watchdog_aws::emf::{self, EmfContext, MetricsBuffer};
use nat_watchdog_core::Cause;
use serde_json::Value;

#[derive(Debug, Arbitrary)]
enum Op {
    Probe { target: u8, cause: Option<u8>, latency_ms: f64 },
    Round { good: bool, unhealthy: bool },
    Failover(bool),
    Drain { timestamp_ms: u64 },
}

fuzz_target!(|input: (u8, String, String, Vec<Op>)| {
    let (targets, az, subnet, ops) = input;
    let targets = usize::from(targets % 21);
    let ctx = EmfContext {
        namespace: "NatEgressWatchdog".into(),
        availability_zone: az,
        subnet_id: subnet,
        targets: (0..targets).map(|i| format!("https://t{i}.example/")).collect(),
    };
    let mut buffer = MetricsBuffer::new(targets);
    let (mut probes, mut rounds) = (0u64, 0usize);
    let mut seen = (0.0f64, 0usize);
    let check = |docs: Vec<String>, seen: &mut (f64, usize)| {
        for d in docs {
            if let Err(e) = emf::validate(&d) {
                panic!("{e}: {d}");
            }
            let v: Value = serde_json::from_str(&d).unwrap();
            // Successes are counted by ProbeLatency's values (its SampleCount), failures by ProbeFailure.
            seen.0 += v["ProbeLatency"].as_array().map_or(0.0, |a| a.len() as f64) + v["ProbeFailure"].as_f64().unwrap_or(0.0);
            seen.1 += v["RoundHealthy"].as_array().map_or(0, Vec::len);
        }
    };
    for op in ops {
        match op {
            Op::Probe { target, cause, latency_ms } => {
                let cause = cause.map(|c| Cause::ALL[usize::from(c) % Cause::ALL.len()]);
                if usize::from(target) < targets {
                    probes += 1;
                }
                buffer.record_probe(usize::from(target), cause, latency_ms);
            }
            Op::Round { good, unhealthy } => {
                rounds += 1;
                buffer.record_round(good, unhealthy);
            }
            Op::Failover(ok) => buffer.record_failover(ok),
            Op::Drain { timestamp_ms } => check(buffer.drain(&ctx, timestamp_ms, "healthy"), &mut seen),
        }
    }
    check(buffer.drain(&ctx, 0, "unhealthy"), &mut seen);
    assert_eq!(seen, (probes as f64, rounds), "counts lost or invented");
});
