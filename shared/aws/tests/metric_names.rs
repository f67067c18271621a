//! The EMF writer writes exactly the metric names of `nat_watchdog_core::metrics` (the vocabulary the
//! dashboard, the alarms and the on-call CLI read): a metric added in only one place fails here.

use std::collections::BTreeSet;

use nat_watchdog_aws::emf::{EmfContext, MetricsBuffer};
use nat_watchdog_core::{metrics, Cause};
use serde_json::Value;

fn names(doc: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(doc).unwrap();
    v["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_writer_uses_the_core_vocabulary() {
    let ctx = EmfContext {
        namespace: "NatEgressWatchdog".into(),
        availability_zone: "us-east-1a".into(),
        subnet_id: "subnet-0abc".into(),
        targets: vec!["https://a.example/".into()],
    };
    // Every metric non-zero, so a writer that leaves zero counts out still shows them all.
    let mut b = MetricsBuffer::with_per_target(1, true);
    b.record_probe(0, None, 10.0);
    for c in Cause::ALL {
        b.record_probe(0, Some(c), 10.0);
    }
    b.record_round(true, true);
    b.record_canary_failure();
    b.record_canary_round(true);
    b.record_failover(true);
    b.record_failover(false);
    let docs = b.drain(&ctx, 1, "unhealthy");
    let written: BTreeSet<String> = docs.iter().flat_map(|d| names(d)).collect();
    let known: BTreeSet<String> =
        metrics::health_metric_names().into_iter().chain(metrics::target_metric_names()).map(String::from).collect();
    assert_eq!(written, known);
    let health = names(&docs[0]);
    assert_eq!(health, metrics::health_metric_names(), "the health document's metrics, in order");
}

/// Liveness and the success count are read from the arrays' SampleCount: the retired counters are
/// never written, whatever was recorded.
#[test]
fn heartbeat_and_probe_success_are_never_written() {
    let ctx = EmfContext { namespace: "N".into(), availability_zone: "us-east-1a".into(), subnet_id: "s".into(), targets: vec!["t".into()] };
    let mut b = MetricsBuffer::new(1);
    b.record_probe(0, None, 1.0);
    b.record_round(true, false);
    let docs = b.drain(&ctx, 1, "healthy");
    let written: Vec<String> = docs.iter().flat_map(|d| names(d)).collect();
    // Retired in wave 2: liveness is SampleCount(Unhealthy), successes are SampleCount(ProbeLatency).
    for retired in ["Heartbeat", "ProbeSuccess"] {
        assert!(!written.iter().any(|n| n == retired), "{written:?}");
        assert!(!metrics::health_metric_names().contains(&retired));
    }
    assert_eq!(written, ["Unhealthy", "ProbeLatency"]);
}
