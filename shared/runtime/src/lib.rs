//! The NAT egress watchdog's run loop: rounds on a fixed cadence, fed to a watch
//! (`nat_watchdog_core::Watch`), each event handed to observers — the log, the run summary, the
//! failover trigger, and whatever the caller adds (the EMF metrics of `nat-watchdog-aws`). The
//! outside world is small traits: `nat_watchdog_probe::Prober`, [`FailoverPort`], [`Clock`],
//! [`MetricSink`]. No AWS types.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod driver;
pub mod failover;
pub mod log;
pub mod ports;
pub mod summary;

use std::future::Future;

use nat_watchdog_core::Config;
use nat_watchdog_probe::Prober;

pub use driver::{drive, Cadence, Done, Event, Observer, Reaction, RunLimits, StopReason, Watched, EGRESS, NAT_PATH};
pub use failover::{FailoverPort, FailoverRequest, FailoverTrigger, RetryPolicy, StartError, StartOutcome, TriggerOutcome};
pub use log::{LogObserver, NatPathLogObserver};
pub use ports::{AnchoredClock, Clock, LineWriter, MemorySink, MetricSink};
pub use summary::{NatPathSummary, RunSummary, SummaryObserver};

/// The checker's outside world.
pub struct Ports<'a, 'o, P, F: ?Sized, C> {
    pub prober: &'a P,
    /// `None`: detect only (CLI without a state machine).
    pub failover: Option<&'a F>,
    pub clock: &'a C,
    /// Observers beyond the log, the summary and the trigger (e.g. the EMF metrics), called after them.
    pub observers: Vec<&'o mut dyn Observer<'a>>,
}

/// One checker run over `cfg`: the watch over its targets and, with `CANARY_URLS`, the NAT-path
/// watch over its canaries (logged and summarised, never a failover); the log, the summary and the
/// failover trigger, plus `ports.observers`. Returns the summary (also logged as `run_finished`).
pub async fn run<P, F, C>(
    cfg: &Config,
    ports: Ports<'_, '_, P, F, C>,
    limits: RunLimits,
    shutdown: impl Future<Output = ()>,
) -> RunSummary
where
    P: Prober,
    F: FailoverPort + ?Sized,
    C: Clock,
{
    let Ports { prober, failover, clock, observers: extra } = ports;
    let mut watches = Watched::all_from_config(cfg);
    let mut log = LogObserver;
    let mut nat_path_log = NatPathLogObserver::new(cfg.canaries.len());
    let mut summary = SummaryObserver::default();
    let mut trigger = FailoverTrigger::new(failover, &cfg.availability_zone, &cfg.subnet_id, limits.hard_stop);
    let mut observers: Vec<&mut dyn Observer<'_>> = vec![&mut log, &mut nat_path_log, &mut summary, &mut trigger];
    for observer in extra {
        observers.push(observer);
    }
    drive(Cadence::from_config(cfg), &mut watches, prober, clock, &mut observers, limits, shutdown).await;
    drop(observers);
    let summary = summary.into_summary();
    let nat_path = summary.nat_path.as_ref();
    tracing::info!(
        event = "run_finished", rounds = summary.rounds, probes = summary.probes, failures = summary.probe_failures,
        verdict = %summary.verdict.as_str(), stopped_by = %summary.stopped_by.as_str(), run_ms = summary.run_ms,
        canary_rounds = nat_path.map(|n| n.rounds), canary_probes = nat_path.map(|n| n.probes),
        canary_failures = nat_path.map(|n| n.probe_failures), canary_misconfigured = nat_path.map(|n| n.misconfigured),
        nat_path_verdict = nat_path.map(|n| n.verdict.as_str()), "run finished"
    );
    summary
}
