//! AWS faults on StartExecution, at the binary level: the real checker, its real SDK client, and a
//! fault-injecting proxy in front of moto (support::FaultProxy) that throttles, fails with 500/503,
//! hangs, denies access, or is not there at all. For each: probing keeps its cadence, retries stay
//! within the budget (counted at the proxy), the trigger gives up before the run's hard stop,
//! `failover_retry`/`failover_failed` and the `FailoverError` metric are written, exit code 0.

use std::time::Duration;

use crate::support::{
    assert_all_emf, aws_env_at, event, log_time, metric_sum, round_starts, urls, Checker, Fault, FaultProxy, LocalTarget,
    Mode, Moto,
};

/// The engine's budget: 4 attempts.
const MAX_ATTEMPTS: usize = 4;
/// Rounds start every 0.4 s (the default interval).
const INTERVAL: f64 = 0.4;

struct Case {
    name: &'static str,
    /// `None`: the endpoint is a closed port (connection refused).
    fault: Option<Fault>,
    duration_s: f64,
    attempts: std::ops::RangeInclusive<usize>,
    started: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_execution_faults_are_bounded_logged_counted_and_never_stop_probing() {
    let cases = [
        Case { name: "throttled", fault: Some(Fault::Throttle), duration_s: 6.0, attempts: 4..=4, started: false },
        Case { name: "http-500", fault: Some(Fault::Status(500)), duration_s: 6.0, attempts: 4..=4, started: false },
        Case { name: "http-503", fault: Some(Fault::Status(503)), duration_s: 6.0, attempts: 4..=4, started: false },
        Case { name: "access-denied", fault: Some(Fault::AccessDenied), duration_s: 6.0, attempts: 1..=1, started: false },
        Case { name: "endpoint-down", fault: None, duration_s: 6.0, attempts: 4..=4, started: false },
        Case { name: "hang", fault: Some(Fault::Hang), duration_s: 12.0, attempts: 4..=4, started: false },
        // The third attempt is clipped by the hard stop (4 + 0.6 + 0.25 + 2 s); it must still be counted.
        Case { name: "hang-near-deadline", fault: Some(Fault::Hang), duration_s: 4.0, attempts: 2..=3, started: false },
        Case { name: "throttled-twice-then-ok", fault: Some(Fault::ThrottleThenForward(2)), duration_s: 6.0, attempts: 3..=3, started: true },
    ];
    let moto = Moto::start().await;
    let arn = moto.state_machine("Failover-faults").await;
    let targets = [LocalTarget::start(Mode::Error503).await, LocalTarget::start(Mode::Error503).await, LocalTarget::start(Mode::Error503).await];

    // Given a subnet whose targets all fail from the start, one checker per fault, all at once,
    let mut running = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (endpoint, proxy) = match case.fault {
            Some(fault) => {
                let proxy = FaultProxy::start(fault, &moto.url).await;
                (proxy.url.clone(), Some(proxy))
            }
            None => {
                let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                (format!("http://127.0.0.1:{port}"), None)
            }
        };
        let az = format!("us-east-1{}", (b'a' + i as u8) as char);
        let mut env = aws_env_at(&endpoint, &arn, &az, "subnet-faults");
        env.push(("CHECK_URLS", urls(&targets)));
        let checker = Checker::spawn(&env, &["--duration", &case.duration_s.to_string()]);
        running.push((case, proxy, checker));
    }

