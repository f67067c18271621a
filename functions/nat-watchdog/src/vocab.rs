//! The checker's vocabulary, imported from the engine in this one place (causes, metric names,
//! execution input) so that the command and the checker cannot drift apart.

pub use nat_watchdog_core::Cause;
use nat_watchdog_core::metrics::Metric;
use nat_watchdog_core::{FailoverInput, Trigger};

/// Default CloudWatch namespace of the checker (`METRICS_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "NatEgressWatchdog";

/// Health metrics (dimension `AvailabilityZone` only). Counters are absent when zero: a missing
/// value reads as 0.
///
/// `Unhealthy`: one 0/1 per round, always written: its SampleCount is the checker's liveness.
pub const UNHEALTHY: &str = Metric::Unhealthy.name();
pub const PROBE_FAILURE: &str = Metric::ProbeFailure.name();
/// One value per successful probe: its SampleCount is the number of successful probes.
pub const PROBE_LATENCY: &str = Metric::ProbeLatency.name();
/// The NAT-instance path's verdict 0/1 per canary round, written only when canaries are configured:
/// missing = unknown (also checked against the recovery state machine that reads it).
pub const NAT_PATH_UNHEALTHY: &str = Metric::NatPathUnhealthy.name();
/// Published by the recovery state machine (infra/statemachines/nat-recovery.asl.json), not the
/// checker: 1 every period while automatic fallback of the AZ is suspended.
pub const AUTO_FALLBACK_SUSPENDED: &str = "AutoFallbackSuspended";
pub const DIMENSION_AZ: &str = nat_watchdog_core::metrics::DIMENSIONS[0];

/// Tag contract (docs/CONTRACTS.md).
pub const TAG_AZ: &str = "nat-watchdog:az";
pub const TAG_NAT_INSTANCE_FOR: &str = "nat-watchdog:nat-instance-for";
pub const TAG_NAT_ENI_FOR: &str = "nat-watchdog:nat-eni-for";
pub const TAG_STANDBY_FOR: &str = "nat-watchdog:standby-for";
pub const TAG_PAUSED_UNTIL: &str = "nat-watchdog:paused-until";
pub const TAG_PAUSED_REASON: &str = "nat-watchdog:paused-reason";

/// `ProbeFailure<Cause>` (`ProbeFailureConnectRefused`), named by the core's cause table.
pub fn cause_metric(cause: Cause) -> String {
    cause.metric_name().to_string()
}

/// The fields of a Failover/Fallback execution input the command reads (checker's `FailoverInput`,
/// or the manual `{"availabilityZone", "trigger"}`). Unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outage_started_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_targets: Vec<FailedTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct FailedTarget {
    pub url: String,
    pub cause: String,
}

impl ExecutionInput {
    /// Read through the core's `FailoverInput` (the type the checker writes). Lenient: an input that
    /// is not an object of the expected shape reads as empty (every AZ).
    pub fn parse(raw: Option<&str>) -> ExecutionInput {
        let Some(input) = raw.and_then(|r| serde_json::from_str::<FailoverInput>(r).ok()) else {
            return ExecutionInput::default();
        };
        let evidence = input.evidence.as_ref();
        ExecutionInput {
            availability_zone: input.availability_zone.clone(),
            trigger: input.trigger.map(trigger_name),
            rule: evidence.map(|e| e.rule.as_str().to_string()),
            detected_at: evidence.map(|e| e.detected_at.clone()),
            outage_started_at: evidence.map(|e| e.outage_started_at.clone()),
            failed_targets: input
                .failed_targets()
                .iter()
                .map(|t| FailedTarget { url: t.url.clone(), cause: t.cause.as_str().to_string() })
                .collect(),
            reason: input.reason.clone(),
        }
    }

    /// `checker` when absent (the contract's default).
    pub fn trigger(&self) -> &str {
        self.trigger.as_deref().unwrap_or("checker")
    }
}

/// The contract's name of a trigger (`fallback-auto`), as serde writes it.
fn trigger_name(trigger: Trigger) -> String {
    serde_json::to_value(trigger).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "unknown".to_string())
}

/// The manual execution input: `{"availabilityZone": AZ, "trigger": "manual"}` (+ `reason`).
pub fn manual_input(az: &str, reason: Option<&str>) -> String {
    FailoverInput {
        availability_zone: Some(az.to_string()),
        evidence: None,
        trigger: Some(Trigger::Manual),
        reason: reason.map(str::to_string),
    }
    .to_json()
}

