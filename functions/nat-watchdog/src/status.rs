//! `status`: per AZ, where egress goes and since when, probes of the last 15 minutes, checkers,
//! the NAT-instance path, the recovery (automatic fallback suspended, its executions), pauses, and
//! what to do next; executions running or recent; alarms in ALARM. Gathered through the ports,
//! judged and rendered without AWS.

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
use crate::ports::Execution;
use crate::vocab::{
    cause_metric, Cause, AUTO_FALLBACK_SUSPENDED, NAT_PATH_UNHEALTHY, PROBE_FAILURE, PROBE_LATENCY, TAG_PAUSED_REASON, TAG_PAUSED_UNTIL,
    UNHEALTHY,
};

pub const WINDOW_MINUTES: i64 = 15;
/// A checker writes one `Unhealthy` value per round; none for this long means it is silent (as the alarm).
pub const LIVENESS_WINDOW: Duration = Duration::from_secs(120);
/// The NAT-instance path's verdict is the worst `NatPathUnhealthy` of the minutes overlapping this span.
pub const NAT_PATH_WINDOW: Duration = Duration::from_secs(180);
/// The recovery publishes `AutoFallbackSuspended` every period (at most 300 s): one in this span counts.
pub const SUSPENDED_WINDOW: Duration = Duration::from_secs(360);
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
    pub nat_path: NatPath,
    /// The recovery stopped falling this AZ back by itself (it flapped): a person decides.
    pub auto_fallback_suspended: bool,
    /// The recovery's watch executions of this AZ; None: no recovery state machine known.
    pub recovery: Option<Recovery>,
    pub pause: Option<Pause>,
    /// Why this AZ needs attention; empty when healthy.
    pub attention: Vec<String>,
    /// What to do (or expect) next, from all of the above.
    pub next_step: String,
}

