//! The EMF metrics of the run as an observer: the `egress` watch (probes, verdict, failovers) and the
//! `nat-path` watch (the canaries' verdict and the canary probes that failed for the path); values
//! gathered by [`MetricsBuffer`] and flushed to a [`MetricSink`] on the timer, on every verdict change
//! of either watch, after each failover outcome and at the end.

use nat_watchdog_core::{timefmt, Config, Health, PathProbe, WatchEvent};
use nat_watchdog_runtime::{Clock, Done, Event, MetricSink, Observer, Reaction, TriggerOutcome, EGRESS, NAT_PATH};

use crate::emf::{EmfContext, MetricsBuffer};

pub struct EmfMetrics<'s, S: ?Sized, C> {
    ctx: EmfContext,
    buffer: MetricsBuffer,
    sink: &'s mut S,
    clock: &'s C,
    health: Health,
    sink_failed: bool,
}

impl<'s, S: MetricSink + ?Sized, C: Clock> EmfMetrics<'s, S, C> {
    pub fn new(cfg: &Config, sink: &'s mut S, clock: &'s C) -> Self {
        let ctx = EmfContext {
            namespace: cfg.namespace.clone(),
            availability_zone: cfg.availability_zone.clone(),
            subnet_id: cfg.subnet_id.clone(),
            targets: cfg.targets.iter().map(|t| t.label().to_string()).collect(),
        };
        EmfMetrics { buffer: MetricsBuffer::with_per_target(cfg.targets.len(), cfg.per_target_metrics), ctx, sink, clock, health: Health::Healthy, sink_failed: false }
    }

    fn flush(&mut self) {
        for doc in self.buffer.drain(&self.ctx, timefmt::epoch_millis(self.clock.now()), self.health.as_str()) {
            if let Err(e) = self.sink.emit(&doc) {
                if !self.sink_failed {
                    tracing::error!(event = "metrics_write_failed", error = %e, "cannot write EMF to stdout");
                    self.sink_failed = true;
                }
            }
        }
    }
}

impl<'a, S: MetricSink + ?Sized, C: Clock> Observer<'a> for EmfMetrics<'_, S, C> {
    fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>> {
        match event {
            Event::Probed { watch: EGRESS, reports, .. } => {
                for (i, report) in reports.iter().enumerate() {
                    self.buffer.record_probe(i, report.cause, report.latency.as_secs_f64() * 1000.0);
                }
            }
            Event::Watch(EGRESS, WatchEvent::RoundDone { good, health, .. }) => {
                self.health = *health;
                self.buffer.record_round(*good, *health == Health::Unhealthy);
            }
            Event::Watch(EGRESS, WatchEvent::BecameUnhealthy(_) | WatchEvent::BecameHealthy { .. }) => self.flush(),
            // Canaries never feed ProbeLatency or ProbeFailure: those are the default path's.
            Event::Probed { watch: NAT_PATH, reports, .. } => {
                for report in reports.iter() {
                    if let PathProbe::Failed(_) = PathProbe::judge(report.cause) {
                        self.buffer.record_canary_failure();
                    }
                }
            }
            Event::Watch(NAT_PATH, WatchEvent::RoundDone { health, .. }) => {
                self.buffer.record_canary_round(*health == Health::Unhealthy);
            }
            Event::Watch(NAT_PATH, WatchEvent::BecameUnhealthy(_) | WatchEvent::BecameHealthy { .. }) => self.flush(),
            Event::Done(Done::Failover(outcome)) => {
                self.buffer.record_failover(!matches!(outcome, TriggerOutcome::Failed { .. }));
                self.flush();
            }
            Event::FlushTick => self.flush(),
            Event::Finished { .. } => self.flush(),
            _ => {}
        }
        None
    }
}