/// A complete checker input, written by the core's type (tests of the readers use it).
#[cfg(test)]
pub fn checker_input(az: &str, rule: nat_watchdog_core::Rule, outage_started_at: &str, detected_at: &str, failed: &[(&str, Cause)]) -> String {
    FailoverInput {
        availability_zone: Some(az.to_string()),
        evidence: Some(nat_watchdog_core::CheckerEvidence {
            subnet_id: "subnet-1".into(),
            detected_at: detected_at.into(),
            outage_started_at: outage_started_at.into(),
            failed_targets: failed.iter().map(|&(url, cause)| nat_watchdog_core::FailedTarget { url: url.into(), cause }).collect(),
            consecutive_bad_rounds: 3,
            rule,
            bad_rounds_in_window: 3,
            window_rounds: 30,
            checker: nat_watchdog_core::incident::CHECKER.into(),
        }),
        trigger: None,
        reason: None,
    }
    .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nat_watchdog_aws::emf::{EmfContext, MetricsBuffer};

    #[test]
    fn every_cause_metric_name_is_the_one_the_checker_writes() {
        let ctx = EmfContext {
            namespace: DEFAULT_NAMESPACE.into(),
            availability_zone: "us-east-1a".into(),
            subnet_id: "subnet-1".into(),
            targets: vec!["https://a.example/".into()],
        };
        for cause in Cause::ALL {
            let mut buf = MetricsBuffer::new(1);
            buf.record_probe(0, Some(cause), 5.0);
            let docs = buf.drain(&ctx, 0, "healthy");
            let doc: serde_json::Value = serde_json::from_str(&docs[0]).unwrap();
            assert_eq!(doc[cause_metric(cause)], serde_json::json!(1), "{cause}: {}", docs[0]);
            assert!(doc.get(PROBE_FAILURE).is_some(), "{PROBE_FAILURE} missing in {}", docs[0]);
        }
    }

    #[test]
    fn the_checker_input_reads_back_with_trigger_rule_and_failed_targets() {
        use nat_watchdog_core::{CheckerEvidence, FailedTarget as CoreTarget, Rule};
        let engine = FailoverInput {
            availability_zone: Some("us-east-1a".into()),
            evidence: Some(CheckerEvidence {
                subnet_id: "subnet-1".into(),
                detected_at: "2026-11-23T10:00:05.000Z".into(),
                outage_started_at: "2026-11-23T10:00:00.000Z".into(),
                failed_targets: vec![CoreTarget { url: "https://a.example/".into(), cause: Cause::ConnectTimeout }],
                consecutive_bad_rounds: 3,
                rule: Rule::Window,
                bad_rounds_in_window: 4,
                window_rounds: 6,
                checker: "x".into(),
            }),
            trigger: None,
            reason: None,
        };
        let read = ExecutionInput::parse(Some(&serde_json::to_string(&engine).unwrap()));
        assert_eq!(read.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(read.trigger(), "checker");
        assert_eq!(read.rule.as_deref(), Some("window"));
        assert_eq!(read.outage_started_at.as_deref(), Some("2026-11-23T10:00:00.000Z"));
        assert_eq!(read.failed_targets, vec![FailedTarget { url: "https://a.example/".into(), cause: "connect_timeout".into() }]);
    }

    #[test]
    fn the_manual_input_is_the_contract_form() {
        assert_eq!(manual_input("us-east-1b", None), r#"{"availabilityZone":"us-east-1b","trigger":"manual"}"#);
        assert_eq!(ExecutionInput::parse(Some("{}")).trigger(), "checker");
        assert_eq!(ExecutionInput::parse(Some("not json")), ExecutionInput::default());
    }

    #[test]
    fn the_recovery_metrics_read_here_are_the_ones_its_state_machine_reads_and_writes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/statemachines/nat-recovery.asl.json");
        let asl = std::fs::read_to_string(path).unwrap();
        for name in [NAT_PATH_UNHEALTHY, AUTO_FALLBACK_SUSPENDED] {
            assert!(asl.contains(&format!("\"{name}\"")), "{name} is not in {path}");
        }
    }
}
