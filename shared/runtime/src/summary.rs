//! The run's outcome, returned by the Lambda and logged by the CLI, kept by an observer.

use std::collections::BTreeMap;

use nat_watchdog_core::{Cause, Health, PathProbe, WatchEvent};
use serde::{Serialize, Serializer};

use crate::driver::{Done, Event, Observer, Reaction, StopReason, EGRESS, NAT_PATH};
use crate::failover::TriggerOutcome;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub rounds: u64,
    pub probes: u64,
    pub probe_failures: u64,
    /// Written with the causes' names as keys, in name order.
    #[serde(serialize_with = "by_name")]
    pub failures_by_cause: BTreeMap<Cause, u64>,
    pub verdict: Health,
    pub incidents: u32,
    pub failovers_triggered: u32,
    pub failover_errors: u32,
    pub executions: Vec<String>,
    pub stopped_by: StopReason,
    pub run_ms: u64,
    /// The NAT-instance path watch (`CANARY_URLS`); absent without canaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_path: Option<NatPathSummary>,
}

/// What the canaries saw in this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NatPathSummary {
    pub rounds: u64,
    pub probes: u64,
    /// Canary probes that failed for the path (network-level causes).
    pub probe_failures: u64,
    /// Canary probes whose far end answered with a TLS error or a refused HTTP status: the path works,
    /// the canary does not.
    pub misconfigured: u64,
    pub verdict: Health,
    pub incidents: u32,
}

impl Default for NatPathSummary {
    fn default() -> Self {
        NatPathSummary { rounds: 0, probes: 0, probe_failures: 0, misconfigured: 0, verdict: Health::Healthy, incidents: 0 }
    }
}

impl Default for RunSummary {
    fn default() -> Self {
        RunSummary {
            rounds: 0,
            probes: 0,
            probe_failures: 0,
            failures_by_cause: BTreeMap::new(),
            verdict: Health::Healthy,
            incidents: 0,
            failovers_triggered: 0,
            failover_errors: 0,
            executions: Vec::new(),
            stopped_by: StopReason::Deadline,
            run_ms: 0,
            nat_path: None,
        }
    }
}

fn by_name<S: Serializer>(map: &BTreeMap<Cause, u64>, serializer: S) -> Result<S::Ok, S::Error> {
    let named: BTreeMap<&str, u64> = map.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    named.serialize(serializer)
}

/// Counts what happened to the [`EGRESS`] watch (and the failovers) into a [`RunSummary`].
#[derive(Debug, Default)]
pub struct SummaryObserver {
    summary: RunSummary,
}

impl SummaryObserver {
    pub fn into_summary(self) -> RunSummary {
        self.summary
    }
}

impl<'a> Observer<'a> for SummaryObserver {
    fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>> {
        let s = &mut self.summary;
        match event {
            Event::Probed { watch: EGRESS, reports, .. } => {
                for report in reports.iter() {
                    s.probes += 1;
                    if let Some(cause) = report.cause {
                        s.probe_failures += 1;
                        *s.failures_by_cause.entry(cause).or_default() += 1;
                    }
                }
            }
            Event::Watch(EGRESS, WatchEvent::RoundDone { health, .. }) => {
                s.rounds += 1;
                s.verdict = *health;
            }
            Event::Watch(EGRESS, WatchEvent::BecameUnhealthy(_)) => s.incidents += 1,
            Event::Probed { watch: NAT_PATH, reports, .. } => {
                let n = s.nat_path.get_or_insert_with(NatPathSummary::default);
                for report in reports.iter() {
                    n.probes += 1;
                    match PathProbe::judge(report.cause) {
                        PathProbe::Reached => {}
                        PathProbe::ReachedMisconfigured(_) => n.misconfigured += 1,
                        PathProbe::Failed(_) => n.probe_failures += 1,
                    }
                }
            }
            Event::Watch(NAT_PATH, WatchEvent::RoundDone { health, .. }) => {
                let n = s.nat_path.get_or_insert_with(NatPathSummary::default);
                n.rounds += 1;
                n.verdict = *health;
            }
            Event::Watch(NAT_PATH, WatchEvent::BecameUnhealthy(_)) => {
                s.nat_path.get_or_insert_with(NatPathSummary::default).incidents += 1;
            }
            Event::Done(Done::Failover(outcome)) => match outcome {
                TriggerOutcome::Started { execution_arn, .. } => {
                    s.failovers_triggered += 1;
                    s.executions.push(execution_arn.clone());
                }
                TriggerOutcome::AlreadyExists { .. } => s.failovers_triggered += 1,
                TriggerOutcome::Failed { .. } => s.failover_errors += 1,
            },
            Event::Finished { stopped_by, run } => {
                s.stopped_by = *stopped_by;
                s.run_ms = run.as_millis() as u64;
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_lambda_has_always_returned_it() {
        let mut s = RunSummary { rounds: 2, probes: 6, probe_failures: 3, incidents: 1, run_ms: 812, ..RunSummary::default() };
        s.failures_by_cause.insert(Cause::Tls, 1);
        s.failures_by_cause.insert(Cause::ConnectTimeout, 2);
        s.verdict = Health::Unhealthy;
        s.stopped_by = StopReason::Signal;
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"rounds":2,"probes":6,"probeFailures":3,"failuresByCause":{"connect_timeout":2,"tls":1},"verdict":"unhealthy","incidents":1,"failoversTriggered":0,"failoverErrors":0,"executions":[],"stoppedBy":"signal","runMs":812}"#
        );
    }

    #[test]
    fn with_canaries_the_summary_gains_the_nat_path_counts() {
        let s = RunSummary {
            nat_path: Some(NatPathSummary { rounds: 2, probes: 4, probe_failures: 1, misconfigured: 2, verdict: Health::Healthy, incidents: 0 }),
            ..RunSummary::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["natPath"],
            serde_json::json!({"rounds":2,"probes":4,"probeFailures":1,"misconfigured":2,"verdict":"healthy","incidents":0})
        );
    }
}
