//! The checker's vocabulary, imported from the engine in this one place (causes, metric names,
//! execution input) so that the command and the checker cannot drift apart.

pub use nat_watchdog_engine::Cause;

/// Default CloudWatch namespace of the checker (`METRICS_NAMESPACE`).
pub const DEFAULT_NAMESPACE: &str = "NatEgressWatchdog";

/// Health metrics (dimension `AvailabilityZone` only). Counters other than `Heartbeat` are absent
/// when zero: a missing value reads as 0.
pub const HEARTBEAT: &str = "Heartbeat";
pub const PROBE_SUCCESS: &str = "ProbeSuccess";
pub const PROBE_FAILURE: &str = "ProbeFailure";
pub const PROBE_LATENCY: &str = "ProbeLatency";
pub const DIMENSION_AZ: &str = "AvailabilityZone";

/// Tag contract (docs/CONTRACTS.md).
pub const TAG_AZ: &str = "nat-watchdog:az";
pub const TAG_NAT_INSTANCE_FOR: &str = "nat-watchdog:nat-instance-for";
pub const TAG_NAT_ENI_FOR: &str = "nat-watchdog:nat-eni-for";
pub const TAG_STANDBY_FOR: &str = "nat-watchdog:standby-for";
pub const TAG_PAUSED_UNTIL: &str = "nat-watchdog:paused-until";
pub const TAG_PAUSED_REASON: &str = "nat-watchdog:paused-reason";

/// `ProbeFailure<Cause>`: the engine names each cause `snake_case` (`connect_refused`) and its
/// metric `ProbeFailure` + CamelCase (`ProbeFailureConnectRefused`); a test holds this to the
/// engine's EMF output.
pub fn cause_metric(cause: Cause) -> String {
    let mut name = String::from("ProbeFailure");
    for word in cause.as_str().split('_') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            name.extend(first.to_uppercase());
            name.push_str(chars.as_str());
        }
    }
    name
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
    /// Lenient: an input that is not an object of the expected shape reads as empty (every AZ).
    pub fn parse(raw: Option<&str>) -> ExecutionInput {
        raw.and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default()
    }

    /// `checker` when absent (the contract's default).
    pub fn trigger(&self) -> &str {
        self.trigger.as_deref().unwrap_or("checker")
    }
}

/// The manual execution input: `{"availabilityZone": AZ, "trigger": "manual"}` (+ `reason`).
pub fn manual_input(az: &str, reason: Option<&str>) -> String {
    let input = ExecutionInput {
        availability_zone: Some(az.to_string()),
        trigger: Some("manual".to_string()),
        reason: reason.map(str::to_string),
        ..Default::default()
    };
    serde_json::to_string(&input).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nat_watchdog_engine::emf::{EmfContext, MetricsBuffer};

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
            for name in [HEARTBEAT, PROBE_FAILURE] {
                assert!(doc.get(name).is_some(), "{name} missing in {}", docs[0]);
            }
        }
    }

    #[test]
    fn the_checker_input_reads_back_with_trigger_rule_and_failed_targets() {
        use nat_watchdog_engine::failover::{FailedTarget as EngineTarget, FailoverInput};
        let engine = FailoverInput {
            availability_zone: "us-east-1a".into(),
            subnet_id: "subnet-1".into(),
            detected_at: "2026-11-23T10:00:05.000Z".into(),
            outage_started_at: "2026-11-23T10:00:00.000Z".into(),
            failed_targets: vec![EngineTarget { url: "https://a.example/".into(), cause: Cause::ConnectTimeout }],
            consecutive_bad_rounds: 3,
            rule: nat_watchdog_engine::verdict::Rule::Window,
            bad_rounds_in_window: 4,
            window_rounds: 6,
            checker: "x".into(),
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
}
