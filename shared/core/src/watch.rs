//! A watch over a set of targets: fed one finished round at a time, it applies the quorum and the
//! verdict and returns what happened as events. Pure: the caller brings the round's outcomes and
//! timestamps, and decides what each event means (logs, metrics, a failover).
//!
//! A second watch over other targets is a second `Watch`: [`Watch::nat_path`] watches the NAT
//! instance's own path through canaries, reading each probe with the path semantics of
//! [`crate::nat_path`] (a far end that answered proves the path).

use std::time::SystemTime;

use crate::cause::Cause;
use crate::incident::{FailedTarget, Incident};
use crate::nat_path::PathProbe;
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

/// How a watch reads a probe's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// Every failed probe counts against the round (the default path: `HTTP_STATUS_POLICY` decides).
    Egress,
    /// Only network-level failures count ([`PathProbe`]): the NAT-instance path's canaries.
    Path,
}

#[derive(Debug, Clone)]
pub struct Watch {
    labels: Vec<String>,
    quorum: usize,
    verdict: Verdict<SystemTime>,
    semantics: Semantics,
}

impl Watch {
    /// `labels`: the targets' safe-to-publish names, in round order. Thresholds are validated by
    /// `Config` (fall and rise at least 1).
    pub fn new(labels: Vec<String>, quorum: usize, fall: u32, rise: u32, window: Option<WindowRule>) -> Watch {
        Watch { labels, quorum, verdict: Verdict::new(fall, rise, window), semantics: Semantics::Egress }
    }

    /// A watch over the NAT-instance path's canaries: like [`Watch::new`], but a probe whose far end
    /// answered counts as reaching (only network-level causes make a round bad, and only they are
    /// the incident's evidence).
    pub fn nat_path(labels: Vec<String>, quorum: usize, fall: u32, rise: u32, window: Option<WindowRule>) -> Watch {
        Watch { semantics: Semantics::Path, ..Watch::new(labels, quorum, fall, rise, window) }
    }

    pub fn semantics(&self) -> Semantics {
        self.semantics
    }

    pub fn health(&self) -> Health {
        self.verdict.state()
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Feeds one round; returns `RoundDone` and, on an edge, the transition after it.
    pub fn observe(&mut self, round: &RoundOutcome) -> Vec<WatchEvent> {
        let causes: Vec<Option<Cause>> = match self.semantics {
            Semantics::Egress => round.causes.clone(),
            Semantics::Path => round.causes.iter().map(|&c| PathProbe::judge(c).path_cause()).collect(),
        };
        let succeeded = causes.iter().filter(|c| c.is_none()).count();
        let good = round_is_good(succeeded, self.quorum);
        let transition = self.verdict.observe(good, round.started_at);
        let mut events = vec![WatchEvent::RoundDone {
            round: round.number,
            good,
            succeeded,
            failed: causes.len() - succeeded,
            health: self.verdict.state(),
        }];
        match transition {
            None => {}
            Some(Transition::BecameUnhealthy { outage_started, rule }) => {
                let (bad_rounds_in_window, window_rounds) = self.verdict.window_counts();
                let failed_targets = causes
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

    /// The NAT-instance path: a canary whose far end answered (TLS error, HTTP status) proves the
    /// path; only network-level failures make a round bad, and only they are the evidence.
    #[test]
    fn a_path_watch_counts_only_network_level_failures() {
        let mut w = Watch::nat_path(vec!["https://a.test/".into(), "https://b.test/".into()], 2, 3, 2, None);
        assert_eq!(w.semantics(), Semantics::Path);
        for n in 1..=5 {
            let events = w.observe(&round(n, &[Some(Cause::Tls), Some(Cause::HttpStatus)]));
            assert_eq!(events, vec![WatchEvent::RoundDone { round: n, good: true, succeeded: 2, failed: 0, health: Health::Healthy }]);
        }
        // Given quorum 2, when one canary times out and the other answers with a bad certificate,
        // three times in a row, then the path turns UNHEALTHY naming only the timed-out canary.
        w.observe(&round(6, &[DOWN, Some(Cause::Tls)]));
        w.observe(&round(7, &[DOWN, Some(Cause::Tls)]));
        let events = w.observe(&round(8, &[Some(Cause::Dns), Some(Cause::Tls)]));
        let WatchEvent::BecameUnhealthy(incident) = &events[1] else { panic!("{events:?}") };
        assert_eq!(incident.failed_targets, vec![FailedTarget { url: "https://a.test/".into(), cause: Cause::Dns }]);
        // The same rounds in an egress watch are bad from the start.
        let mut egress = Watch::new(vec!["https://a.test/".into(), "https://b.test/".into()], 2, 3, 2, None);
        for n in 1..=3 {
            egress.observe(&round(n, &[Some(Cause::Tls), Some(Cause::HttpStatus)]));
        }
        assert_eq!(egress.health(), Health::Unhealthy);
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
