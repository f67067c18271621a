//! An incident (the evidence the watch had when the verdict turned UNHEALTHY) and the Failover
//! execution input it becomes: the contract between the checker, the state machines and the on-call
//! CLI, which reads execution inputs back (hence `Deserialize`, tolerant of the fields other
//! triggers leave out).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::cause::Cause;
use crate::timefmt;
use crate::verdict::Rule;

/// A target that failed in the round that opened the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTarget {
    pub url: String,
    pub cause: Cause,
}

/// What the watch saw when it turned UNHEALTHY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The round that turned the verdict.
    pub round: u64,
    /// When the verdict turned (the end of that round).
    pub detected_at: SystemTime,
    /// The start of the first bad round of the streak (rule `Consecutive`) or of the oldest bad round
    /// still in the window (rule `Window`).
    pub outage_started_at: SystemTime,
    pub rule: Rule,
    pub consecutive_bad_rounds: u32,
    /// Bad rounds among the last `window_rounds` rounds seen since the verdict last turned healthy
    /// (both 0 when the windowed rule is off).
    pub bad_rounds_in_window: u32,
    pub window_rounds: u32,
    pub failed_targets: Vec<FailedTarget>,
}

/// Who asked for an execution (`trigger` in the input; absent means `checker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Checker,
    Manual,
    Lifecycle,
    Replace,
    Maintenance,
    FallbackAuto,
    /// A value this version does not know (read back, never written).
    #[serde(other)]
    Unknown,
}

/// The input of a Failover (or Fallback) execution. The checker writes the AZ and its evidence;
/// other triggers write `{"availabilityZone": AZ}` or `{}` (every AZ) plus `trigger`, `reason` and
/// what they like, so everything is optional when read back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// The checker's fields; `None` when any of them is missing.
    #[serde(flatten)]
    pub evidence: Option<CheckerEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the checker adds to the input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckerEvidence {
    pub subnet_id: String,
    pub detected_at: String,
    pub outage_started_at: String,
    pub failed_targets: Vec<FailedTarget>,
    pub consecutive_bad_rounds: u32,
    /// Which rule fired: `consecutive` (hard failure) or `window` (a path failing part of the time).
    pub rule: Rule,
    /// Bad rounds among the last `windowRounds` rounds seen since the verdict last turned healthy
    /// (both 0 when the windowed rule is off).
    pub bad_rounds_in_window: u32,
    pub window_rounds: u32,
    /// `connectivity-checker/<version>`.
    pub checker: String,
}

/// What the checker calls itself in the input.
pub const CHECKER: &str = concat!("connectivity-checker/", env!("CARGO_PKG_VERSION"));

impl FailoverInput {
    /// The input the checker of `availability_zone` / `subnet_id` writes for `incident`.
    pub fn from_incident(availability_zone: &str, subnet_id: &str, incident: &Incident) -> FailoverInput {
        let evidence = CheckerEvidence {
            subnet_id: subnet_id.to_string(),
            detected_at: timefmt::rfc3339_millis(incident.detected_at),
            outage_started_at: timefmt::rfc3339_millis(incident.outage_started_at),
            failed_targets: incident.failed_targets.clone(),
            consecutive_bad_rounds: incident.consecutive_bad_rounds,
            rule: incident.rule,
            bad_rounds_in_window: incident.bad_rounds_in_window,
            window_rounds: incident.window_rounds,
            checker: CHECKER.to_string(),
        };
        FailoverInput { availability_zone: Some(availability_zone.to_string()), evidence: Some(evidence), trigger: None, reason: None }
    }

    /// The targets that failed in the round that opened the incident (none for other triggers).
    pub fn failed_targets(&self) -> &[FailedTarget] {
        self.evidence.as_ref().map_or(&[], |e| &e.failed_targets)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn incident() -> Incident {
        Incident {
            round: 30,
            detected_at: at(1_795_377_673_412),
            outage_started_at: at(1_795_377_672_000),
            rule: Rule::Consecutive,
            consecutive_bad_rounds: 3,
            bad_rounds_in_window: 3,
            window_rounds: 12,
            failed_targets: vec![FailedTarget { url: "https://a.example/".into(), cause: Cause::ConnectTimeout }],
        }
    }

    #[test]
    fn input_has_the_contract_fields() {
        let mut input = FailoverInput::from_incident("us-east-1a", "subnet-1", &incident());
        if let Some(e) = input.evidence.as_mut() {
            e.checker = "connectivity-checker/0.1.0".into();
        }
        assert_eq!(
            input.to_json(),
            r#"{"availabilityZone":"us-east-1a","subnetId":"subnet-1","detectedAt":"2026-11-22T20:01:13.412Z","outageStartedAt":"2026-11-22T20:01:12.000Z","failedTargets":[{"url":"https://a.example/","cause":"connect_timeout"}],"consecutiveBadRounds":3,"rule":"consecutive","badRoundsInWindow":3,"windowRounds":12,"checker":"connectivity-checker/0.1.0"}"#
        );
    }

    #[test]
    fn the_checkers_input_reads_back_unchanged() {
        let input = FailoverInput::from_incident("us-east-1a", "subnet-1", &incident());
        assert_eq!(serde_json::from_str::<FailoverInput>(&input.to_json()).unwrap(), input);
    }

    #[test]
    fn inputs_of_other_triggers_read_back() {
        let manual: FailoverInput =
            serde_json::from_str(r#"{"availabilityZone":"us-east-1b","trigger":"manual","reason":"drill"}"#).unwrap();
        assert_eq!(manual.availability_zone.as_deref(), Some("us-east-1b"));
        assert_eq!(manual.trigger, Some(Trigger::Manual));
        assert_eq!(manual.reason.as_deref(), Some("drill"));
        let every_az: FailoverInput = serde_json::from_str("{}").unwrap();
        assert_eq!(every_az, FailoverInput::default());
        assert!(every_az.failed_targets().is_empty());
        let auto: FailoverInput = serde_json::from_str(r#"{"trigger":"fallback-auto","extra":1}"#).unwrap();
        assert_eq!(auto.trigger, Some(Trigger::FallbackAuto));
        let future: FailoverInput = serde_json::from_str(r#"{"trigger":"something-new"}"#).unwrap();
        assert_eq!(future.trigger, Some(Trigger::Unknown));
    }
}
