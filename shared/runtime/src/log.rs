//! The human log of a run (stderr, through `tracing`): probes and rounds at debug level, verdict
//! changes at info.

use nat_watchdog_core::{timefmt, Cause, PathProbe, Rule, WatchEvent};

use crate::driver::{Event, Observer, Reaction, EGRESS, NAT_PATH};

/// Logs what the [`EGRESS`] watch saw. Stateless.
#[derive(Debug, Default)]
pub struct LogObserver;

impl<'a> Observer<'a> for LogObserver {
    fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>> {
        match event {
            Event::Probed { watch: EGRESS, round, targets, reports } => {
                for (target, report) in targets.iter().zip(reports.iter()) {
                    let latency_ms = report.latency.as_secs_f64() * 1000.0;
                    tracing::debug!(
                        event = "probe", round = round.number, target = target.label(), ok = report.ok(),
                        cause = report.cause.map(Cause::as_str), status = report.status,
                        latency_ms = (latency_ms * 10.0).round() / 10.0,
                        dns_ms = report.dns.map(|d| d.as_millis() as u64),
                        connect_ms = report.connect.map(|d| d.as_millis() as u64),
                        tls_ms = report.tls.map(|d| d.as_millis() as u64),
                        detail = report.detail.as_deref(),
                        started_at = %timefmt::rfc3339_millis(round.started_at),
                        "probe finished"
                    );
                }
            }
            Event::Watch(EGRESS, WatchEvent::RoundDone { round, good, succeeded, failed, .. }) => {
                tracing::debug!(event = "round", round, good, succeeded, failed, "round finished");
            }
            Event::Watch(EGRESS, WatchEvent::BecameUnhealthy(incident)) => {
                let causes: Vec<String> = incident.failed_targets.iter().map(|f| format!("{} {}", f.url, f.cause)).collect();
                let why = match incident.rule {
                    Rule::Consecutive => format!("{} consecutive bad rounds", incident.consecutive_bad_rounds),
                    Rule::Window => format!(
                        "{} of the last {} rounds bad (intermittent failure)",
                        incident.bad_rounds_in_window, incident.window_rounds
                    ),
                };
                tracing::info!(
                    event = "verdict_changed", from = "healthy", to = "unhealthy", round = incident.round,
                    rule = incident.rule.as_str(), consecutive_bad_rounds = incident.consecutive_bad_rounds,
                    bad_rounds_in_window = incident.bad_rounds_in_window, window_rounds = incident.window_rounds,
                    outage_started_at = %timefmt::rfc3339_millis(incident.outage_started_at),
                    failed_targets = %causes.join(", "),
                    "egress UNHEALTHY: {why}"
                );
            }
            Event::Watch(EGRESS, WatchEvent::BecameHealthy { round, good_rounds }) => {
                tracing::info!(event = "verdict_changed", from = "unhealthy", to = "healthy", round,
                    "egress HEALTHY again after {good_rounds} consecutive good rounds");
            }
            _ => {}
        }
        None
    }
}

/// Logs what the [`NAT_PATH`] watch saw: every canary probe (debug, `canary_probe`), a canary whose far
/// end answered but not as it should (warn, `canary_misconfigured`, once per canary per run: the path
/// is fine, the canary is not), and the path's verdict changes (info, `nat_path_changed`, naming the
/// failed canaries and their causes).
#[derive(Debug, Default)]
pub struct NatPathLogObserver {
    /// Per canary: already reported as misconfigured in this run.
    warned: Vec<bool>,
}

impl NatPathLogObserver {
    pub fn new(canaries: usize) -> Self {
        NatPathLogObserver { warned: vec![false; canaries] }
    }
}

impl<'a> Observer<'a> for NatPathLogObserver {
    fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>> {
        match event {
            Event::Probed { watch: NAT_PATH, round, targets, reports } => {
                for (i, (target, report)) in targets.iter().zip(reports.iter()).enumerate() {
                    let judged = PathProbe::judge(report.cause);
                    tracing::debug!(
                        event = "canary_probe", round = round.number, target = target.label(),
                        path_ok = judged.path_cause().is_none(), cause = report.cause.map(Cause::as_str),
                        status = report.status, latency_ms = (report.latency.as_secs_f64() * 10_000.0).round() / 10.0,
                        detail = report.detail.as_deref(), "canary probe finished"
                    );
                    if let PathProbe::ReachedMisconfigured(cause) = judged {
                        if let Some(warned @ false) = self.warned.get_mut(i) {
                            *warned = true;
                            tracing::warn!(
                                event = "canary_misconfigured", target = target.label(), cause = cause.as_str(),
                                status = report.status, detail = report.detail.as_deref(),
                                "canary {} answered with {cause}: the NAT-instance path works, but fix or replace this canary", target.label()
                            );
                        }
                    }
                }
            }
            Event::Watch(NAT_PATH, WatchEvent::RoundDone { round, good, succeeded, failed, .. }) => {
                tracing::debug!(event = "canary_round", round, good, succeeded, failed, "canary round finished");
            }
            Event::Watch(NAT_PATH, WatchEvent::BecameUnhealthy(incident)) => {
                let failed: Vec<String> = incident.failed_targets.iter().map(|f| format!("{} {}", f.url, f.cause)).collect();
                tracing::info!(
                    event = "nat_path_changed", from = "healthy", to = "unhealthy", round = incident.round,
                    rule = incident.rule.as_str(), consecutive_bad_rounds = incident.consecutive_bad_rounds,
                    outage_started_at = %timefmt::rfc3339_millis(incident.outage_started_at),
                    failed_canaries = %failed.join(", "),
                    "NAT-instance path UNHEALTHY: canaries unreachable ({})", failed.join(", ")
                );
            }
            Event::Watch(NAT_PATH, WatchEvent::BecameHealthy { round, good_rounds }) => {
                tracing::info!(event = "nat_path_changed", from = "unhealthy", to = "healthy", round,
                    "NAT-instance path HEALTHY again after {good_rounds} consecutive good canary rounds");
            }
            _ => {}
        }
        None
    }
}
