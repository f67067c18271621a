//! One invocation: resolve the deployment, run the command through the ports, render, pick the
//! exit code. `main` only builds the real ports and prints.

use std::io::{BufRead, Write};

use crate::actions;
use crate::cli::{Command, Invocation, Output, HELP};
use crate::deployment::Deployment;
use crate::error::{exit, Error};
use crate::incidents;
use crate::ports::{Alarms, Clock, Executions, Metrics, Ports, Routes, StackOutputs};
use crate::status;

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).map(|s| s + "\n").unwrap_or_default()
}

/// Runs `inv`; writes the result to `out`, prompts to `prompt_out`, reads answers from `answers`.
pub async fn run<R: Routes, M: Metrics, A: Alarms, E: Executions, S: StackOutputs, C: Clock>(
    inv: &Invocation,
    ports: &Ports<R, M, A, E, S, C>,
    out: &mut impl Write,
    prompt_out: &mut impl Write,
    answers: &mut impl BufRead,
) -> Result<u8, Error> {
    if inv.command == Command::Help {
        let _ = out.write_all(HELP.as_bytes());
        return Ok(exit::OK);
    }
    let deployment = Deployment::resolve(&inv.deployment, &ports.stacks).await?;
    let (text, code) = match &inv.command {
        Command::Help => (HELP.to_string(), exit::OK),
        Command::Status => {
            let observed = status::gather(ports, &deployment).await?;
            let report = status::judge(&deployment, &observed);
            let code = if report.overall == "ok" { exit::OK } else { exit::ATTENTION };
            let text = match inv.output {
                Output::Table => status::render_table(&report, observed.now),
                Output::Json => json(&report),
            };
            (text, code)
        }
        Command::Incidents { since } => {
            let report = incidents::gather(ports, &deployment, *since).await?;
            let text = match inv.output {
                Output::Table => incidents::render_table(&report),
                Output::Json => json(&report),
            };
            (text, exit::OK)
        }
        Command::Start { machine, az, yes, reason } => {
            let (report, code) = actions::start(ports, &deployment, *machine, az, *yes, reason.as_deref(), prompt_out, answers).await?;
            let text = match inv.output {
                Output::Table => actions::render_start(&report),
                Output::Json => json(&report),
            };
            (text, code)
        }
        Command::Pause { az, duration, reason, yes } => {
            let report = actions::pause(ports, &deployment, az, *duration, reason.as_deref(), *yes, prompt_out, answers).await?;
            (render_pause(inv.output, &report), exit::OK)
        }
        Command::Resume { az } => {
            let report = actions::resume(ports, &deployment, az).await?;
            (render_pause(inv.output, &report), exit::OK)
        }
    };
    let _ = out.write_all(text.as_bytes());
    Ok(code)
}

