//! `failover`/`fallback` (start by hand, wait, print) and `pause`/`resume` (the pause tags).

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::time::Duration;

use serde::Serialize;

use crate::cli::Machine;
use crate::deployment::Deployment;
use crate::error::{exit, Error};
use crate::history::{Run, RunView};
use crate::ports::{Clock, Executions, ManagedTable, Ports, Routes};
use crate::status::{classify, TableRoute};
use crate::times::{epoch, fmt_time};
use crate::vocab::{manual_input, TAG_PAUSED_REASON, TAG_PAUSED_UNTIL};

/// The Failover state machine times out after 120 s; wait a little longer than that.
pub const WAIT_FOR: Duration = Duration::from_secs(150);
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The AZ's managed route tables, or `UnknownAz` listing the AZs that exist.
pub async fn tables_of(routes: &impl Routes, vpc: Option<&str>, az: &str) -> Result<Vec<ManagedTable>, Error> {
    let all = routes.managed_tables(vpc).await?;
    let mine: Vec<ManagedTable> = all.iter().filter(|t| t.az == az).cloned().collect();
    if mine.is_empty() {
        let mut known: Vec<&str> = all.iter().map(|t| t.az.as_str()).collect();
        known.sort();
        known.dedup();
        return Err(Error::UnknownAz {
            az: az.to_string(),
            scope: vpc.map(|v| format!(" in {v}")).unwrap_or_default(),
            known: if known.is_empty() { "none".into() } else { known.join(", ") },
        });
    }
    Ok(mine)
}

/// Asks on `prompt_out`, reads one line from `answers`; anything but `y`/`yes` declines.
pub fn confirm(question: &str, prompt_out: &mut impl Write, answers: &mut impl BufRead) -> Result<(), Error> {
    let _ = write!(prompt_out, "{question} [y/N] ");
    let _ = prompt_out.flush();
    let mut line = String::new();
    let _ = answers.read_line(&mut line);
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Error::NotConfirmed),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StartReport {
    pub execution: RunView,
    pub execution_arn: String,
    pub route_tables_before: Vec<TableRoute>,
    pub route_tables_after: Vec<TableRoute>,
}

#[allow(clippy::too_many_arguments)]
pub async fn start<R: Routes, M, A, E: Executions, S, C: Clock>(
    ports: &Ports<R, M, A, E, S, C>,
    deployment: &Deployment,
    machine: Machine,
    az: &str,
    yes: bool,
    reason: Option<&str>,
    prompt_out: &mut impl Write,
    answers: &mut impl BufRead,
) -> Result<(StartReport, u8), Error> {
    let vpc = deployment.vpc.as_deref();
    let tables = tables_of(&ports.routes, vpc, az).await?;
    let arn = deployment.require_arn(machine)?.to_string();
    let inventory = ports.routes.nat_inventory(vpc).await?;
    let before = routes_of(&tables, &inventory);
    if !yes {
        let now: Vec<String> = before.iter().map(|t| format!("{} → {} {}", t.route_table, t.kind, t.target)).collect();
        let question = format!("Start {} for {az} (trigger manual; now {})?", machine.as_str(), now.join(", "));
        confirm(&question, prompt_out, answers)?;
    }
    let name = format!("nat-manual-{}-{az}-{}", machine.as_str().to_ascii_lowercase(), epoch(ports.clock.now()));
    let execution_arn = ports.executions.start(&arn, &name, &manual_input(az, reason)).await?;
    let mut waited = Duration::ZERO;
    let execution = loop {
        let e = ports.executions.describe(&execution_arn).await?;
        if e.status != "RUNNING" {
            break e;
        }
        if waited >= WAIT_FOR {
            return Err(Error::StillRunning { name, arn: execution_arn, waited_secs: waited.as_secs() });
        }
        tokio::time::sleep(POLL_EVERY).await;
        waited += POLL_EVERY;
    };
    let run = Run::new(machine, execution);
    let after = routes_of(&tables_of(&ports.routes, vpc, az).await?, &ports.routes.nat_inventory(vpc).await?);
    let code = if run.succeeded() { exit::OK } else { exit::ATTENTION };
    Ok((StartReport { execution: run.view(), execution_arn, route_tables_before: before, route_tables_after: after }, code))
}

