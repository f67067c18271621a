//! `status`: per AZ, where egress goes and since when, probes of the last 15 minutes, checkers,
//! pauses; executions running or recent; alarms in ALARM. Gathered through the ports, judged and
//! rendered without AWS.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cli::Machine;
use crate::deployment::Deployment;
use crate::error::Error;
use crate::history::{Run, RunView};
use crate::ports::{Alarms, Clock, Executions, ManagedTable, MetricQuery, MetricSeries, Metrics, NatInventory, Ports, RawRoute, Routes};
use crate::times::{epoch, fmt_span, fmt_time, from_epoch, parse_time};
use crate::vocab::{cause_metric, Cause, HEARTBEAT, PROBE_FAILURE, PROBE_LATENCY, PROBE_SUCCESS, TAG_PAUSED_REASON, TAG_PAUSED_UNTIL};

pub const WINDOW_MINUTES: i64 = 15;
/// A checker writes a Heartbeat every flush; none for this long means it is silent (as the alarm).
pub const HEARTBEAT_WINDOW: Duration = Duration::from_secs(120);
/// Below this share of good probes an AZ is degraded (the connectivity-degraded alarm fires at > 25 % failed).
pub const DEGRADED_BELOW_PERCENT: f64 = 75.0;
/// Executions shown: running ones and those started within this span.
pub const RECENT: Duration = Duration::from_secs(24 * 3600);
/// How far back the route's "since" is looked for.
pub const SINCE_LOOKBACK: Duration = Duration::from_secs(14 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub generated_at: String,
    pub deployment: Deployment,
    /// `ok` or `attention` (exit code 0 or 1).
    pub overall: &'static str,
    pub availability_zones: Vec<AzStatus>,
    pub executions: Vec<RunView>,
    pub alarms_in_alarm: Vec<AlarmView>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AzStatus {
    pub availability_zone: String,
    /// `nat-instance`, `nat-eni`, `nat-gateway`, `other`, `none` or `mixed`.
    pub egress: String,
    pub route_tables: Vec<TableRoute>,
    /// When the route last changed, from the execution that changed it; None: unknown.
    pub since: Option<String>,
    pub since_execution: Option<String>,
    pub probes: Probes,
    pub checkers: Checkers,
    pub pause: Option<Pause>,
    /// Why this AZ needs attention; empty when healthy.
    pub attention: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRoute {
    pub route_table: String,
    pub kind: &'static str,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Probes {
    pub window_minutes: i64,
    pub succeeded: u64,
    pub failed: u64,
    pub success_percent: Option<f64>,
    /// One value per minute, oldest first; None: no probe that minute.
    pub per_minute_success_percent: Vec<Option<f64>>,
    pub sparkline: String,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Non-zero causes, in the checker's order.
    pub failures_by_cause: Vec<CauseCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CauseCount {
    pub cause: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkers {
    pub alive: bool,
    /// Heartbeats in the one-minute periods that overlap the last 2 minutes…
    pub heartbeats: u64,
    /// …which start here.
    pub heartbeats_since: String,
    /// Start of the last minute that had a heartbeat.
    pub last_heartbeat_minute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pause {
    pub until: String,
    pub reason: Option<String>,
    /// False once `until` has passed (the tag is then ignored by the state machines).
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmView {
    pub name: String,
    pub since: Option<String>,
    pub reason: String,
    /// `docs/RUNBOOK.md#…` from the description, per the alarm contract.
    pub runbook: Option<String>,
}

/// Everything `status` reads, before judgement.
pub struct Observed {
    pub now: SystemTime,
    pub tables: Vec<ManagedTable>,
    pub inventory: NatInventory,
    pub runs: Vec<Run>,
    pub series: Vec<MetricSeries>,
    pub percentiles: Result<Vec<MetricSeries>, String>,
    pub alarms: Vec<crate::ports::Alarm>,
    pub window_end: i64,
}

pub async fn gather<R: Routes, M: Metrics, A: Alarms, E: Executions, S, C: Clock>(
    ports: &Ports<R, M, A, E, S, C>,
    deployment: &Deployment,
) -> Result<Observed, Error> {
    let now = ports.clock.now();
    let vpc = deployment.vpc.as_deref();
    let tables = ports.routes.managed_tables(vpc).await?;
    let inventory = ports.routes.nat_inventory(vpc).await?;
    let mut runs = Vec::new();
    for machine in [Machine::Failover, Machine::Fallback] {
        if let Some(arn) = deployment.machine_arn(machine) {
            for e in ports.executions.executions(arn, now - SINCE_LOOKBACK).await? {
                runs.push(Run::new(machine, e));
            }
        }
    }
    runs.sort_by_key(|r| std::cmp::Reverse(r.execution.start));
    let azs = az_list(&tables);
    // Minute-aligned window ending at the next minute boundary: the current minute is included.
    let window_end = (epoch(now) / 60 + 1) * 60;
    let start = from_epoch(window_end - WINDOW_MINUTES * 60);
    let end = from_epoch(window_end);
    let queries = count_queries(&azs);
    let series = if queries.is_empty() { Vec::new() } else { ports.metrics.get_metric_data(&deployment.namespace, &queries, start, end).await? };
    let pq = percentile_queries(&azs);
    let percentiles = if pq.is_empty() {
        Ok(Vec::new())
    } else {
        // Percentiles are a second call so that an endpoint without them (moto answers `None`,
        // which does not even parse) costs the p50/p99 columns, not the screen.
        ports.metrics.get_metric_data(&deployment.namespace, &pq, start, end).await.map_err(|e| e.to_string())
    };
    let alarms = ports.alarms.in_alarm(deployment.alarm_prefix().as_deref()).await?;
    Ok(Observed { now, tables, inventory, runs, series, percentiles, alarms, window_end })
}

fn az_list(tables: &[ManagedTable]) -> Vec<String> {
    let mut azs: Vec<String> = tables.iter().map(|t| t.az.clone()).collect();
    azs.sort();
    azs.dedup();
    azs
}

fn qid(az_index: usize, metric: &str) -> String {
    // GetMetricData ids: ^[a-z][a-zA-Z0-9_]*$
    format!("a{az_index}_{metric}")
}

fn count_queries(azs: &[String]) -> Vec<MetricQuery> {
    let mut q = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        let mut metrics = vec![PROBE_SUCCESS.to_string(), PROBE_FAILURE.to_string(), HEARTBEAT.to_string()];
        metrics.extend(Cause::ALL.iter().map(|c| cause_metric(*c)));
        for m in metrics {
            q.push(MetricQuery { id: qid(i, &m), metric: m, az: az.clone(), stat: "Sum".into(), period_secs: 60 });
        }
    }
    q
}

fn percentile_queries(azs: &[String]) -> Vec<MetricQuery> {
    let mut q = Vec::new();
    for (i, az) in azs.iter().enumerate() {
        for stat in ["p50", "p99"] {
            q.push(MetricQuery {
                id: qid(i, stat),
                metric: PROBE_LATENCY.into(),
                az: az.clone(),
                stat: stat.into(),
                period_secs: (WINDOW_MINUTES * 60) as i32,
            });
        }
    }
    q
}

/// Classifies one 0.0.0.0/0 route by the tag contract.
pub fn classify(route: Option<&RawRoute>, inv: &NatInventory) -> (&'static str, String) {
    let Some(r) = route else { return ("none", "no 0.0.0.0/0 route".into()) };
    let blackhole = if r.state.as_deref() == Some("blackhole") { " (blackhole)" } else { "" };
    if let Some(ngw) = &r.nat_gateway_id {
        let role = match inv.gateways.get(ngw).and_then(|g| g.standby_for.clone()) {
            Some(az) if az == "shared" => " (shared standby)".to_string(),
            Some(az) => format!(" (standby for {az})"),
            None => String::new(),
        };
        return ("nat-gateway", format!("{ngw}{role}{blackhole}"));
    }
    if let Some(eni) = &r.network_interface_id {
        if inv.enis.contains_key(eni) {
            let via = r.instance_id.as_ref().map(|i| format!(" on {i}")).unwrap_or_default();
            return ("nat-eni", format!("{eni}{via}{blackhole}"));
        }
        if let Some((id, _)) = inv.instances.iter().find(|(_, i)| i.enis.contains(eni)) {
            return ("nat-instance", format!("{id} via {eni}{blackhole}"));
        }
        return ("other", format!("{eni}{blackhole}"));
    }
    if let Some(i) = &r.instance_id {
        let kind = if inv.instances.contains_key(i) { "nat-instance" } else { "other" };
        return (kind, format!("{i}{blackhole}"));
    }
    ("other", format!("{}{blackhole}", r.gateway_id.clone().unwrap_or_else(|| "unknown target".into())))
}

fn sum_window(s: Option<&MetricSeries>) -> u64 {
    s.map_or(0.0, |s| s.points.values().sum::<f64>()).round() as u64
}

pub fn sparkline(values: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| match v {
            None => '·',
            Some(p) => BARS[((p.clamp(0.0, 100.0) / 100.0) * 7.0).round() as usize],
        })
        .collect()
}

fn one_decimal(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub fn judge(deployment: &Deployment, o: &Observed) -> StatusReport {
    let by_id: BTreeMap<&str, &MetricSeries> = o.series.iter().map(|s| (s.id.as_str(), s)).collect();
    let pct: BTreeMap<&str, &MetricSeries> = o.percentiles.as_ref().map(|v| v.iter().map(|s| (s.id.as_str(), s)).collect()).unwrap_or_default();
    let mut notes = Vec::new();
    let azs = az_list(&o.tables);
    let mut out = Vec::new();
    let mut any_latency = false;
    for (i, az) in azs.iter().enumerate() {
        let tables: Vec<&ManagedTable> = o.tables.iter().filter(|t| &t.az == az).collect();
        let routes: Vec<TableRoute> = tables
            .iter()
            .map(|t| {
                let (kind, target) = classify(t.default_route.as_ref(), &o.inventory);
                TableRoute { route_table: t.id.clone(), kind, target }
            })
            .collect();
        let mut kinds: Vec<&str> = routes.iter().map(|r| r.kind).collect();
        kinds.sort();
        kinds.dedup();
        let egress = if kinds.len() == 1 { kinds[0].to_string() } else { "mixed".to_string() };
        let mut attention = Vec::new();
        match egress.as_str() {
            "nat-instance" | "nat-eni" => {}
            "nat-gateway" => attention.push("on a NAT gateway".to_string()),
            "mixed" => attention.push("route tables disagree".to_string()),
            "none" => attention.push("no 0.0.0.0/0 route".to_string()),
            _ => attention.push("0.0.0.0/0 goes to an unmanaged target".to_string()),
        }
        if routes.iter().any(|r| r.target.ends_with("(blackhole)")) {
            attention.push("a route is blackholed".to_string());
        }
        // Since: the newest succeeded execution that moved this AZ to the kind of target it has now.
        let wanted = match egress.as_str() {
            "nat-gateway" => Some(Machine::Failover),
            "nat-instance" | "nat-eni" => Some(Machine::Fallback),
            _ => None,
        };
        let since_run = wanted.and_then(|m| o.runs.iter().find(|r| r.machine == m && r.succeeded() && r.moved.contains(az)));

        // Probes.
        let get = |m: &str| by_id.get(qid(i, m).as_str()).copied();
        let succeeded = sum_window(get(PROBE_SUCCESS));
        let failed = sum_window(get(PROBE_FAILURE));
        let start = o.window_end - WINDOW_MINUTES * 60;
        let per_minute: Vec<Option<f64>> = (0..WINDOW_MINUTES)
            .map(|k| {
                let t = start + k * 60;
                let ok = get(PROBE_SUCCESS).and_then(|s| s.points.get(&t)).copied().unwrap_or(0.0);
                let bad = get(PROBE_FAILURE).and_then(|s| s.points.get(&t)).copied().unwrap_or(0.0);
                (ok + bad > 0.0).then(|| one_decimal(100.0 * ok / (ok + bad)))
            })
            .collect();
        let success_percent = (succeeded + failed > 0).then(|| one_decimal(100.0 * succeeded as f64 / (succeeded + failed) as f64));
        let failures_by_cause: Vec<CauseCount> = Cause::ALL
            .iter()
            .map(|c| CauseCount { cause: c.as_str(), count: sum_window(get(&cause_metric(*c))) })
            .filter(|c| c.count > 0)
            .collect();
        let latest = |stat: &str| pct.get(qid(i, stat).as_str()).and_then(|s| s.points.values().last().copied()).map(one_decimal);
        let (p50, p99) = (latest("p50"), latest("p99"));
        any_latency |= p50.is_some() || p99.is_some();
        if let Some(p) = success_percent {
            if p < DEGRADED_BELOW_PERCENT {
                attention.push(format!("degraded: {p}% of probes succeeded"));
            }
        }

        // Checkers: heartbeats in the periods that overlap the last 2 minutes.
        let recent_from = epoch(o.now) - HEARTBEAT_WINDOW.as_secs() as i64;
        let hb = get(HEARTBEAT);
        let heartbeats: f64 = hb.map_or(0.0, |s| s.points.iter().filter(|(t, _)| **t + 60 > recent_from).map(|(_, v)| *v).sum());
        let last = hb.and_then(|s| s.points.iter().rev().find(|(_, v)| **v > 0.0).map(|(t, _)| fmt_time(from_epoch(*t))));
        let alive = heartbeats > 0.0;
        if !alive {
            attention.push("checker silent: no heartbeat in 2 min".to_string());
        }

        // Pause: the tag on any of the AZ's tables (the CLI sets it on all of them).
        let pause = tables.iter().find_map(|t| t.tags.get(TAG_PAUSED_UNTIL).map(|u| (u, t.tags.get(TAG_PAUSED_REASON)))).map(|(until, reason)| {
            let active = parse_time(until).is_some_and(|u| u > o.now);
            Pause { until: until.clone(), reason: reason.cloned(), active }
        });
        if let Some(p) = &pause {
            if p.active {
                attention.push(format!("automatic actions paused until {}", p.until));
            }
        }

        out.push(AzStatus {
            availability_zone: az.clone(),
            egress,
            route_tables: routes,
            since: since_run.and_then(|r| r.execution.stop).map(fmt_time),
            since_execution: since_run.map(|r| format!("{} {}", r.machine.as_str(), r.execution.name)),
            probes: Probes {
                window_minutes: WINDOW_MINUTES,
                succeeded,
                failed,
                success_percent,
                sparkline: sparkline(&per_minute),
                per_minute_success_percent: per_minute,
                latency_p50_ms: p50,
                latency_p99_ms: p99,
                failures_by_cause,
            },
            checkers: Checkers {
                alive,
                heartbeats: heartbeats.round() as u64,
                heartbeats_since: fmt_time(from_epoch((recent_from / 60) * 60)),
                last_heartbeat_minute: last,
            },
            pause,
            attention,
        });
    }
    match &o.percentiles {
        Err(e) => notes.push(format!("latency percentiles unavailable: GetMetricData with stat p50/p99 failed ({e}); emulators such as moto have no percentile statistics")),
        Ok(_) if !any_latency && !azs.is_empty() => notes.push(
            "latency percentiles unavailable: GetMetricData returned no p50/p99 of ProbeLatency (none recorded, or an endpoint without percentile statistics such as moto)"
                .to_string(),
        ),
        Ok(_) => {}
    }
    if azs.is_empty() {
        notes.push("no route table tagged nat-watchdog:az found".to_string());
    }
    if deployment.failover_arn.is_none() && deployment.fallback_arn.is_none() {
        notes.push("no state machine known (--stack or --failover-arn/--fallback-arn): executions not shown".to_string());
    }
    let executions: Vec<RunView> = o.runs.iter().filter(|r| r.running() || r.execution.start + RECENT >= o.now).map(Run::view).collect();
    let alarms_in_alarm: Vec<AlarmView> = o
        .alarms
        .iter()
        .map(|a| AlarmView {
            name: a.name.clone(),
            since: a.since.map(fmt_time),
            reason: a.reason.clone(),
            runbook: a.description.split("Runbook: ").nth(1).map(|s| s.trim().to_string()),
        })
        .collect();
    let healthy = out.iter().all(|a| a.attention.is_empty()) && alarms_in_alarm.is_empty() && !azs.is_empty();
    StatusReport {
        generated_at: fmt_time(o.now),
        deployment: deployment.clone(),
        overall: if healthy { "ok" } else { "attention" },
        availability_zones: out,
        executions,
        alarms_in_alarm,
        notes,
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("—".to_string(), |x| format!("{x} ms"))
}

pub fn render_table(r: &StatusReport, now: SystemTime) -> String {
    let mut s = String::new();
    let d = &r.deployment;
    let _ = writeln!(
        s,
        "nat-watchdog status  {}  stack {}  vpc {}  namespace {}",
        r.generated_at,
        d.stack.as_deref().unwrap_or("—"),
        d.vpc.as_deref().unwrap_or("any"),
        d.namespace
    );
    let _ = writeln!(s, "overall: {}", r.overall.to_uppercase());
    for a in &r.availability_zones {
        let _ = writeln!(s);
        let state = if a.attention.is_empty() { "OK".to_string() } else { format!("ATTENTION: {}", a.attention.join("; ")) };
        let _ = writeln!(s, "{}  {}", a.availability_zone, state);
        let since = match (&a.since, &a.since_execution) {
            (Some(t), Some(e)) => format!("since {t} ({} ago, {e})", since_ago(t, now)),
            _ => "since unknown".to_string(),
        };
        let _ = writeln!(s, "  egress    {}  {since}", a.egress);
        for t in &a.route_tables {
            let _ = writeln!(s, "            {}  {} {}", t.route_table, t.kind, t.target);
        }
        let p = &a.probes;
        let ok = p.success_percent.map_or("no probes".to_string(), |x| format!("{x}% ok"));
        let _ = writeln!(
            s,
            "  probes    {ok} ({} ok, {} failed, {} min)  {}  p50 {}  p99 {}",
            p.succeeded,
            p.failed,
            p.window_minutes,
            p.sparkline,
            opt_ms(p.latency_p50_ms),
            opt_ms(p.latency_p99_ms)
        );
        if !p.failures_by_cause.is_empty() {
            let c: Vec<String> = p.failures_by_cause.iter().map(|c| format!("{} {}", c.cause, c.count)).collect();
            let _ = writeln!(s, "  failures  {}", c.join(", "));
        }
        let ch = &a.checkers;
        let checkers = if ch.alive {
            format!("alive ({} heartbeats since {})", ch.heartbeats, ch.heartbeats_since)
        } else {
            format!("SILENT (last heartbeat minute: {})", ch.last_heartbeat_minute.as_deref().unwrap_or("none in 15 min"))
        };
        let _ = writeln!(s, "  checkers  {checkers}");
        let pause = match &a.pause {
            None => "none".to_string(),
            Some(p) => {
                let reason = p.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
                if p.active {
                    format!("PAUSED until {}{reason}", p.until)
                } else {
                    format!("expired at {}{reason}; run `resume` to remove the tag", p.until)
                }
            }
        };
        let _ = writeln!(s, "  pause     {pause}");
    }
    let _ = writeln!(s);
    if r.executions.is_empty() {
        let _ = writeln!(s, "executions (running or last 24 h): none");
    } else {
        let _ = writeln!(s, "executions (running or last 24 h):");
        for e in &r.executions {
            let stop = e.stopped_at.as_deref().unwrap_or("…");
            let moved = if e.moved.is_empty() { "moved nothing".to_string() } else { format!("moved {}", e.moved.join(",")) };
            let _ = writeln!(s, "  {:<8} {:<9} az {:<11} {} → {}  {}  {}", e.machine, e.status, e.availability_zone, e.started_at, stop, moved, e.name);
            let _ = writeln!(s, "           {}", e.why());
        }
    }
    if r.alarms_in_alarm.is_empty() {
        let _ = writeln!(s, "alarms in ALARM: none");
    } else {
        let _ = writeln!(s, "alarms in ALARM:");
        for a in &r.alarms_in_alarm {
            let _ = writeln!(s, "  {}  since {}  {}", a.name, a.since.as_deref().unwrap_or("?"), a.runbook.as_deref().unwrap_or(""));
            let _ = writeln!(s, "           {}", a.reason);
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

fn since_ago(t: &str, now: SystemTime) -> String {
    parse_time(t).map_or("?".to_string(), |t| fmt_span(t, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Alarm, NatGateway, NatInstance};

    fn deployment() -> Deployment {
        Deployment { stack: Some("demo".into()), vpc: Some("vpc-1".into()), failover_arn: None, fallback_arn: None, namespace: "NS".into() }
    }

    fn table(id: &str, az: &str, route: RawRoute) -> ManagedTable {
        ManagedTable { id: id.into(), az: az.into(), tags: Default::default(), default_route: Some(route) }
    }

    fn inventory() -> NatInventory {
        let mut inv = NatInventory::default();
        inv.instances.insert("i-a".into(), NatInstance { az: "a".into(), state: "running".into(), enis: vec!["eni-a".into()] });
        inv.enis.insert("eni-stable".into(), "a".into());
        inv.gateways.insert("nat-a".into(), NatGateway { standby_for: Some("a".into()), state: "available".into() });
        inv
    }

    fn series(id: &str, points: &[(i64, f64)]) -> MetricSeries {
        MetricSeries { id: id.into(), points: points.iter().copied().collect() }
    }

    const END: i64 = 1_800_000_000; // minute-aligned

    fn observed(tables: Vec<ManagedTable>, series: Vec<MetricSeries>) -> Observed {
        Observed {
            now: from_epoch(END - 30),
            tables,
            inventory: inventory(),
            runs: vec![],
            series,
            percentiles: Ok(vec![]),
            alarms: vec![],
            window_end: END,
        }
    }

    #[test]
    fn routes_are_classified_by_the_tag_contract() {
        let inv = inventory();
        let r = |f: fn(&mut RawRoute)| {
            let mut x = RawRoute::default();
            f(&mut x);
            classify(Some(&x), &inv)
        };
        assert_eq!(r(|x| x.nat_gateway_id = Some("nat-a".into())), ("nat-gateway", "nat-a (standby for a)".into()));
        assert_eq!(r(|x| x.network_interface_id = Some("eni-a".into())), ("nat-instance", "i-a via eni-a".into()));
        assert_eq!(
            r(|x| {
                x.network_interface_id = Some("eni-stable".into());
                x.instance_id = Some("i-a".into());
            }),
            ("nat-eni", "eni-stable on i-a".into())
        );
        assert_eq!(r(|x| x.gateway_id = Some("igw-1".into())), ("other", "igw-1".into()));
        assert_eq!(classify(None, &inv).0, "none");
    }

    #[test]
    fn a_healthy_az_on_its_nat_instance_is_ok() {
        let eni = RawRoute { network_interface_id: Some("eni-a".into()), ..Default::default() };
        let o = observed(
            vec![table("rtb-1", "a", eni)],
            vec![series("a0_ProbeSuccess", &[(END - 120, 100.0), (END - 60, 100.0)]), series("a0_Heartbeat", &[(END - 60, 2.0)])],
        );
        let r = judge(&deployment(), &o);
        assert_eq!(r.overall, "ok", "{r:#?}");
        let a = &r.availability_zones[0];
        assert_eq!(a.probes.success_percent, Some(100.0));
        assert_eq!(a.probes.sparkline, "·············██");
        assert!(a.checkers.alive);
    }

    #[test]
    fn gateway_degraded_silent_and_paused_each_need_attention() {
        let ngw = RawRoute { nat_gateway_id: Some("nat-a".into()), ..Default::default() };
        let mut t = table("rtb-1", "a", ngw);
        t.tags.insert(TAG_PAUSED_UNTIL.into(), fmt_time(from_epoch(END + 3600)));
        let o = observed(
            vec![t],
            vec![
                series("a0_ProbeSuccess", &[(END - 600, 10.0)]),
                series("a0_ProbeFailure", &[(END - 600, 30.0)]),
                series("a0_ProbeFailureTimeout", &[(END - 600, 30.0)]),
                series("a0_Heartbeat", &[(END - 600, 1.0)]),
            ],
        );
        let r = judge(&deployment(), &o);
        assert_eq!(r.overall, "attention");
        let a = &r.availability_zones[0];
        assert_eq!(
            a.attention,
            vec![
                "on a NAT gateway".to_string(),
                "degraded: 25% of probes succeeded".into(),
                "checker silent: no heartbeat in 2 min".into(),
                format!("automatic actions paused until {}", fmt_time(from_epoch(END + 3600))),
            ]
        );
        assert_eq!(a.probes.failures_by_cause, vec![CauseCount { cause: "timeout", count: 30 }]);
        assert_eq!(a.since, None, "no execution moved it: unknown");
    }

    #[test]
    fn missing_counters_read_as_zero_and_an_alarm_alone_needs_attention() {
        let eni = RawRoute { network_interface_id: Some("eni-a".into()), ..Default::default() };
        let mut o = observed(vec![table("rtb-1", "a", eni)], vec![series("a0_Heartbeat", &[(END - 60, 1.0)])]);
        o.alarms.push(Alarm {
            name: "demo-a-connectivity-degraded".into(),
            description: "x. Runbook: docs/RUNBOOK.md#connectivity-degraded".into(),
            reason: "Threshold Crossed".into(),
            since: None,
        });
        let r = judge(&deployment(), &o);
        let a = &r.availability_zones[0];
        assert_eq!((a.probes.succeeded, a.probes.failed, a.probes.success_percent), (0, 0, None));
        assert!(a.attention.is_empty());
        assert_eq!(r.overall, "attention");
        assert_eq!(r.alarms_in_alarm[0].runbook.as_deref(), Some("docs/RUNBOOK.md#connectivity-degraded"));
        assert!(r.notes.iter().any(|n| n.starts_with("latency percentiles unavailable")));
    }

    #[test]
    fn an_expired_pause_is_shown_but_does_not_count() {
        let eni = RawRoute { network_interface_id: Some("eni-a".into()), ..Default::default() };
        let mut t = table("rtb-1", "a", eni);
        t.tags.insert(TAG_PAUSED_UNTIL.into(), fmt_time(from_epoch(END - 3600)));
        let o = observed(vec![t], vec![series("a0_Heartbeat", &[(END - 60, 1.0)])]);
        let r = judge(&deployment(), &o);
        assert_eq!(r.availability_zones[0].pause.as_ref().map(|p| p.active), Some(false));
        assert_eq!(r.overall, "ok");
    }

    #[test]
    fn sparkline_scales_and_marks_gaps() {
        assert_eq!(sparkline(&[Some(0.0), Some(50.0), Some(100.0), None]), "▁▅█·");
    }
}
