//! The loop: rounds on a fixed cadence until the stop instant or a shutdown signal, verdict in round
//! order, the failover trigger on the HEALTHY→UNHEALTHY edge, metrics flushed on a timer, on every
//! verdict change and at the end.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{FuturesOrdered, StreamExt};
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::Config;
use crate::emf::{EmfContext, MetricsBuffer};
use crate::failover::{self, FailedTarget, FailoverInput, FailoverRequest, FailoverStarter, RetryPolicy, TriggerOutcome};
use crate::ports::{Clock, MetricSink};
use crate::probe::{Cause, ProbeReport, Prober};
use crate::timefmt;
use crate::verdict::{round_is_good, Health, Rule, Transition, Verdict};

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

/// Where the run's time budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetSource {
    Deadline,
    NoDeadline,
    DeadlinePassed,
    DeadlineTooFar,
}

/// Lambda's longest timeout is 15 minutes; a deadline further away than that is nonsense.
const LAMBDA_MAX: Duration = Duration::from_secs(15 * 60 + 30);

/// The time this invocation may use, from the Lambda deadline (epoch ms) when it is believable,
/// otherwise `MAX_RUN_SECONDS`. Local emulators send zero, past or far-future deadlines.
pub fn budget_from_deadline(deadline_ms: u64, now: SystemTime, max_run: Duration) -> (Duration, BudgetSource) {
    if deadline_ms == 0 {
        return (max_run, BudgetSource::NoDeadline);
    }
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    if deadline_ms <= now_ms {
        return (max_run, BudgetSource::DeadlinePassed);
    }
    let remaining = Duration::from_millis(deadline_ms - now_ms);
    if remaining > LAMBDA_MAX {
        return (max_run, BudgetSource::DeadlineTooFar);
    }
    (remaining, BudgetSource::Deadline)
}

/// The run's outcome, returned by the Lambda and logged by the CLI.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub rounds: u64,
    pub probes: u64,
    pub probe_failures: u64,
    pub failures_by_cause: std::collections::BTreeMap<String, u64>,
    pub verdict: String,
    pub incidents: u32,
    pub failovers_triggered: u32,
    pub failover_errors: u32,
    pub executions: Vec<String>,
    pub stopped_by: String,
    pub run_ms: u64,
}

/// The engine's outside world.
pub struct Ports<'a, P, F, S, C> {
    pub prober: &'a P,
    /// `None`: detect only (CLI without a state machine).
    pub failover: Option<&'a F>,
    pub sink: &'a mut S,
    pub clock: &'a C,
}

struct RoundResult {
    number: u64,
    started_at: SystemTime,
    reports: Vec<ProbeReport>,
}

type TriggerFuture<'a> = Pin<Box<dyn Future<Output = (FailoverRequest, TriggerOutcome)> + Send + 'a>>;

