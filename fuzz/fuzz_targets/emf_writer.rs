//! Arbitrary MetricsBuffer operations: every drained document passes emf::validate (one line, JSON,
//! limits of the specification) and no recorded count is lost.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nat_watchdog_aws::emf::MetricsBuffer;
use nat_watchdog_core::Cause;

#[path = "../../shared/aws/tests/support/emf_property.rs"]
mod emf_property;

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
    let ctx = emf_property::context(targets, az, subnet);
    let mut buffer = MetricsBuffer::new(targets);
    let (mut probes, mut rounds) = (0u64, 0usize);
    let mut seen = (0u64, 0usize);
    let check = |docs: Vec<String>, seen: &mut (u64, usize)| {
        for d in docs {
            let (p, r) = emf_property::accounted(&d).unwrap_or_else(|e| panic!("{e}"));
            seen.0 += p;
            seen.1 += r;
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
    assert_eq!(seen, (probes, rounds), "counts lost or invented");
});
