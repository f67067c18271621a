//! Failover/Fallback executions read as the on-call needs them: which AZ, why, what moved.

use serde::Serialize;

use crate::cli::Machine;
use crate::ports::Execution;
use crate::times::fmt_time;
use crate::vocab::ExecutionInput;

/// One execution of either state machine with its input and output decoded.
#[derive(Debug, Clone)]
pub struct Run {
    pub machine: Machine,
    pub execution: Execution,
    pub input: ExecutionInput,
    /// AZs whose route tables this execution moved (`action: replaced` in its output).
    pub moved: Vec<String>,
}

impl Run {
    pub fn new(machine: Machine, execution: Execution) -> Run {
        let input = ExecutionInput::parse(execution.input.as_deref());
        let moved = moved_azs(execution.output.as_deref());
        Run { machine, execution, input, moved }
    }

    pub fn scope(&self) -> &str {
        self.input.availability_zone.as_deref().unwrap_or("all")
    }

    pub fn running(&self) -> bool {
        self.execution.status == "RUNNING"
    }

    pub fn succeeded(&self) -> bool {
        self.execution.status == "SUCCEEDED"
    }

    pub fn view(&self) -> RunView {
        RunView {
            machine: self.machine.as_str(),
            name: self.execution.name.clone(),
            status: self.execution.status.clone(),
            availability_zone: self.scope().to_string(),
            started_at: fmt_time(self.execution.start),
            stopped_at: self.execution.stop.map(fmt_time),
            trigger: self.input.trigger().to_string(),
            rule: self.input.rule.clone(),
            failed_targets: self.input.failed_targets.iter().map(|f| format!("{} ({})", f.url, f.cause)).collect(),
            reason: self.input.reason.clone(),
            moved: self.moved.clone(),
            error: self.execution.error.clone(),
            cause: self.execution.cause.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub machine: &'static str,
    pub name: String,
    pub status: String,
    pub availability_zone: String,
    pub started_at: String,
    pub stopped_at: Option<String>,
    pub trigger: String,
    pub rule: Option<String>,
    pub failed_targets: Vec<String>,
    pub reason: Option<String>,
    /// AZs whose 0.0.0.0/0 this execution moved.
    pub moved: Vec<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl RunView {
    /// Why it ran: trigger, rule, failed targets, reason; and how it failed.
    pub fn why(&self) -> String {
        let mut parts = vec![format!("trigger {}", self.trigger)];
        if let Some(rule) = &self.rule {
            parts.push(format!("rule {rule}"));
        }
        if !self.failed_targets.is_empty() {
            parts.push(format!("failed {}", self.failed_targets.join(", ")));
        }
        if let Some(reason) = &self.reason {
            parts.push(format!("reason {reason:?}"));
        }
        if let Some(err) = &self.error {
            parts.push(format!("error {err}: {}", self.cause.as_deref().unwrap_or("")));
        }
        parts.join("; ")
    }
}

/// `{"routeTables":[{"availabilityZone":…,"action":"replaced"},…]}` → the AZs with a replaced route.
fn moved_azs(output: Option<&str>) -> Vec<String> {
    let Some(v) = output.and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok()) else {
        return Vec::new();
    };
    let mut azs: Vec<String> = v["routeTables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["action"] == "replaced")
        .filter_map(|t| t["availabilityZone"].as_str().map(str::to_string))
        .collect();
    azs.sort();
    azs.dedup();
    azs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::times::from_epoch;

    fn exec(input: &str, output: Option<&str>) -> Execution {
        Execution {
            arn: "arn".into(),
            name: "n".into(),
            status: "SUCCEEDED".into(),
            start: from_epoch(0),
            stop: Some(from_epoch(3)),
            input: Some(input.into()),
            output: output.map(str::to_string),
            error: None,
            cause: None,
        }
    }

    #[test]
    fn only_replaced_tables_count_as_moved() {
        let out = r#"{"scope":"all","routeTables":[{"availabilityZone":"b","action":"replaced"},{"availabilityZone":"a","action":"unchanged"},{"availabilityZone":"b","action":"replaced"}]}"#;
        let run = Run::new(Machine::Failover, exec("{}", Some(out)));
        assert_eq!(run.moved, vec!["b".to_string()]);
        assert_eq!(run.scope(), "all");
    }

    #[test]
    fn why_reads_the_checker_input() {
        let input = crate::vocab::checker_input(
            "a",
            nat_watchdog_core::Rule::Consecutive,
            "2026-11-23T10:00:00.000Z",
            "2026-11-23T10:00:02.000Z",
            &[("https://x/", crate::vocab::Cause::Timeout)],
        );
        assert_eq!(Run::new(Machine::Failover, exec(&input, None)).view().why(), "trigger checker; rule consecutive; failed https://x/ (timeout)");
        let manual = r#"{"availabilityZone":"a","trigger":"manual","reason":"drill"}"#;
        assert_eq!(Run::new(Machine::Fallback, exec(manual, None)).view().why(), "trigger manual; reason \"drill\"");
    }
}