/// Runs rounds until `limits` or `shutdown`, whichever comes first, then drains and flushes.
pub async fn run<P, F, S, C>(
    cfg: &Config,
    ports: Ports<'_, P, F, S, C>,
    limits: RunLimits,
    shutdown: impl Future<Output = ()>,
) -> RunSummary
where
    P: Prober,
    F: FailoverStarter,
    S: MetricSink,
    C: Clock,
{
    let Ports { prober, failover, sink, clock } = ports;
    let start = Instant::now();
    let ctx = EmfContext {
        namespace: cfg.namespace.clone(),
        availability_zone: cfg.availability_zone.clone(),
        subnet_id: cfg.subnet_id.clone(),
        targets: cfg.targets.iter().map(|t| t.label().to_string()).collect(),
    };
    let mut metrics = MetricsBuffer::with_per_target(cfg.targets.len(), cfg.per_target_metrics);
    let mut verdict: Verdict<SystemTime> = Verdict::new(cfg.unhealthy_threshold, cfg.healthy_threshold, cfg.degraded);
    let mut summary = RunSummary::default();
    let mut sink_failed = false;
    let mut flush = |metrics: &mut MetricsBuffer, health: Health| {
        for doc in metrics.drain(&ctx, timefmt::epoch_millis(clock.now()), health.as_str()) {
            if let Err(e) = sink.emit(&doc) {
                if !sink_failed {
                    tracing::error!(event = "metrics_write_failed", error = %e, "cannot write EMF to stdout");
                    sink_failed = true;
                }
            }
        }
    };

    let mut ticker = tokio::time::interval_at(start, cfg.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut flush_timer = tokio::time::interval_at(start + cfg.flush_interval, cfg.flush_interval);
    flush_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let probe_limit = cfg.timeout + PROBE_GRACE;

    let mut rounds = FuturesOrdered::new();
    let mut trigger: Option<TriggerFuture<'_>> = None;
    let mut launching = true;
    let mut round_number = 0u64;
    let hard_stop = tokio::time::sleep_until(limits.hard_stop);
    tokio::pin!(hard_stop);
    tokio::pin!(shutdown);
    summary.stopped_by = "deadline".into();

    loop {
        if !launching && rounds.is_empty() && trigger.is_none() {
            break;
        }
        tokio::select! {
            biased;
            () = &mut shutdown, if launching => {
                launching = false;
                summary.stopped_by = "signal".into();
                tracing::info!(event = "shutdown", in_flight_rounds = rounds.len(), "shutdown requested, finishing in-flight rounds");
            }
            () = &mut hard_stop => {
                tracing::warn!(event = "hard_stop", in_flight_rounds = rounds.len(), trigger_in_flight = trigger.is_some(), "hard stop reached, abandoning in-flight work");
                break;
            }
            Some(done) = rounds.next(), if !rounds.is_empty() => {
                let done: RoundResult = done;
                let mut succeeded = 0;
                for (i, report) in done.reports.iter().enumerate() {
                    let target = &cfg.targets[i];
                    let latency_ms = report.latency.as_secs_f64() * 1000.0;
                    metrics.record_probe(i, report.cause, latency_ms);
                    summary.probes += 1;
                    match report.cause {
                        None => succeeded += 1,
                        Some(c) => {
                            summary.probe_failures += 1;
                            *summary.failures_by_cause.entry(c.as_str().to_string()).or_default() += 1;
                        }
                    }
                    tracing::debug!(
                        event = "probe", round = done.number, target = target.label(), ok = report.ok(),
                        cause = report.cause.map(Cause::as_str), status = report.status,
                        latency_ms = (latency_ms * 10.0).round() / 10.0,
                        dns_ms = report.dns.map(|d| d.as_millis() as u64),
                        connect_ms = report.connect.map(|d| d.as_millis() as u64),
                        tls_ms = report.tls.map(|d| d.as_millis() as u64),
                        detail = report.detail.as_deref(),
                        started_at = %timefmt::rfc3339_millis(done.started_at),
                        "probe finished"
                    );
                }
                let good = round_is_good(succeeded, cfg.quorum);
                summary.rounds += 1;
                tracing::debug!(event = "round", round = done.number, good, succeeded, failed = done.reports.len() - succeeded, "round finished");
                let transition = verdict.observe(good, done.started_at);
                metrics.record_round(good, verdict.state() == Health::Unhealthy);
                match transition {
                    None => {}
                    Some(Transition::BecameUnhealthy { outage_started, rule }) => {
                        summary.incidents += 1;
                        let failed: Vec<FailedTarget> = done.reports.iter().enumerate()
                            .filter_map(|(i, r)| r.cause.map(|cause| FailedTarget { url: cfg.targets[i].label().to_string(), cause }))
                            .collect();
                        let causes: Vec<String> = failed.iter().map(|f| format!("{} {}", f.url, f.cause)).collect();
                        let (bad_in_window, window_rounds) = verdict.window_counts();
                        let why = match rule {
                            Rule::Consecutive => format!("{} consecutive bad rounds", verdict.bad_streak()),
                            Rule::Window => format!("{bad_in_window} of the last {window_rounds} rounds bad (intermittent failure)"),
                        };
                        tracing::info!(
                            event = "verdict_changed", from = "healthy", to = "unhealthy", round = done.number,
                            rule = rule.as_str(), consecutive_bad_rounds = verdict.bad_streak(),
                            bad_rounds_in_window = bad_in_window, window_rounds,
                            outage_started_at = %timefmt::rfc3339_millis(outage_started),
                            failed_targets = %causes.join(", "),
                            "egress UNHEALTHY: {why}"
                        );
                        match (failover, &cfg.state_machine_arn) {
                            (Some(starter), Some(arn)) if trigger.is_none() => {
                                let request = FailoverRequest {
                                    state_machine_arn: arn.clone(),
                                    name: failover::execution_name(&cfg.availability_zone, outage_started, cfg.dedup_window),
                                    input: FailoverInput {
                                        availability_zone: cfg.availability_zone.clone(),
                                        subnet_id: cfg.subnet_id.clone(),
                                        detected_at: timefmt::rfc3339_millis(clock.now()),
                                        outage_started_at: timefmt::rfc3339_millis(outage_started),
                                        failed_targets: failed,
                                        consecutive_bad_rounds: verdict.bad_streak(),
                                        rule,
                                        bad_rounds_in_window: bad_in_window,
                                        window_rounds,
                                        checker: concat!("connectivity-checker/", env!("CARGO_PKG_VERSION")).into(),
                                    },
                                };
                                let give_up_at = limits.hard_stop;
                                trigger = Some(Box::pin(async move {
                                    let outcome = failover::trigger(starter, &request, RetryPolicy::default(), give_up_at).await;
                                    (request, outcome)
                                }));
                            }
                            (Some(_), Some(_)) => {
                                tracing::warn!(event = "failover_skipped", "a Failover trigger is still in flight; not starting another");
                            }
                            _ => tracing::info!(event = "failover_disabled", "no FAILOVER_STATE_MACHINE_ARN: detect-only"),
                        }
                        flush(&mut metrics, verdict.state());
                    }
                    Some(Transition::BecameHealthy) => {
                        tracing::info!(event = "verdict_changed", from = "unhealthy", to = "healthy", round = done.number,
                            "egress HEALTHY again after {} consecutive good rounds", cfg.healthy_threshold);
                        flush(&mut metrics, verdict.state());
                    }
                }
            }
            Some((_request, outcome)) = async { match trigger.as_mut() { Some(t) => Some(t.await), None => None } }, if trigger.is_some() => {
                trigger = None;
                match outcome {
                    TriggerOutcome::Started { execution_arn, .. } => {
                        metrics.record_failover(true);
                        summary.failovers_triggered += 1;
                        summary.executions.push(execution_arn);
                    }
                    TriggerOutcome::AlreadyExists { .. } => {
                        metrics.record_failover(true);
                        summary.failovers_triggered += 1;
                    }
                    TriggerOutcome::Failed { .. } => {
                        metrics.record_failover(false);
                        summary.failover_errors += 1;
                    }
                }
                flush(&mut metrics, verdict.state());
            }
            _ = ticker.tick(), if launching => {
                let now = Instant::now();
                if now + probe_limit > limits.rounds_end {
                    launching = false;
                    tracing::debug!(event = "rounds_end", "no time left for another round");
                    continue;
                }
                round_number += 1;
                let number = round_number;
                let started_at = clock.now();
                let probes = cfg.targets.iter().map(|target| async move {
                    match tokio::time::timeout(probe_limit, prober.probe(target)).await {
                        Ok(report) => report,
                        Err(_) => ProbeReport {
                            cause: Some(Cause::Timeout), status: None, latency: probe_limit,
                            dns: None, connect: None, tls: None,
                            detail: Some("probe overran its timeout".into()),
                        },
                    }
                });
                rounds.push_back(async move {
                    RoundResult { number, started_at, reports: futures::future::join_all(probes).await }
                });
            }
            _ = flush_timer.tick() => flush(&mut metrics, verdict.state()),
        }
    }

    summary.verdict = verdict.state().as_str().into();
    summary.run_ms = start.elapsed().as_millis() as u64;
    flush(&mut metrics, verdict.state());
    tracing::info!(
        event = "run_finished", rounds = summary.rounds, probes = summary.probes, failures = summary.probe_failures,
        verdict = %summary.verdict, stopped_by = %summary.stopped_by, run_ms = summary.run_ms, "run finished"
    );
    summary
}