fn routes_of(tables: &[ManagedTable], inv: &crate::ports::NatInventory) -> Vec<TableRoute> {
    tables
        .iter()
        .map(|t| {
            let (kind, target) = classify(t.default_route.as_ref(), inv);
            TableRoute { route_table: t.id.clone(), kind, target }
        })
        .collect()
}

pub fn render_start(r: &StartReport) -> String {
    let mut s = String::new();
    let e = &r.execution;
    let _ = writeln!(s, "{} {} for {}: {}", e.machine, e.name, e.availability_zone, e.status);
    let _ = writeln!(s, "  started {}  stopped {}", e.started_at, e.stopped_at.as_deref().unwrap_or("—"));
    if let Some(err) = &e.error {
        let _ = writeln!(s, "  error   {err}: {}", e.cause.as_deref().unwrap_or(""));
    }
    let _ = writeln!(s, "  moved   {}", if e.moved.is_empty() { "nothing".to_string() } else { e.moved.join(", ") });
    for (b, a) in r.route_tables_before.iter().zip(&r.route_tables_after) {
        let _ = writeln!(s, "  {}  {} {}  →  {} {}", b.route_table, b.kind, b.target, a.kind, a.target);
    }
    s
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PauseReport {
    pub availability_zone: String,
    pub route_tables: Vec<String>,
    /// None after `resume`.
    pub paused_until: Option<String>,
    pub reason: Option<String>,
}

#[allow(clippy::too_many_arguments)]
pub async fn pause<R: Routes, M, A, E, S, C: Clock>(
    ports: &Ports<R, M, A, E, S, C>,
    deployment: &Deployment,
    az: &str,
    duration: Duration,
    reason: Option<&str>,
    yes: bool,
    prompt_out: &mut impl Write,
    answers: &mut impl BufRead,
) -> Result<PauseReport, Error> {
    let tables = tables_of(&ports.routes, deployment.vpc.as_deref(), az).await?;
    let until = fmt_time(ports.clock.now() + duration);
    if !yes {
        let q = format!("Pause automatic failover, fallback and replacement for {az} until {until}?");
        confirm(&q, prompt_out, answers)?;
    }
    let ids: Vec<String> = tables.iter().map(|t| t.id.clone()).collect();
    let mut tags = vec![(TAG_PAUSED_UNTIL.to_string(), until.clone())];
    match reason {
        Some(r) => tags.push((TAG_PAUSED_REASON.to_string(), r.to_string())),
        // A reason left from an earlier pause would now be wrong.
        None => ports.routes.remove_tags(&ids, &[TAG_PAUSED_REASON]).await?,
    }
    ports.routes.set_tags(&ids, &tags).await?;
    Ok(PauseReport { availability_zone: az.into(), route_tables: ids, paused_until: Some(until), reason: reason.map(str::to_string) })
}

pub async fn resume<R: Routes, M, A, E, S, C>(ports: &Ports<R, M, A, E, S, C>, deployment: &Deployment, az: &str) -> Result<PauseReport, Error> {
    let tables = tables_of(&ports.routes, deployment.vpc.as_deref(), az).await?;
    let ids: Vec<String> = tables.iter().map(|t| t.id.clone()).collect();
    ports.routes.remove_tags(&ids, &[TAG_PAUSED_UNTIL, TAG_PAUSED_REASON]).await?;
    Ok(PauseReport { availability_zone: az.into(), route_tables: ids, paused_until: None, reason: None })
}

pub fn render_pause(r: &PauseReport) -> String {
    match &r.paused_until {
        Some(u) => format!(
            "{}: automatic actions paused until {u}{} on {}\n",
            r.availability_zone,
            r.reason.as_ref().map(|x| format!(" ({x})")).unwrap_or_default(),
            r.route_tables.join(", ")
        ),
        None => format!("{}: pause lifted on {}\n", r.availability_zone, r.route_tables.join(", ")),
    }
}