fn render_pause(output: Output, r: &actions::PauseReport) -> String {
    match output {
        Output::Table => actions::render_pause(r),
        Output::Json => json(r),
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse;
    use crate::fake::{ports, Fake};
    use crate::ports::{ManagedTable, NatInstance, RawRoute};
    use crate::vocab::{TAG_PAUSED_REASON, TAG_PAUSED_UNTIL};

    const NOW: i64 = 1_800_000_000;

    fn world() -> Fake {
        let f = Fake::default();
        {
            let mut s = f.0.borrow_mut();
            s.now = NOW;
            for (id, az) in [("rtb-a1", "a"), ("rtb-a2", "a"), ("rtb-b1", "b")] {
                s.tables.push(ManagedTable {
                    id: id.into(),
                    az: az.into(),
                    tags: Default::default(),
                    default_route: Some(RawRoute { network_interface_id: Some(format!("eni-{az}")), ..Default::default() }),
                });
            }
            for az in ["a", "b"] {
                s.inventory.instances.insert(format!("i-{az}"), NatInstance { az: az.into(), state: "running".into(), enis: vec![format!("eni-{az}")] });
            }
            let outputs = [("FailoverStateMachineArn", "arn:failover"), ("FallbackStateMachineArn", "arn:fallback"), ("VpcId", "vpc-1")];
            s.outputs.insert("demo".into(), outputs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
        f
    }

    async fn call(f: &Fake, args: &str, answer: &str) -> (Result<u8, Error>, String, String) {
        let inv = parse(args.split_whitespace().map(String::from)).unwrap();
        let (mut out, mut prompt) = (Vec::new(), Vec::new());
        let r = run(&inv, &ports(f), &mut out, &mut prompt, &mut answer.as_bytes()).await;
        (r, String::from_utf8(out).unwrap(), String::from_utf8(prompt).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn failover_asks_then_starts_the_manual_input_and_reports_the_moved_route() {
        let f = world();
        let (r, out, prompt) = call(&f, "--stack demo failover --az a", "yes\n").await;
        assert_eq!(r.unwrap(), exit::OK, "{out}");
        assert!(prompt.starts_with("Start Failover for a (trigger manual; now rtb-a1 → nat-instance i-a via eni-a"), "{prompt}");
        let started = f.0.borrow().started.clone();
        assert_eq!(started, vec![("arn:failover".into(), format!("nat-manual-failover-a-{NOW}"), r#"{"availabilityZone":"a","trigger":"manual"}"#.into())]);
        assert!(out.contains("rtb-a1  nat-instance i-a via eni-a  →  nat-gateway nat-1"), "{out}");
        assert!(out.contains("moved   a"), "{out}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_declined_prompt_starts_nothing() {
        let f = world();
        let (r, _, _) = call(&f, "--stack demo fallback --az a", "n\n").await;
        assert!(matches!(r, Err(Error::NotConfirmed)));
        assert!(f.0.borrow().started.is_empty());
        let (r, _, _) = call(&f, "--stack demo fallback --az a", "").await;
        assert_eq!(r.unwrap_err().exit_code(), exit::NOT_CONFIRMED);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_execution_exits_1_and_an_unknown_az_exits_2_naming_the_known_ones() {
        let f = world();
        f.0.borrow_mut().start_result = Some(("FAILED".into(), String::new()));
        let (r, out, _) = call(&f, "--stack demo failover --az b --yes", "").await;
        assert_eq!(r.unwrap(), exit::ATTENTION);
        assert!(out.contains(": FAILED"), "{out}");
        let (r, _, _) = call(&f, "--stack demo failover --az c --yes", "").await;
        let e = r.unwrap_err();
        assert_eq!(e.to_string(), r#"unknown AZ "c": no route table tagged nat-watchdog:az=c in vpc-1; managed AZs: a, b"#);
        assert_eq!(e.exit_code(), exit::USAGE);
    }

    #[tokio::test(start_paused = true)]
    async fn without_an_arn_the_missing_output_or_flag_is_named() {
        let f = world();
        f.0.borrow_mut().outputs.get_mut("demo").unwrap().remove("FallbackStateMachineArn");
        let (r, _, _) = call(&f, "--stack demo fallback --az a --yes", "").await;
        assert_eq!(r.unwrap_err().to_string(), r#"stack "demo" has no output FallbackStateMachineArn; pass --fallback-arn"#);
        let (r, _, _) = call(&f, "--stack nope status", "").await;
        assert_eq!(r.unwrap_err().exit_code(), exit::USAGE);
    }

    #[tokio::test(start_paused = true)]
    async fn pause_tags_every_table_of_the_az_shows_in_status_and_resume_removes_it() {
        let f = world();
        let (r, out, _) = call(&f, "--stack demo pause --az a --for 2h --reason kernel-patch --yes", "").await;
        assert_eq!(r.unwrap(), exit::OK);
        assert_eq!(out, "a: automatic actions paused until 2027-01-15T10:00:00Z (kernel-patch) on rtb-a1, rtb-a2\n");
        for t in f.0.borrow().tables.iter() {
            let expected = (t.az == "a").then_some("2027-01-15T10:00:00Z");
            assert_eq!(t.tags.get(TAG_PAUSED_UNTIL).map(String::as_str), expected, "{}", t.id);
        }
        let (r, out, _) = call(&f, "--stack demo status", "").await;
        assert_eq!(r.unwrap(), exit::ATTENTION);
        assert!(out.contains("pause     PAUSED until 2027-01-15T10:00:00Z (kernel-patch)"), "{out}");
        let (r, _, _) = call(&f, "--stack demo resume --az a", "").await;
        assert_eq!(r.unwrap(), exit::OK);
        assert!(f.0.borrow().tables.iter().all(|t| !t.tags.contains_key(TAG_PAUSED_UNTIL) && !t.tags.contains_key(TAG_PAUSED_REASON)));
    }
}
