//! The EMF writer's fuzz property (fuzz/fuzz_targets/emf_writer.rs) as a bounded proptest run, so
//! `make test` exercises it on the stable toolchain: arbitrary buffer operations.

use nat_watchdog_aws::emf::MetricsBuffer;
use nat_watchdog_core::Cause;
use proptest::prelude::*;

#[path = "support/emf_property.rs"]
mod emf_property;

#[derive(Debug, Clone)]
enum Op {
    Probe { target: usize, cause: Option<Cause>, latency_ms: f64 },
    Round { good: bool, unhealthy: bool },
    Failover(bool),
    Drain(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let cause = proptest::option::of(proptest::sample::select(Cause::ALL.to_vec()));
    let latency = prop_oneof![0.0..5_000.0f64, any::<f64>()];
    prop_oneof![
        8 => (0..22usize, cause, latency).prop_map(|(target, cause, latency_ms)| Op::Probe { target, cause, latency_ms }),
        4 => (any::<bool>(), any::<bool>()).prop_map(|(good, unhealthy)| Op::Round { good, unhealthy }),
        1 => any::<bool>().prop_map(Op::Failover),
        1 => any::<u64>().prop_map(Op::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_emf_document_is_valid_and_no_count_is_lost(
        targets in 0..21usize, az in any::<String>(), subnet in any::<String>(),
        ops in proptest::collection::vec(op(), 0..400),
    ) {
        let ctx = emf_property::context(targets, az, subnet);
        let mut buffer = MetricsBuffer::new(targets);
        let (mut probes, mut rounds, mut seen_probes, mut seen_rounds) = (0u64, 0usize, 0u64, 0usize);
        let mut docs = Vec::new();
        for op in ops {
            match op {
                Op::Probe { target, cause, latency_ms } => {
                    probes += u64::from(target < targets);
                    buffer.record_probe(target, cause, latency_ms);
                }
                Op::Round { good, unhealthy } => {
                    rounds += 1;
                    buffer.record_round(good, unhealthy);
                }
                Op::Failover(ok) => buffer.record_failover(ok),
                Op::Drain(ts) => docs.extend(buffer.drain(&ctx, ts, "healthy")),
            }
        }
        docs.extend(buffer.drain(&ctx, 1, "unhealthy"));
        for d in &docs {
            let accounted = emf_property::accounted(d);
            prop_assert!(accounted.is_ok(), "{:?}", accounted);
            let (p, r) = accounted.unwrap();
            seen_probes += p;
            seen_rounds += r;
        }
        prop_assert_eq!((seen_probes, seen_rounds), (probes, rounds));
    }
}