    // when each one's StartExecution meets its fault, then:
    eprintln!("| case | attempts | time to give up (s) | rounds started meanwhile | largest round gap (s) | executions |");
    for (case, proxy, checker) in running {
        let run = checker.finish(Duration::from_secs(30)).await;
        let name = case.name;
        assert_eq!(run.status.code(), Some(0), "{name}: exit code");
        assert_all_emf(&run.stdout);
        assert!(event(&run.logs, "hard_stop").is_empty(), "{name}: the trigger was abandoned by the hard stop");
        let logs = &run.logs;
        let verdict = *event(logs, "verdict_changed").first().unwrap_or_else(|| panic!("{name}: never unhealthy"));
        let retries = event(logs, "failover_retry");
        let outcome = if case.started { event(logs, "failover_started") } else { event(logs, "failover_failed") };
        assert_eq!(outcome.len(), 1, "{name}: {logs:#?}");
        let outcome = outcome[0];

        // Retries bounded: counted where they arrive.
        let attempts = match &proxy {
            Some(p) => p.attempts().len(),
            None => retries.len() + 1,
        };
        assert!(case.attempts.contains(&attempts) && attempts <= MAX_ATTEMPTS, "{name}: {attempts} attempts");
        assert_eq!(outcome["attempts"].as_u64(), Some(attempts as u64), "{name}: {outcome}");
        assert_eq!(retries.len(), attempts - 1, "{name}: one failover_retry per retried attempt");
        for r in &retries {
            assert_eq!(r["level"], "WARN", "{name}: {r}");
            assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{name}: {r}");
        }

        // Logged and counted.
        if case.started {
            assert_eq!(metric_sum(&run.stdout, "FailoverTriggered"), 1.0, "{name}");
            assert_eq!(metric_sum(&run.stdout, "FailoverError"), 0.0, "{name}");
        } else {
            assert_eq!(outcome["level"], "ERROR", "{name}: {outcome}");
            assert_eq!(metric_sum(&run.stdout, "FailoverError"), 1.0, "{name}: FailoverError metric");
            assert_eq!(metric_sum(&run.stdout, "FailoverTriggered"), 0.0, "{name}");
        }
        if case.fault == Some(Fault::AccessDenied) {
            assert!(outcome["error"].as_str().unwrap_or("").contains("AccessDeniedException"), "{name}: {outcome}");
        }

        // The trigger ends before the run's hard stop (--duration + timeout + 0.25 s grace + 2 s).
        let starts = round_starts(logs);
        let first_round = starts.first().map(|s| s.1).unwrap_or_else(|| panic!("{name}: no rounds"));
        let hard_stop = first_round + case.duration_s + 0.6 + 0.25 + 2.0;
        let gave_up_at = log_time(outcome);
        assert!(gave_up_at < hard_stop, "{name}: ended {:.3} s after the hard stop", gave_up_at - hard_stop);
        let finished = event(logs, "run_finished");
        assert!(finished.len() == 1 && log_time(finished[0]) >= gave_up_at, "{name}");

        // Probing went on at its cadence while the trigger worked.
        // (No round starts after --duration; a trigger may outlive that until the hard stop.)
        let from = log_time(verdict);
        let probing_until = gave_up_at.min(first_round + case.duration_s);
        let during: Vec<f64> = starts.iter().map(|s| s.1).filter(|&t| t >= from && t <= gave_up_at).collect();
        let window = gave_up_at - from;
        let expected = ((probing_until - from) / INTERVAL).floor() - 1.0;
        assert!(during.len() as f64 >= expected, "{name}: {} rounds in {window:.2} s", during.len());
        let gaps: Vec<f64> = starts.windows(2).map(|w| w[1].1 - w[0].1).collect();
        let largest = gaps.iter().copied().fold(0.0, f64::max);
        assert!(gaps.iter().all(|g| (0.2..0.65).contains(g)), "{name}: round gaps {gaps:?}");
        let mean = (starts[starts.len() - 1].1 - first_round) / (starts.len() - 1) as f64;
        assert!((mean - INTERVAL).abs() < 0.02, "{name}: mean round spacing {mean:.3} s");

        let executions = if case.started { moto.executions(&arn).await.len() } else { 0 };
        assert_eq!(executions, usize::from(case.started), "{name}");
        eprintln!("| {name} | {attempts} | {window:.2} | {} | {largest:.3} | {executions} |", during.len());
    }
}
