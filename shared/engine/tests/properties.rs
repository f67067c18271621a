//! The two fuzz properties (fuzz/fuzz_targets) as bounded proptest runs, so `make test` exercises
//! them on the stable toolchain: config parsing over arbitrary maps, and the EMF writer over
//! arbitrary buffer operations.

use std::collections::HashMap;
use std::time::Duration;

use nat_watchdog_engine::emf::{self, EmfContext, MetricsBuffer};
use nat_watchdog_engine::{Cause, Config, Mode};
use proptest::prelude::*;
use serde_json::Value;

const KNOWN: [&str; 18] = [
    "CHECK_URLS", "CONNECTIVITY_CHECK_INTERVAL", "REQUEST_TIMEOUT", "UNHEALTHY_THRESHOLD", "HEALTHY_THRESHOLD",
    "QUORUM", "HTTP_STATUS_POLICY", "IPV4_ONLY", "FAILOVER_STATE_MACHINE_ARN", "AVAILABILITY_ZONE", "SUBNET_ID",
    "METRICS_NAMESPACE", "METRICS_FLUSH_INTERVAL", "MAX_RUN_SECONDS", "FAILOVER_DEDUP_WINDOW", "EXTRA_CA_CERTS",
    "DEGRADED_WINDOW", "DEGRADED_THRESHOLD",
];

/// Values near the accepted forms as well as garbage: numbers, URLs, ARNs, lists, any string.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "-?[0-9]{0,4}(\\.[0-9]{0,3})?(e-?[0-9]{1,3})?",
        prop_oneof![Just("NaN"), Just("inf"), Just("-0"), Just(""), Just(" "), Just("true"), Just("any")].prop_map(String::from),
        "(https?|ftp)://(user:pw@)?[a-z.]{0,12}(:[0-9]{1,6})?/[a-z?=&#]{0,8}(,(https?)://[a-z]{1,5}\\.example/)*",
        "arn:aws[a-z-]{0,4}:states:[a-z0-9-]{0,12}:[0-9]{10,13}:stateMachine:[A-Za-z0-9_-]{0,82}",
        "[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?){0,3}",
    ]
}

fn vars() -> impl Strategy<Value = HashMap<String, String>> {
    (
        proptest::collection::vec((0..KNOWN.len(), value()), 0..10),
        proptest::collection::vec((any::<String>(), any::<String>()), 0..3),
    )
        .prop_map(|(known, other)| {
            let mut vars: HashMap<String, String> = other.into_iter().collect();
            for (k, v) in known {
                vars.insert(KNOWN[k].to_string(), v);
            }
            vars
        })
}

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
    fn config_from_arbitrary_maps_never_panics_and_keeps_its_invariants(vars in vars(), lambda in any::<bool>()) {
        let mode = if lambda { Mode::Lambda } else { Mode::Cli };
        match Config::from_map(&vars, mode) {
            Ok(c) => {
                prop_assert!(!c.targets.is_empty() && c.targets.len() <= 20);
                prop_assert!(c.quorum >= 1 && c.quorum <= c.targets.len());
                prop_assert!(c.interval >= Duration::from_millis(50) && c.timeout >= Duration::from_millis(50));
                prop_assert!(c.timeout + Duration::from_secs(1) < c.max_run);
                prop_assert!(mode == Mode::Cli || c.state_machine_arn.is_some());
                // The windowed rule never fires on fewer bad rounds than UNHEALTHY_THRESHOLD asks for.
                prop_assert!(c.degraded.is_none_or(|w| c.unhealthy_threshold < w.threshold && w.threshold <= w.window && w.window <= 1000));
            }
            Err(e) => {
                prop_assert!(KNOWN.contains(&e.variable()), "{}", e);
                prop_assert!(e.to_string().contains("expected"), "{}", e);
                // URL user info never reaches the message (other variables are not URLs and are echoed).
                if e.variable() == "CHECK_URLS" {
                    prop_assert!(!e.to_string().contains("pw@"), "{}", e);
                }
            }
        }
    }

    #[test]
    fn every_emf_document_is_valid_and_no_count_is_lost(
        targets in 0..21usize, az in any::<String>(), subnet in any::<String>(),
        ops in proptest::collection::vec(op(), 0..400),
    ) {
        let ctx = EmfContext {
            namespace: "NatEgressWatchdog".into(),
            availability_zone: az,
            subnet_id: subnet,
            targets: (0..targets).map(|i| format!("https://t{i}.example/")).collect(),
        };
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
            prop_assert!(emf::validate(d).is_ok(), "{:?}: {}", emf::validate(d), d);
            let v: Value = serde_json::from_str(d).unwrap();
            seen_probes += v["ProbeSuccess"].as_u64().unwrap_or(0) + v["ProbeFailure"].as_u64().unwrap_or(0);
            seen_rounds += v["RoundHealthy"].as_array().map_or(0, Vec::len);
        }
        prop_assert_eq!((seen_probes, seen_rounds), (probes, rounds));
    }
}
