//! `incidents`: one line per Failover execution in the window, joined with the Fallback that
//! undid it and the probe failures CloudWatch counted meanwhile.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cli::Machine;
use crate::deployment::Deployment;
use crate::error::Error;
use crate::history::Run;
use crate::ports::{Clock, Executions, MetricQuery, Metrics, Ports};
use crate::times::{epoch, fmt_span, fmt_time, from_epoch, parse_time};
use crate::vocab::PROBE_FAILURE;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentsReport {
    pub generated_at: String,
    pub since: String,
    pub incidents: Vec<Incident>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub availability_zone: String,
    pub trigger: String,
    pub rule: Option<String>,
    pub failed_targets: Vec<String>,
    /// From the checker's input (`outageStartedAt`, `detectedAt`); None for manual executions.
    pub outage_started_at: Option<String>,
    pub detected_at: Option<String>,
    pub failover_execution: String,
    pub failover_status: String,
    pub failover_started_at: String,
    pub failover_stopped_at: Option<String>,
    /// When the route was on the gateway: the stop of a Failover that moved it; None when it moved nothing.
    pub route_changed_at: Option<String>,
    pub fallback_execution: Option<String>,
    pub fallback_at: Option<String>,
    /// outage start → detection.
    pub detection_secs: Option<i64>,
    /// outage start (else failover start) → route change.
    pub time_to_route_change_secs: Option<i64>,
    /// route change → fallback.
    pub on_gateway_secs: Option<i64>,
    /// ProbeFailure summed from the outage start (else failover start − 5 min) to the fallback (else now).
    pub probe_failures: Option<u64>,
}

fn secs(from: Option<SystemTime>, to: Option<SystemTime>) -> Option<i64> {
    Some(epoch(to?) - epoch(from?))
}

/// Pure: incidents from the executions of both machines (any order).
pub fn build(runs: &[Run], since: SystemTime) -> Vec<Incident> {
    let mut failovers: Vec<&Run> = runs.iter().filter(|r| r.machine == Machine::Failover && r.execution.start >= since).collect();
    failovers.sort_by_key(|r| r.execution.start);
    let mut out = Vec::new();
    for (k, f) in failovers.iter().enumerate() {
        let az = f.scope().to_string();
        let outage = f.input.outage_started_at.as_deref().and_then(parse_time);
        let detected = f.input.detected_at.as_deref().and_then(parse_time);
        let route_changed = if f.moved.is_empty() { None } else { f.execution.stop };
        // The fallback that ended this incident: the first succeeded Fallback after this failover
        // (and before the next failover of the same scope) that moved one of the AZs this one moved.
        let next_start = failovers[k + 1..].iter().find(|n| n.scope() == az).map(|n| n.execution.start);
        let fallback = runs
            .iter()
            .filter(|r| r.machine == Machine::Fallback && r.succeeded() && r.execution.start >= f.execution.start)
            .filter(|r| next_start.is_none_or(|n| r.execution.start < n))
            .filter(|r| r.moved.iter().any(|m| f.moved.contains(m)))
            .min_by_key(|r| r.execution.start);
        let fallback_at = fallback.and_then(|r| r.execution.stop);
        out.push(Incident {
            availability_zone: az,
            trigger: f.input.trigger().to_string(),
            rule: f.input.rule.clone(),
            failed_targets: f.input.failed_targets.iter().map(|t| format!("{} ({})", t.url, t.cause)).collect(),
            outage_started_at: outage.map(fmt_time),
            detected_at: detected.map(fmt_time),
            failover_execution: f.execution.name.clone(),
            failover_status: f.execution.status.clone(),
            failover_started_at: fmt_time(f.execution.start),
            failover_stopped_at: f.execution.stop.map(fmt_time),
            route_changed_at: route_changed.map(fmt_time),
            fallback_execution: fallback.map(|r| r.execution.name.clone()),
            fallback_at: fallback_at.map(fmt_time),
            detection_secs: secs(outage, detected),
            time_to_route_change_secs: secs(outage.or(Some(f.execution.start)), route_changed),
            on_gateway_secs: secs(route_changed, fallback_at),
            probe_failures: None,
        });
    }
    out
}