/// The NAT-instance path, as the checker's canaries see it (`NatPathUnhealthy`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NatPath {
    /// `healthy`, `unhealthy`, or `unknown` (no data: no canaries configured, or the checker is silent).
    pub state: &'static str,
    /// Minutes of the 15 with an unhealthy verdict.
    pub unhealthy_minutes: u64,
    /// Start of the last minute with a verdict.
    pub last_report_minute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// Running watch executions of this AZ (normally at most one).
    pub running: Vec<String>,
    /// The newest watch execution of this AZ in the last 24 h, running or not.
    pub last: Option<RecoveryRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveryRun {
    pub name: String,
    pub status: String,
    pub started_at: String,
    pub stopped_at: Option<String>,
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
    /// Rounds reported (SampleCount of `Unhealthy`) in the one-minute periods that overlap the last 2 minutes…
    pub rounds: u64,
    /// …which start here.
    pub rounds_since: String,
    /// Start of the last minute with a reported round.
    pub last_round_minute: Option<String>,
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
    /// Executions of the recovery state machine (None: none deployed or known; Err: could not list).
    pub recovery: Option<Result<Vec<Execution>, String>>,
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
    // The recovery is optional: a failure to list it costs its lines, not the screen.
    let recovery = match &deployment.recovery_arn {
        Some(arn) => Some(ports.executions.executions(arn, now - RECENT).await.map_err(|e| e.to_string())),
        None => None,
    };
    Ok(Observed { now, tables, inventory, runs, series, percentiles, alarms, window_end, recovery })
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
        // Successful probes = SampleCount(ProbeLatency); liveness = SampleCount(Unhealthy).
        let mut metrics = vec![
            (PROBE_LATENCY.to_string(), "SampleCount"),
            (UNHEALTHY.to_string(), "SampleCount"),
            (PROBE_FAILURE.to_string(), "Sum"),
            (NAT_PATH_UNHEALTHY.to_string(), "Maximum"),
            (AUTO_FALLBACK_SUSPENDED.to_string(), "Maximum"),
        ];
        metrics.extend(Cause::ALL.iter().map(|c| (cause_metric(*c), "Sum")));
        for (m, stat) in metrics {
            q.push(MetricQuery { id: qid(i, &m), metric: m, az: az.clone(), stat: stat.into(), period_secs: 60 });
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
        let succeeded = sum_window(get(PROBE_LATENCY));
        let failed = sum_window(get(PROBE_FAILURE));
        let start = o.window_end - WINDOW_MINUTES * 60;
        let per_minute: Vec<Option<f64>> = (0..WINDOW_MINUTES)
            .map(|k| {
                let t = start + k * 60;
                let ok = get(PROBE_LATENCY).and_then(|s| s.points.get(&t)).copied().unwrap_or(0.0);
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

        // Checkers: rounds reported in the periods that overlap the last 2 minutes.
        let recent_from = epoch(o.now) - LIVENESS_WINDOW.as_secs() as i64;
        let rounds_series = get(UNHEALTHY);
        let rounds: f64 = rounds_series.map_or(0.0, |s| s.points.iter().filter(|(t, _)| **t + 60 > recent_from).map(|(_, v)| *v).sum());
        let last = rounds_series.and_then(|s| s.points.iter().rev().find(|(_, v)| **v > 0.0).map(|(t, _)| fmt_time(from_epoch(*t))));
        let alive = rounds > 0.0;
        if !alive {
            attention.push("checker silent: no round reported in 2 min".to_string());
        }

        // The NAT-instance path: the worst verdict of the minutes overlapping the last 3.
        let nat_series = get(NAT_PATH_UNHEALTHY);
        let nat_from = epoch(o.now) - NAT_PATH_WINDOW.as_secs() as i64;
        let nat_recent: Vec<f64> = nat_series.map_or(Vec::new(), |s| s.points.iter().filter(|(t, _)| **t + 60 > nat_from).map(|(_, v)| *v).collect());
        let nat_path = NatPath {
            state: if nat_recent.is_empty() {
                "unknown"
            } else if nat_recent.iter().any(|v| *v >= 1.0) {
                "unhealthy"
            } else {
                "healthy"
            },
            unhealthy_minutes: nat_series.map_or(0, |s| s.points.values().filter(|v| **v >= 1.0).count() as u64),
            last_report_minute: nat_series.and_then(|s| s.points.keys().next_back()).map(|t| fmt_time(from_epoch(*t))),
        };
        let gateway = egress == "nat-gateway";
        if nat_path.state == "unhealthy" && !gateway {
            attention.push("NAT-instance path unhealthy".to_string());
        }

        // Automatic fallback suspended (the recovery's metric).
        let suspended_from = epoch(o.now) - SUSPENDED_WINDOW.as_secs() as i64;
        let auto_fallback_suspended =
            get(AUTO_FALLBACK_SUSPENDED).is_some_and(|s| s.points.iter().any(|(t, v)| *t + 60 > suspended_from && *v >= 1.0));
        if auto_fallback_suspended {
            attention.push("automatic fallback suspended".to_string());
        }
        let recovery = match &o.recovery {
            Some(Ok(executions)) => Some(recovery_of(az, executions)),
            _ => None,
        };

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

        let next_step = next_step(&NextStepFacts {
            az,
            egress: &egress,
            alive,
            degraded: success_percent.is_some_and(|p| p < DEGRADED_BELOW_PERCENT),
            nat_path: nat_path.state,
            suspended: auto_fallback_suspended,
            recovery: recovery.as_ref().map(|r| !r.running.is_empty()),
            paused_until: pause.as_ref().filter(|p| p.active).map(|p| p.until.as_str()),
        });
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
                rounds: rounds.round() as u64,
                rounds_since: fmt_time(from_epoch((recent_from / 60) * 60)),
                last_round_minute: last,
            },
            nat_path,
            auto_fallback_suspended,
            recovery,
            pause,
            attention,
            next_step,
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
    if let Some(Err(e)) = &o.recovery {
        notes.push(format!("recovery executions unavailable: {e}"));
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

/// The recovery's watch executions of `az` (input `{"watch": {"availabilityZone": AZ, …}}`), newest first.
fn recovery_of(az: &str, executions: &[Execution]) -> Recovery {
    let watches_az = |e: &&Execution| {
        e.input
            .as_deref()
            .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
            .is_some_and(|v| v["watch"]["availabilityZone"].as_str() == Some(az))
    };
    let mut mine: Vec<&Execution> = executions.iter().filter(watches_az).collect();
    mine.sort_by_key(|e| std::cmp::Reverse(e.start));
    Recovery {
        running: mine.iter().filter(|e| e.status == "RUNNING").map(|e| e.name.clone()).collect(),
        last: mine.first().map(|e| RecoveryRun {
            name: e.name.clone(),
            status: e.status.clone(),
            started_at: fmt_time(e.start),
            stopped_at: e.stop.map(fmt_time),
        }),
    }
}

/// What `next_step` is judged from.
struct NextStepFacts<'a> {
    az: &'a str,
    egress: &'a str,
    alive: bool,
    degraded: bool,
    nat_path: &'static str,
    suspended: bool,
    /// Some(running?) when a recovery state machine is known.
    recovery: Option<bool>,
    paused_until: Option<&'a str>,
}

/// One line: the first thing the on-call should do or expect, most urgent first.
fn next_step(f: &NextStepFacts) -> String {
    let az = f.az;
    if let Some(until) = f.paused_until {
        return format!("paused until {until}: automatic actions stopped; `nat-watchdog resume --az {az}` when the work is done");
    }
    if !f.alive {
        return "runbook: checker-silent (no verdict: detection is off for this AZ)".to_string();
    }
    match f.egress {
        "nat-gateway" => {
            if f.suspended {
                return "runbook: auto-fallback-suspended (find why the NAT path flaps, then `nat-watchdog fallback`)".to_string();
            }
            match (f.nat_path, f.recovery) {
                ("healthy", Some(true)) => "automatic fallback expected after hold".to_string(),
                ("healthy", _) => format!("NAT-instance path healthy and no recovery running: `nat-watchdog fallback --az {az}`"),
                ("unhealthy", Some(true)) => "NAT-instance path unhealthy: recovery repairs or replaces the instance; stay on the gateway".to_string(),
                ("unhealthy", _) => "NAT-instance path unhealthy: repair or replace the NAT instance (runbook: nat-repair-needed)".to_string(),
                _ => format!("NAT-instance path unknown (no canaries or no data): check the instance, then `nat-watchdog fallback --az {az}`"),
            }
        }
        "nat-instance" | "nat-eni" if f.degraded => "runbook: connectivity-degraded".to_string(),
        "nat-instance" | "nat-eni" if f.nat_path == "unhealthy" => {
            format!("NAT-instance path unhealthy while egress uses it: expect a failover, or `nat-watchdog failover --az {az}`")
        }
        "nat-instance" | "nat-eni" => "nothing to do".to_string(),
        "none" | "mixed" => format!("routes disagree or are missing: `nat-watchdog failover --az {az}` sets them all (runbook: failover-trigger-failed)"),
        _ => "0.0.0.0/0 is not managed by nat-watchdog: check who changed it".to_string(),
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
            format!("alive ({} rounds since {})", ch.rounds, ch.rounds_since)
        } else {
            format!("SILENT (last round minute: {})", ch.last_round_minute.as_deref().unwrap_or("none in 15 min"))
        };
        let _ = writeln!(s, "  checkers  {checkers}");
        let np = &a.nat_path;
        let nat_path = match np.state {
            "unknown" => "unknown (no NatPathUnhealthy: no canaries, or the checker is silent)".to_string(),
            state => format!("{state} ({} unhealthy min of {})", np.unhealthy_minutes, p.window_minutes),
        };
        let _ = writeln!(s, "  nat path  {nat_path}");
        let recovery = match &a.recovery {
            None => "not deployed (no RecoveryStateMachineArn)".to_string(),
            Some(r) => match (&r.running[..], &r.last) {
                ([name, ..], _) => format!("running {name}"),
                ([], Some(last)) => format!("last {} {} {}", last.status, last.stopped_at.as_deref().unwrap_or(&last.started_at), last.name),
                ([], None) => "none in 24 h".to_string(),
            },
        };
        let suspended = if a.auto_fallback_suspended { "  AUTO-FALLBACK SUSPENDED" } else { "" };
        let _ = writeln!(s, "  recovery  {recovery}{suspended}");
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
        let _ = writeln!(s, "  next      {}", a.next_step);
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
        Deployment { stack: Some("demo".into()), vpc: Some("vpc-1".into()), failover_arn: None, fallback_arn: None, recovery_arn: None, namespace: "NS".into() }
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
            recovery: None,
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
            vec![series("a0_ProbeLatency", &[(END - 120, 100.0), (END - 60, 100.0)]), series("a0_Unhealthy", &[(END - 60, 2.0)])],
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
                series("a0_ProbeLatency", &[(END - 600, 10.0)]),
                series("a0_ProbeFailure", &[(END - 600, 30.0)]),
                series("a0_ProbeFailureTimeout", &[(END - 600, 30.0)]),
                series("a0_Unhealthy", &[(END - 600, 1.0)]),
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
                "checker silent: no round reported in 2 min".into(),
                format!("automatic actions paused until {}", fmt_time(from_epoch(END + 3600))),
            ]
        );
        assert_eq!(a.probes.failures_by_cause, vec![CauseCount { cause: "timeout", count: 30 }]);
        assert_eq!(a.since, None, "no execution moved it: unknown");
    }

    #[test]
    fn missing_counters_read_as_zero_and_an_alarm_alone_needs_attention() {
        let eni = RawRoute { network_interface_id: Some("eni-a".into()), ..Default::default() };
        let mut o = observed(vec![table("rtb-1", "a", eni)], vec![series("a0_Unhealthy", &[(END - 60, 1.0)])]);
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
        let o = observed(vec![t], vec![series("a0_Unhealthy", &[(END - 60, 1.0)])]);
        let r = judge(&deployment(), &o);
        assert_eq!(r.availability_zones[0].pause.as_ref().map(|p| p.active), Some(false));
        assert_eq!(r.overall, "ok");
    }

    #[test]
    fn sparkline_scales_and_marks_gaps() {
        assert_eq!(sparkline(&[Some(0.0), Some(50.0), Some(100.0), None]), "▁▅█·");
    }

    fn watch(name: &str, az: &str, status: &str, start: i64) -> Execution {
        Execution {
            arn: format!("arn:exec:{name}"),
            name: name.into(),
            status: status.into(),
            start: from_epoch(start),
            stop: (status != "RUNNING").then(|| from_epoch(start + 60)),
            input: Some(format!(r#"{{"watch":{{"availabilityZone":"{az}","failoverExecutionArn":"arn:x"}}}}"#)),
            output: None,
            error: None,
            cause: None,
        }
    }

    fn on_gateway(series: Vec<MetricSeries>, recovery: Option<Vec<Execution>>) -> AzStatus {
        let ngw = RawRoute { nat_gateway_id: Some("nat-a".into()), ..Default::default() };
        let mut o = observed(vec![table("rtb-1", "a", ngw)], series);
        o.recovery = recovery.map(Ok);
        judge(&deployment(), &o).availability_zones.remove(0)
    }

    fn alive() -> MetricSeries {
        series("a0_Unhealthy", &[(END - 60, 150.0)])
    }

    #[test]
    fn liveness_is_the_sample_count_of_unhealthy_and_success_comes_from_latency_samples() {
        let eni = RawRoute { network_interface_id: Some("eni-a".into()), ..Default::default() };
        let o = observed(
            vec![table("rtb-1", "a", eni)],
            vec![series("a0_ProbeLatency", &[(END - 60, 90.0)]), series("a0_ProbeFailure", &[(END - 60, 10.0)]), alive()],
        );
        let a = &judge(&deployment(), &o).availability_zones[0];
        assert_eq!((a.probes.succeeded, a.probes.failed, a.probes.success_percent), (90, 10, Some(90.0)));
        assert_eq!((a.checkers.alive, a.checkers.rounds), (true, 150));
        // Rounds only before the last 2 minutes: silent.
        let o = observed(vec![table("rtb-1", "a", RawRoute::default())], vec![series("a0_Unhealthy", &[(END - 300, 150.0)])]);
        let a = &judge(&deployment(), &o).availability_zones[0];
        assert!(!a.checkers.alive);
        assert_eq!(a.checkers.last_round_minute, Some(fmt_time(from_epoch(END - 300))));
    }

    #[test]
    fn the_nat_path_is_the_worst_verdict_of_the_last_minutes_and_unknown_without_data() {
        let path = |points: &[(i64, f64)]| on_gateway(vec![alive(), series("a0_NatPathUnhealthy", points)], None).nat_path;
        assert_eq!(path(&[(END - 600, 1.0), (END - 120, 0.0), (END - 60, 0.0)]).state, "healthy");
        assert_eq!(path(&[(END - 600, 1.0), (END - 120, 0.0), (END - 60, 0.0)]).unhealthy_minutes, 1);
        assert_eq!(path(&[(END - 120, 1.0), (END - 60, 0.0)]).state, "unhealthy", "one bad minute of the last three");
        assert_eq!(path(&[(END - 600, 0.0)]).state, "unknown", "nothing recent: canaries gone or checker silent");
        assert_eq!(on_gateway(vec![alive()], None).nat_path.state, "unknown");
    }

    #[test]
    fn the_next_step_on_a_gateway_follows_the_nat_path_the_recovery_and_the_suspension() {
        let healthy = || series("a0_NatPathUnhealthy", &[(END - 60, 0.0)]);
        let running = || Some(vec![watch("w-b", "b", "RUNNING", END - 100), watch("w-a", "a", "RUNNING", END - 900), watch("w-a0", "a", "SUCCEEDED", END - 90_000)]);
        let a = on_gateway(vec![alive(), healthy()], running());
        assert_eq!(a.next_step, "automatic fallback expected after hold");
        let r = a.recovery.unwrap();
        assert_eq!(r.running, vec!["w-a".to_string()], "only this AZ's watches");
        assert_eq!(r.last.map(|l| l.name), Some("w-a".into()));

        let a = on_gateway(vec![alive(), healthy()], Some(vec![watch("w-a", "a", "SUCCEEDED", END - 900)]));
        assert_eq!(a.next_step, "NAT-instance path healthy and no recovery running: `nat-watchdog fallback --az a`");
        assert_eq!(a.recovery.and_then(|r| r.last).map(|l| l.status), Some("SUCCEEDED".into()));

        let suspended = series("a0_AutoFallbackSuspended", &[(END - 120, 1.0)]);
        let a = on_gateway(vec![alive(), healthy(), suspended], running());
        assert!(a.auto_fallback_suspended);
        assert!(a.next_step.starts_with("runbook: auto-fallback-suspended"), "{}", a.next_step);
        assert!(a.attention.contains(&"automatic fallback suspended".to_string()), "{:?}", a.attention);
        // A suspension that ended (no datum in the last periods) no longer counts.
        let old = series("a0_AutoFallbackSuspended", &[(END - 900, 1.0)]);
        assert!(!on_gateway(vec![alive(), healthy(), old], running()).auto_fallback_suspended);

        let sick = series("a0_NatPathUnhealthy", &[(END - 60, 1.0)]);
        assert!(on_gateway(vec![alive(), sick.clone()], running()).next_step.contains("recovery repairs or replaces"));
        assert!(on_gateway(vec![alive(), sick], None).next_step.contains("runbook: nat-repair-needed"));
        assert!(on_gateway(vec![alive()], running()).next_step.starts_with("NAT-instance path unknown"));
        assert_eq!(on_gateway(vec![alive()], None).recovery, None, "no recovery machine known");
    }

    #[test]
    fn a_broken_nat_path_under_live_egress_needs_attention_and_a_paused_az_says_so_first() {
        let eni = RawRoute { network_interface_id: Some("eni-a".into()), ..Default::default() };
        let sick = series("a0_NatPathUnhealthy", &[(END - 60, 1.0)]);
        let a = judge(&deployment(), &observed(vec![table("rtb-1", "a", eni.clone())], vec![alive(), sick])).availability_zones.remove(0);
        assert_eq!(a.attention, vec!["NAT-instance path unhealthy".to_string()]);
        assert!(a.next_step.contains("expect a failover"), "{}", a.next_step);

        let ok = judge(&deployment(), &observed(vec![table("rtb-1", "a", eni.clone())], vec![alive()])).availability_zones.remove(0);
        assert_eq!(ok.next_step, "nothing to do");

        let mut t = table("rtb-1", "a", eni);
        t.tags.insert(TAG_PAUSED_UNTIL.into(), fmt_time(from_epoch(END + 3600)));
        let paused = judge(&deployment(), &observed(vec![t], vec![])).availability_zones.remove(0);
        assert!(paused.next_step.starts_with("paused until"), "{}", paused.next_step);
    }

    #[test]
    fn a_recovery_that_cannot_be_listed_is_a_note_not_a_failure() {
        let mut o = observed(vec![table("rtb-1", "a", RawRoute::default())], vec![alive()]);
        o.recovery = Some(Err("states:ListExecutions failed: AccessDeniedException".into()));
        let r = judge(&deployment(), &o);
        assert_eq!(r.availability_zones[0].recovery, None);
        assert!(r.notes.iter().any(|n| n.starts_with("recovery executions unavailable") && n.contains("AccessDenied")), "{:?}", r.notes);
    }
}
