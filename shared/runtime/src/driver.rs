//! The run loop as a driver: rounds on a fixed cadence until the stop instant or a shutdown signal;
//! each finished round is fed to the watch, and every event (the round's reports, the watch's events,
//! a reaction's outcome, the flush timer, the end) is handed to the observers in order. Observers
//! decide what events mean (logs, the summary, the failover trigger, metrics); one that must do
//! something slow returns a [`Reaction`], which runs beside the rounds and whose outcome comes back
//! as [`Event::Done`].
//!
//! Every event names its watch. A second watch over other targets (the NAT instance's own path) is
//! a second [`Watched`] in the slice and the observers that match its name; the loop does not change.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures::stream::{FuturesOrdered, FuturesUnordered, StreamExt};
use nat_watchdog_core::{Cause, Config, RoundOutcome, Target, Watch, WatchEvent};
use nat_watchdog_probe::{ProbeReport, Prober};
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::failover::TriggerOutcome;
use crate::ports::Clock;

/// Extra time a probe may take past its own timeout before the loop declares it timed out anyway.
const PROBE_GRACE: Duration = Duration::from_millis(250);
/// Kept free after the hard stop for the final flush.
const FLUSH_RESERVE: Duration = Duration::from_millis(250);

/// When this run must wind down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// No round may still be running after this instant; none is started that could be.
    pub rounds_end: Instant,
    /// A failover trigger in flight gives up at this instant; the final flush follows.
    pub hard_stop: Instant,
}

impl RunLimits {
    /// Limits for a run that may last `budget` from `start` (e.g. the Lambda's remaining time).
    /// Rounds end 1 s before the budget does, and none starts that could outlive that, so the last
    /// round starts at least REQUEST_TIMEOUT + 1.25 s before the deadline.
    pub fn for_budget(start: Instant, budget: Duration) -> RunLimits {
        let hard_stop = start + budget.saturating_sub(FLUSH_RESERVE);
        let rounds_end = start + budget.saturating_sub(Duration::from_secs(1));
        RunLimits { rounds_end: rounds_end.min(hard_stop), hard_stop }
    }

    /// A run that probes for `duration` (CLI `--duration`): rounds start until then, in-flight work
    /// is then drained, and a trigger in flight gets a couple of seconds more.
    pub fn for_duration(cfg: &Config, start: Instant, duration: Duration) -> RunLimits {
        let rounds_end = start + duration + cfg.timeout + PROBE_GRACE;
        RunLimits { rounds_end, hard_stop: rounds_end + Duration::from_secs(2) }
    }

    /// A run without a deadline (CLI without `--duration`): only a shutdown signal ends it.
    pub fn unbounded() -> RunLimits {
        let far = Instant::now() + Duration::from_secs(365 * 86_400);
        RunLimits { rounds_end: far, hard_stop: far }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// The run's time was up (Lambda deadline, `--duration`).
    #[default]
    Deadline,
    /// SIGINT/SIGTERM (or the caller's shutdown future).
    Signal,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Deadline => "deadline",
            StopReason::Signal => "signal",
        }
    }
}

/// The outcome of a [`Reaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    Failover(TriggerOutcome),
}

/// The name of the checker's watch over `CHECK_URLS` (the one its observers follow).
pub const EGRESS: &str = "egress";

/// The name of the checker's watch over `CANARY_URLS`: the NAT instance's own path. Never triggers
/// a failover (the trigger follows [`EGRESS`] only).
pub const NAT_PATH: &str = "nat-path";

/// What observers see, in this order per round of a watch: `Probed`, then the watch's events.
#[derive(Debug)]
pub enum Event<'e> {
    /// A round of watch `watch` finished: its reports, in the order of `targets`.
    Probed { watch: &'e str, round: &'e RoundOutcome, targets: &'e [Target], reports: &'e [ProbeReport] },
    /// What watch `.0` made of it.
    Watch(&'e str, &'e WatchEvent),
    /// A reaction finished.
    Done(&'e Done),
    /// The metrics flush timer ticked.
    FlushTick,
    /// The run is over; the last event.
    Finished { stopped_by: StopReason, run: Duration },
}

/// Slow work an observer started (e.g. a failover); runs beside the rounds, bounded by the caller.
pub type Reaction<'a> = Pin<Box<dyn Future<Output = Done> + Send + 'a>>;

/// Something that acts on events. Cheap and synchronous; slow work goes into a [`Reaction`].
pub trait Observer<'a> {
    fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>>;
}

/// A named watch and the targets it is fed with, probed every round.
pub struct Watched<'t> {
    pub name: &'static str,
    pub targets: &'t [Target],
    pub watch: Watch,
}