pub async fn gather<M: Metrics, E: Executions, R, A, S, C: Clock>(
    ports: &Ports<R, M, A, E, S, C>,
    deployment: &Deployment,
    window: Duration,
) -> Result<IncidentsReport, Error> {
    let now = ports.clock.now();
    let since = now - window;
    let failover_arn = deployment.require_arn(Machine::Failover)?;
    let mut runs: Vec<Run> = ports.executions.executions(failover_arn, since).await?.into_iter().map(|e| Run::new(Machine::Failover, e)).collect();
    let mut notes = Vec::new();
    match deployment.fallback_arn.as_deref() {
        Some(arn) => runs.extend(ports.executions.executions(arn, since).await?.into_iter().map(|e| Run::new(Machine::Fallback, e))),
        None => notes.push("no Fallback state machine known: fallbacks not shown".to_string()),
    }
    let mut incidents = build(&runs, since);
    // Probe failures during each incident of one AZ (not for every-AZ executions).
    for i in incidents.iter_mut().filter(|i| i.availability_zone != "all") {
        let from = i
            .outage_started_at
            .as_deref()
            .and_then(parse_time)
            .or_else(|| parse_time(&i.failover_started_at).map(|t| t - Duration::from_secs(300)))
            .unwrap_or(since);
        let to = i.fallback_at.as_deref().and_then(parse_time).unwrap_or(now);
        let (start, end) = (from_epoch(epoch(from) / 60 * 60), from_epoch((epoch(to) / 60 + 1) * 60));
        let q = MetricQuery { id: "f".into(), metric: PROBE_FAILURE.into(), az: i.availability_zone.clone(), stat: "Sum".into(), period_secs: 60 };
        let series = ports.metrics.get_metric_data(&deployment.namespace, &[q], start, end).await?;
        i.probe_failures = Some(series.iter().flat_map(|s| s.points.values()).sum::<f64>().round() as u64);
    }
    incidents.reverse(); // newest first
    Ok(IncidentsReport { generated_at: fmt_time(now), since: fmt_time(since), incidents, notes })
}

fn or_dash(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("—")
}

fn span(secs: Option<i64>) -> String {
    secs.map_or("—".to_string(), |s| fmt_span(from_epoch(0), from_epoch(s)))
}

pub fn render_table(r: &IncidentsReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "nat-watchdog incidents since {} ({} found)", r.since, r.incidents.len());
    for i in &r.incidents {
        let why = match &i.rule {
            Some(rule) => format!("{}/{rule}", i.trigger),
            None => i.trigger.clone(),
        };
        let _ = writeln!(
            s,
            "{az}  {why}  outage {o}  detected {d} (+{dl})  failover {fs} → {fe} {st}  route {rc} (+{tr})  fallback {fb} (on gateway {og})  probe failures {pf}  {name}",
            az = i.availability_zone,
            o = or_dash(&i.outage_started_at),
            d = or_dash(&i.detected_at),
            dl = span(i.detection_secs),
            fs = i.failover_started_at,
            fe = or_dash(&i.failover_stopped_at),
            st = i.failover_status,
            rc = i.route_changed_at.as_deref().unwrap_or("unchanged"),
            tr = span(i.time_to_route_change_secs),
            fb = or_dash(&i.fallback_at),
            og = span(i.on_gateway_secs),
            pf = i.probe_failures.map_or("—".to_string(), |n| n.to_string()),
            name = i.failover_execution,
        );
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Execution;

    fn run(machine: Machine, name: &str, start: i64, stop: i64, input: &str, moved: &[&str]) -> Run {
        let tables: Vec<String> = moved.iter().map(|az| format!(r#"{{"availabilityZone":"{az}","action":"replaced"}}"#)).collect();
        Run::new(
            machine,
            Execution {
                arn: format!("arn:{name}"),
                name: name.into(),
                status: "SUCCEEDED".into(),
                start: from_epoch(start),
                stop: Some(from_epoch(stop)),
                input: Some(input.into()),
                output: Some(format!(r#"{{"routeTables":[{}]}}"#, tables.join(","))),
                error: None,
                cause: None,
            },
        )
    }

    const T: i64 = 1_800_000_000;

    #[test]
    fn a_checker_failover_joins_its_fallback_with_durations() {
        let input = crate::vocab::checker_input(
            "a",
            nat_watchdog_core::Rule::Consecutive,
            &fmt_time(from_epoch(T - 10)),
            &fmt_time(from_epoch(T - 4)),
            &[],
        );
        let runs = vec![
            run(Machine::Failover, "f1", T, T + 2, &input, &["a"]),
            run(Machine::Fallback, "other-az", T + 100, T + 101, "{}", &["b"]),
            run(Machine::Fallback, "b1", T + 600, T + 603, "{}", &["a", "b"]),
            run(Machine::Fallback, "later", T + 900, T + 901, "{}", &["a"]),
        ];
        let i = build(&runs, from_epoch(T - 3600));
        assert_eq!(i.len(), 1);
        let i = &i[0];
        assert_eq!((i.detection_secs, i.time_to_route_change_secs, i.on_gateway_secs), (Some(6), Some(12), Some(601)));
        assert_eq!(i.fallback_execution.as_deref(), Some("b1"));
        assert_eq!(i.trigger, "checker");
    }

    #[test]
    fn a_manual_failover_that_moved_nothing_has_no_route_change_or_fallback() {
        let runs = vec![
            run(Machine::Failover, "m", T, T + 1, r#"{"availabilityZone":"a","trigger":"manual"}"#, &[]),
            run(Machine::Fallback, "fb", T + 60, T + 61, "{}", &["a"]),
        ];
        let i = &build(&runs, from_epoch(T - 60))[0];
        assert_eq!((i.route_changed_at.as_ref(), i.fallback_at.as_ref(), i.detection_secs), (None, None, None));
        assert_eq!(i.trigger, "manual");
    }

    #[test]
    fn failovers_before_the_window_are_left_out() {
        let runs = vec![run(Machine::Failover, "old", T - 7200, T - 7199, "{}", &["a"])];
        assert!(build(&runs, from_epoch(T - 3600)).is_empty());
    }
}
