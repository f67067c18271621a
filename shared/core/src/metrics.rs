//! The names of the checker's CloudWatch metrics and dimensions: the contract between the EMF
//! writer (`nat-watchdog-aws`), the dashboard and alarms (infra/), and the on-call CLI. The EMF
//! writer's golden test checks that it writes exactly these names.

use crate::cause::Cause;

pub const HEARTBEAT: &str = "Heartbeat";
pub const PROBE_SUCCESS: &str = "ProbeSuccess";
pub const PROBE_FAILURE: &str = "ProbeFailure";
pub const FAILOVER_TRIGGERED: &str = "FailoverTriggered";
pub const FAILOVER_ERROR: &str = "FailoverError";
/// Per round: 1 when the round was good.
pub const ROUND_HEALTHY: &str = "RoundHealthy";
/// Per round: 1 when the verdict after it is UNHEALTHY.
pub const UNHEALTHY: &str = "Unhealthy";
/// Per-target documents.
pub const TARGET_PROBE_FAILURE: &str = "TargetProbeFailure";
pub const PROBE_LATENCY: &str = "ProbeLatency";

pub const DIMENSION_AZ: &str = "AvailabilityZone";
pub const DIMENSION_SUBNET: &str = "SubnetId";
pub const DIMENSION_TARGET: &str = "Target";

/// Every metric name of the health document, causes included, in the order the writer emits them.
pub fn health_metric_names() -> Vec<&'static str> {
    let mut names = vec![HEARTBEAT, PROBE_SUCCESS, PROBE_FAILURE];
    names.extend(Cause::ALL.iter().map(|c| c.metric_name()));
    names.extend([FAILOVER_TRIGGERED, FAILOVER_ERROR, ROUND_HEALTHY, UNHEALTHY]);
    names
}

/// Every metric name of the per-target documents.
pub fn target_metric_names() -> Vec<&'static str> {
    vec![TARGET_PROBE_FAILURE, PROBE_LATENCY]
}