impl<'t> Watched<'t> {
    /// The checker's [`EGRESS`] watch over `cfg`'s targets, with its quorum and thresholds.
    pub fn from_config(cfg: &'t Config) -> Self {
        let labels = cfg.targets.iter().map(|t| t.label().to_string()).collect();
        let watch = Watch::new(labels, cfg.quorum, cfg.unhealthy_threshold, cfg.healthy_threshold, cfg.degraded);
        Watched { name: EGRESS, targets: &cfg.targets, watch }
    }

    /// The checker's [`NAT_PATH`] watch over `cfg`'s canaries (same thresholds, `CANARY_QUORUM`, the
    /// path semantics of `nat_watchdog_core::nat_path`); `None` without canaries.
    pub fn nat_path(cfg: &'t Config) -> Option<Self> {
        if cfg.canaries.is_empty() {
            return None;
        }
        let labels = cfg.canaries.iter().map(|t| t.label().to_string()).collect();
        let watch = Watch::nat_path(labels, cfg.canary_quorum, cfg.unhealthy_threshold, cfg.healthy_threshold, cfg.degraded);
        Some(Watched { name: NAT_PATH, targets: &cfg.canaries, watch })
    }

    /// Every watch `cfg` asks for: [`EGRESS`], then [`NAT_PATH`] when canaries are configured.
    pub fn all_from_config(cfg: &'t Config) -> Vec<Self> {
        std::iter::once(Watched::from_config(cfg)).chain(Watched::nat_path(cfg)).collect()
    }
}

/// The loop's cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub interval: Duration,
    /// One probe's own timeout; the loop allows `PROBE_GRACE` more before declaring it timed out.
    pub probe_timeout: Duration,
    pub flush_interval: Duration,
}

impl Cadence {
    pub fn from_config(cfg: &Config) -> Self {
        Cadence { interval: cfg.interval, probe_timeout: cfg.timeout, flush_interval: cfg.flush_interval }
    }
}

struct Finished {
    watch: usize,
    number: u64,
    started_at: SystemTime,
    reports: Vec<ProbeReport>,
}

/// Probes every target of one watch at once, each bounded by `probe_limit` (a probe that overruns
/// its own timeout counts as `timeout`), and returns `round` with the reports in target order.
async fn probe_round<P: Prober>(prober: &P, targets: &[Target], probe_limit: Duration, mut round: Finished) -> Finished {
    let probes = targets.iter().map(|target| async move {
        match tokio::time::timeout(probe_limit, prober.probe(target)).await {
            Ok(report) => report,
            Err(_) => ProbeReport {
                cause: Some(Cause::Timeout),
                status: None,
                latency: probe_limit,
                dns: None,
                connect: None,
                tls: None,
                detail: Some("probe overran its timeout".into()),
            },
        }
    });
    round.reports = futures::future::join_all(probes).await;
    round
}

fn broadcast<'a>(observers: &mut [&mut dyn Observer<'a>], event: &Event<'_>, reactions: &mut FuturesUnordered<Reaction<'a>>) {
    for observer in observers.iter_mut() {
        if let Some(reaction) = observer.on_event(event) {
            reactions.push(reaction);
        }
    }
}

