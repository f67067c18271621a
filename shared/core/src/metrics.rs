//! The names of the checker's CloudWatch metrics and dimensions: the contract between the EMF
//! writer (`nat-watchdog-aws`), the dashboard and alarms (infra/), and the on-call CLI. A test of
//! the EMF writer checks that it writes exactly these names.

use crate::cause::Cause;

vocabulary! {
    /// A metric of the checker (the per-cause failure counts are [`Cause::metric_name`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Metric;
    /// The metric's name in EMF and CloudWatch.
    fn name;
    /// Its EMF unit.
    fn unit;
    /// All causes; one count per cause beside it. Only when non-zero.
    ProbeFailure => "ProbeFailure", "Count";
    FailoverTriggered => "FailoverTriggered", "Count";
    FailoverError => "FailoverError", "Count";
    /// Canary probes whose far end did not answer (network-level causes). Only when non-zero.
    NatPathProbeFailure => "NatPathProbeFailure", "Count";
    /// Per round: 1 when the default path's verdict after it is UNHEALTHY. Always written; its
    /// SampleCount is the checker's liveness.
    Unhealthy => "Unhealthy", "None";
    /// Every successful probe of the default path: in the health document, and per target when
    /// opted in. Its SampleCount is the number of successful probes.
    ProbeLatency => "ProbeLatency", "Milliseconds";
    /// Per canary round: 1 when the NAT-instance path's verdict after it is UNHEALTHY. Written when
    /// `CANARY_URLS` is set, never otherwise (missing = unknown).
    NatPathUnhealthy => "NatPathUnhealthy", "None";
    /// Per-target documents (opt-in: `PER_TARGET_METRICS`).
    TargetProbeFailure => "TargetProbeFailure", "Count";
}

/// Dimension names: the health metrics are queried by `AvailabilityZone`.
pub const DIMENSIONS: [&str; 3] = ["AvailabilityZone", "SubnetId", "Target"];

/// Every metric name of the health document, causes included, in the order the writer emits them.
pub fn health_metric_names() -> Vec<&'static str> {
    let mut names = vec![Metric::ProbeFailure.name()];
    names.extend(Cause::ALL.iter().map(|c| c.metric_name()));
    // `RoundHealthy` (one 1/0 per round) is a log property of the health document, not a metric.
    names.extend(
        [Metric::FailoverTriggered, Metric::FailoverError, Metric::NatPathProbeFailure, Metric::Unhealthy, Metric::ProbeLatency, Metric::NatPathUnhealthy]
            .map(Metric::name),
    );
    names
}

/// Every metric name of the per-target documents.
pub fn target_metric_names() -> Vec<&'static str> {
    vec![Metric::TargetProbeFailure.name(), Metric::ProbeLatency.name()]
}
