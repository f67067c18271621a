//! A watch over a set of targets: fed one finished round at a time, it applies the quorum and the
//! verdict and returns what happened as events. Pure: the caller brings the round's outcomes and
//! timestamps, and decides what each event means (logs, metrics, a failover).
//!
//! A second watch over other targets (e.g. the NAT instance's own path) is a second `Watch`.

use std::time::SystemTime;

use crate::cause::Cause;
use crate::incident::{FailedTarget, Incident};
use crate::verdict::{round_is_good, Health, Transition, Verdict, WindowRule};

/// One finished round: per target (in the watch's order) `None` when the probe succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundOutcome {
    pub number: u64,
    pub started_at: SystemTime,
    pub finished_at: SystemTime,
    pub causes: Vec<Option<Cause>>,
}

/// What a round changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Every round: whether it was good and the verdict after it.
    RoundDone { round: u64, good: bool, succeeded: usize, failed: usize, health: Health },
    /// HEALTHY → UNHEALTHY, with the evidence.
    BecameUnhealthy(Incident),
    /// UNHEALTHY → HEALTHY after `good_rounds` consecutive good rounds (the healthy threshold).
    BecameHealthy { round: u64, good_rounds: u32 },
}

#[derive(Debug, Clone)]
pub struct Watch {
    labels: Vec<String>,
    quorum: usize,
    verdict: Verdict<SystemTime>,
}

impl Watch {
    /// `labels`: the targets' safe-to-publish names, in round order. Thresholds are validated by
    /// `Config` (fall and rise at least 1).
    pub fn new(labels: Vec<String>, quorum: usize, fall: u32, rise: u32, window: Option<WindowRule>) -> Watch {
        Watch { labels, quorum, verdict: Verdict::new(fall, rise, window) }
    }

    pub fn health(&self) -> Health {
        self.verdict.state()
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Feeds one round; returns `RoundDone` and, on an edge, the transition after it.
    pub fn observe(&mut self, round: &RoundOutcome) -> Vec<WatchEvent> {
        let succeeded = round.causes.iter().filter(|c| c.is_none()).count();
        let good = round_is_good(succeeded, self.quorum);
        let transition = self.verdict.observe(good, round.started_at);
        let mut events = vec![WatchEvent::RoundDone {
            round: round.number,
            good,
            succeeded,
            failed: round.causes.len() - succeeded,
            health: self.verdict.state(),
        }];
        match transition {
            None => {}
            Some(Transition::BecameUnhealthy { outage_started, rule }) => {
                let (bad_rounds_in_window, window_rounds) = self.verdict.window_counts();
                let failed_targets = round
                    .causes
                    .iter()
                    .zip(&self.labels)
                    .filter_map(|(cause, label)| cause.map(|cause| FailedTarget { url: label.clone(), cause }))
                    .collect();
                events.push(WatchEvent::BecameUnhealthy(Incident {
                    round: round.number,
                    detected_at: round.finished_at,
                    outage_started_at: outage_started,
                    rule,
                    consecutive_bad_rounds: self.verdict.bad_streak(),
                    bad_rounds_in_window,
                    window_rounds,
                    failed_targets,
                }));
            }
            Some(Transition::BecameHealthy) => {
                events.push(WatchEvent::BecameHealthy { round: round.number, good_rounds: self.verdict.rise() });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Rule;
    use std::time::{Duration, UNIX_EPOCH};

    fn round(number: u64, causes: &[Option<Cause>]) -> RoundOutcome {
        let started_at = UNIX_EPOCH + Duration::from_millis(400 * number);
        RoundOutcome { number, started_at, finished_at: started_at + Duration::from_millis(800), causes: causes.to_vec() }
    }

    fn watch(quorum: usize) -> Watch {
        Watch::new(vec!["http://a.test/".into(), "http://b.test/".into()], quorum, 3, 2, None)
    }

    const DOWN: Option<Cause> = Some(Cause::ConnectTimeout);

    #[test]
    fn every_round_reports_its_quorum_verdict() {
        let mut w = watch(1);
        assert_eq!(
            w.observe(&round(1, &[None, DOWN])),
            vec![WatchEvent::RoundDone { round: 1, good: true, succeeded: 1, failed: 1, health: Health::Healthy }]
        );
        let mut w = watch(2);
        assert_eq!(
            w.observe(&round(1, &[None, DOWN])),
            vec![WatchEvent::RoundDone { round: 1, good: false, succeeded: 1, failed: 1, health: Health::Healthy }]
        );
    }

    #[test]
    fn the_third_bad_round_opens_an_incident_with_its_evidence() {
        // Given a healthy watch (fall 3), when three rounds fail in a row,
        let mut w = watch(1);
        w.observe(&round(1, &[None, None]));
        assert_eq!(w.observe(&round(2, &[DOWN, Some(Cause::Dns)])).len(), 1);
        w.observe(&round(3, &[DOWN, DOWN]));
        let events = w.observe(&round(4, &[DOWN, Some(Cause::Tls)]));
        // then the round is reported UNHEALTHY and the incident is dated from round 2, detected at
        // the end of round 4, with round 4's failures as evidence.
        assert_eq!(events[0], WatchEvent::RoundDone { round: 4, good: false, succeeded: 0, failed: 2, health: Health::Unhealthy });
        let WatchEvent::BecameUnhealthy(incident) = &events[1] else { panic!("{events:?}") };
        assert_eq!(incident.round, 4);
        assert_eq!(incident.outage_started_at, round(2, &[]).started_at);
        assert_eq!(incident.detected_at, round(4, &[]).finished_at);
        assert_eq!((incident.rule, incident.consecutive_bad_rounds), (Rule::Consecutive, 3));
        assert_eq!(
            incident.failed_targets,
            vec![
                FailedTarget { url: "http://a.test/".into(), cause: Cause::ConnectTimeout },
                FailedTarget { url: "http://b.test/".into(), cause: Cause::Tls },
            ]
        );
        assert_eq!(w.health(), Health::Unhealthy);
    }

    #[test]
    fn rise_good_rounds_end_the_incident() {
        let mut w = watch(1);
        for n in 1..=3 {
            w.observe(&round(n, &[DOWN, DOWN]));
        }
        assert_eq!(w.observe(&round(4, &[None, DOWN])).len(), 1);
        let events = w.observe(&round(5, &[None, None]));
        assert_eq!(events[1], WatchEvent::BecameHealthy { round: 5, good_rounds: 2 });
        assert_eq!(w.health(), Health::Healthy);
    }
}