/// Runs rounds of every watch until `limits` or `shutdown`, whichever comes first, then drains
/// in-flight rounds and reactions (up to the hard stop) and sends `Finished`. Returns how it ended.
#[allow(clippy::too_many_arguments)]
pub async fn drive<'a, P: Prober, C: Clock>(
    cadence: Cadence,
    watches: &mut [Watched<'_>],
    prober: &P,
    clock: &C,
    observers: &mut [&mut dyn Observer<'a>],
    limits: RunLimits,
    shutdown: impl Future<Output = ()>,
) -> StopReason {
    let start = Instant::now();
    let mut ticker = tokio::time::interval_at(start, cadence.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut flush_timer = tokio::time::interval_at(start + cadence.flush_interval, cadence.flush_interval);
    flush_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let probe_limit = cadence.probe_timeout + PROBE_GRACE;
    let targets: Vec<&[Target]> = watches.iter().map(|w| w.targets).collect();

    let mut rounds = FuturesOrdered::new();
    let mut reactions: FuturesUnordered<Reaction<'a>> = FuturesUnordered::new();
    let mut launching = true;
    let mut round_number = 0u64;
    let mut stopped_by = StopReason::Deadline;
    let hard_stop = tokio::time::sleep_until(limits.hard_stop);
    tokio::pin!(hard_stop);
    tokio::pin!(shutdown);

    while launching || !rounds.is_empty() || !reactions.is_empty() {
        tokio::select! {
            biased;
            () = &mut shutdown, if launching => {
                launching = false;
                stopped_by = StopReason::Signal;
                tracing::info!(event = "shutdown", in_flight_rounds = rounds.len(), "shutdown requested, finishing in-flight rounds");
            }
            () = &mut hard_stop => {
                tracing::warn!(event = "hard_stop", in_flight_rounds = rounds.len(), trigger_in_flight = !reactions.is_empty(), "hard stop reached, abandoning in-flight work");
                break;
            }
            Some(done) = rounds.next(), if !rounds.is_empty() => {
                let done: Finished = done;
                let round = RoundOutcome {
                    number: done.number,
                    started_at: done.started_at,
                    finished_at: clock.now(),
                    causes: done.reports.iter().map(|r| r.cause).collect(),
                };
                let Watched { name, targets, watch } = &mut watches[done.watch];
                broadcast(observers, &Event::Probed { watch: name, round: &round, targets, reports: &done.reports }, &mut reactions);
                for event in watch.observe(&round) {
                    broadcast(observers, &Event::Watch(name, &event), &mut reactions);
                }
            }
            Some(done) = reactions.next(), if !reactions.is_empty() => {
                broadcast(observers, &Event::Done(&done), &mut reactions);
            }
            _ = ticker.tick(), if launching => {
                if Instant::now() + probe_limit > limits.rounds_end {
                    launching = false;
                    tracing::debug!(event = "rounds_end", "no time left for another round");
                    continue;
                }
                round_number += 1;
                let started_at = clock.now();
                for (watch, targets) in targets.iter().copied().enumerate() {
                    rounds.push_back(probe_round(prober, targets, probe_limit, Finished { watch, number: round_number, started_at, reports: Vec::new() }));
                }
            }
            _ = flush_timer.tick() => broadcast(observers, &Event::FlushTick, &mut reactions),
        }
    }

    let finished = Event::Finished { stopped_by, run: start.elapsed() };
    broadcast(observers, &finished, &mut reactions);
    stopped_by
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::AnchoredClock;

    /// Targets on `down.test` never answer in time; the others answer at once.
    struct Scripted;

    impl Prober for Scripted {
        async fn probe(&self, target: &Target) -> ProbeReport {
            let down = target.host() == "down.test";
            ProbeReport {
                cause: down.then_some(Cause::ConnectTimeout),
                status: (!down).then_some(204),
                latency: Duration::from_millis(5),
                dns: None,
                connect: None,
                tls: None,
                detail: None,
            }
        }
    }

    #[derive(Default)]
    struct Record(Vec<(String, &'static str)>);

    impl<'a> Observer<'a> for Record {
        fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>> {
            let kind = match event {
                Event::Watch(_, WatchEvent::RoundDone { .. }) => "round",
                Event::Watch(_, WatchEvent::BecameUnhealthy(_)) => "unhealthy",
                Event::Watch(_, WatchEvent::BecameHealthy { .. }) => "healthy",
                _ => return None,
            };
            if let Event::Watch(name, _) = event {
                self.0.push((name.to_string(), kind));
            }
            None
        }
    }

    /// A second watch (e.g. the NAT instance's own path) is one more `Watched` in the slice: each is
    /// probed every round and its events carry its name.
    #[tokio::test(start_paused = true)]
    async fn two_watches_run_side_by_side_and_their_events_name_them() {
        let up = [Target::parse("http://up.test/").unwrap()];
        let down = [Target::parse("http://down.test/").unwrap()];
        let mut watches = [
            Watched { name: EGRESS, targets: &up, watch: Watch::new(vec!["http://up.test/".into()], 1, 3, 3, None) },
            Watched { name: "nat-path", targets: &down, watch: Watch::new(vec!["http://down.test/".into()], 1, 3, 3, None) },
        ];
        let cadence =
            Cadence { interval: Duration::from_millis(400), probe_timeout: Duration::from_millis(800), flush_interval: Duration::from_secs(5) };
        let mut record = Record::default();
        let limits = RunLimits::for_budget(Instant::now(), Duration::from_secs(5));
        let clock = AnchoredClock::new();
        let stopped = drive(cadence, &mut watches, &Scripted, &clock, &mut [&mut record], limits, std::future::pending()).await;
        assert_eq!(stopped, StopReason::Deadline);
        let count = |name: &str, kind: &str| record.0.iter().filter(|(n, k)| n == name && *k == kind).count();
        assert!(count(EGRESS, "round") >= 5, "{:?}", record.0);
        assert_eq!(count(EGRESS, "round"), count("nat-path", "round"));
        assert_eq!((count(EGRESS, "unhealthy"), count("nat-path", "unhealthy")), (0, 1));
    }
}
