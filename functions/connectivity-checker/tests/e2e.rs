//! Scenarios of the released CLI: healthy, one target down, all targets cut, a flapping path, three
//! checkers of one AZ, bad configuration, SIGTERM mid-round.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::{assert_all_emf, aws_env, event, metric_sum, metric_values, refused_url, urls, Checker, LocalTarget, Mode, Moto, UntrustedTlsTarget};

fn is_good_round(v: &Value) -> bool {
    v["event"] == "round" && v["good"] == true
}

async fn three_targets() -> [LocalTarget; 3] {
    [LocalTarget::start(Mode::Serve).await, LocalTarget::start(Mode::Serve).await, LocalTarget::start(Mode::Serve).await]
}

/// Spawns the checker and returns once it has seen a good round: the healthy "given" of a scenario.
async fn spawn_healthy(env: &[(&str, String)], args: &[&str]) -> Checker {
    let mut checker = Checker::spawn(env, args);
    checker.wait_for_log("a good round", is_good_round, Duration::from_secs(10)).await;
    checker
}

fn set_all(targets: &[LocalTarget], mode: Mode) {
    for t in targets {
        t.set(mode);
    }
}

/// Keeps an outage clear of a dedup-window boundary so that "exactly one" is deterministic.
async fn away_from_window_boundary(window_s: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let into = now % window_s as f64;
    if into > window_s as f64 - 15.0 {
        tokio::time::sleep(Duration::from_secs_f64(window_s as f64 - into + 0.5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_targets_start_exactly_one_failover_execution_with_the_expected_input() {
    let moto = Moto::start().await;
    let arn = moto.state_machine("Failover-cut").await;
    let targets = three_targets().await;
    away_from_window_boundary(60).await;
    let mut env = aws_env(&moto, &arn, "us-east-1a", "subnet-0aaa");
    env.push(("CHECK_URLS", urls(&targets)));
    // Given a healthy subnet, when every target goes dark,
    let mut checker = spawn_healthy(&env, &["--duration", "7"]).await;
    set_all(&targets, Mode::Hang);
    // then the checker turns unhealthy and starts one execution.
    checker.wait_for_log("failover_started", |v| v["event"] == "failover_started", Duration::from_secs(10)).await;
    let run = checker.finish(Duration::from_secs(15)).await;
    assert!(run.status.success(), "{:?}", run.status);

    let executions = moto.executions(&arn).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let (name, input) = &executions[0];
    assert!(name.starts_with("nat-failover-us-east-1a-"), "{name}");
    assert_eq!(input["availabilityZone"], "us-east-1a");
    assert_eq!(input["subnetId"], "subnet-0aaa");
    assert_eq!(input["consecutiveBadRounds"], 3);
    assert_eq!(input["rule"], "consecutive");
    let failed = input["failedTargets"].as_array().expect("failedTargets");
    assert_eq!(failed.len(), 3);
    for (f, t) in failed.iter().zip(&targets) {
        assert_eq!(f["url"], t.url());
        assert_eq!(f["cause"], "timeout", "an accepted connection that never answers");
    }
    for field in ["detectedAt", "outageStartedAt"] {
        assert!(input[field].as_str().is_some_and(|s| s.ends_with('Z') && s.len() == 24), "{field}: {input}");
    }
    assert_eq!(event(&run.logs, "verdict_changed").len(), 1);
    assert_all_emf(&run.stdout);
    assert_eq!(metric_sum(&run.stdout, "FailoverTriggered"), 1.0);
    assert!(metric_sum(&run.stdout, "ProbeFailureTimeout") >= 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_path_is_failed_over_once_by_the_windowed_rule() {
    let moto = Moto::start().await;
    let arn = moto.state_machine("Failover-flap").await;
    let targets = Arc::new(three_targets().await);
    away_from_window_boundary(60).await;
    let mut env = aws_env(&moto, &arn, "us-east-1a", "subnet-0flap");
    env.push(("CHECK_URLS", urls(&targets[..])));
    // Given a healthy subnet, when every target goes dark for 1 s of every 2 s (a round is bad only
    // when its last attempt, started 0.42 s in, lands in the dark spell too: one or two 0.4 s rounds
    // per spell, so never three bad rounds in a row),
    let mut checker = spawn_healthy(&env, &["--duration", "20"]).await;
    let flapping = {
        let targets = targets.clone();
        tokio::spawn(async move {
            loop {
                set_all(&targets[..], Mode::Hang);
                tokio::time::sleep(Duration::from_millis(1000)).await;
                set_all(&targets[..], Mode::Serve);
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        })
    };
    // then the windowed rule (6 bad of the last 30 rounds) starts one execution,
    checker.wait_for_log("failover_started", |v| v["event"] == "failover_started", Duration::from_secs(18)).await;
    let run = checker.finish(Duration::from_secs(25)).await;
    flapping.abort();
    assert!(run.status.success(), "{:?}", run.status);
    let executions = moto.executions(&arn).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let input = &executions[0].1;
    assert_eq!(input["rule"], "window", "{input}");
    assert_eq!((input["badRoundsInWindow"].as_u64(), input["consecutiveBadRounds"].as_u64().map(|n| n < 3)), (Some(6), Some(true)));
    // and the up-spells' good rounds do not end the incident while it flaps: one verdict change.
    let changes = event(&run.logs, "verdict_changed");
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0]["rule"], "window");
    assert_all_emf(&run.stdout);
    assert_eq!(metric_sum(&run.stdout, "FailoverTriggered"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_targets_or_one_of_three_down_start_nothing() {
    let moto = Moto::start().await;
    let arn = moto.state_machine("Failover-quiet").await;
    let healthy = three_targets().await;
    let partial = three_targets().await;
    partial[1].set(Mode::Hang);
    let mut runs = Vec::new();
    for (subnet, targets) in [("subnet-healthy", &healthy), ("subnet-partial", &partial)] {
        let mut env = aws_env(&moto, &arn, "us-east-1b", subnet);
        env.push(("CHECK_URLS", urls(targets)));
        runs.push(Checker::spawn(&env, &["--duration", "4"]));
    }
    for checker in runs {
        let run = checker.finish(Duration::from_secs(15)).await;
        assert!(run.status.success());
        assert!(event(&run.logs, "verdict_changed").is_empty(), "{:#?}", event(&run.logs, "verdict_changed"));
        assert_all_emf(&run.stdout);
        // Liveness is the SampleCount of Unhealthy (one value per round), the success count the
        // SampleCount of ProbeLatency (one value per successful probe).
        let finished = event(&run.logs, "run_finished");
        let (rounds, probes, failures) = (finished[0]["rounds"].as_u64().unwrap(), finished[0]["probes"].as_u64().unwrap(), finished[0]["failures"].as_u64().unwrap());
        assert_eq!(metric_values(&run.stdout, "Unhealthy").len() as u64, rounds);
        assert_eq!(metric_sum(&run.stdout, "Unhealthy"), 0.0);
        assert_eq!(metric_values(&run.stdout, "ProbeLatency").len() as u64, probes - failures);
        assert!(probes - failures >= 10);
        assert_eq!(metric_sum(&run.stdout, "ProbeFailure"), failures as f64);
        assert!(metric_values(&run.stdout, "Heartbeat").is_empty() && metric_values(&run.stdout, "ProbeSuccess").is_empty(), "retired");
        assert!(metric_values(&run.stdout, "NatPathUnhealthy").is_empty(), "no canaries, no NAT-path metric");
    }
    assert!(moto.executions(&arn).await.is_empty());
}

/// One outage seen by one checker process per entry of `subnets` (repeats: overlapping invocations
/// of one subnet), all of `az`, each started once the previous one probes (so their runs overlap
/// without being in lockstep). Returns (executions in moto, `failover_started` logs, `failover_exists` logs).
async fn one_outage_seen_by(machine: &str, az: &str, subnets: &[&str]) -> (usize, usize, usize) {
    let moto = Moto::start().await;
    let arn = moto.state_machine(machine).await;
    let targets = three_targets().await;
    away_from_window_boundary(60).await;
    let mut checkers = Vec::new();
    for subnet in subnets {
        let mut env = aws_env(&moto, &arn, az, subnet);
        env.push(("CHECK_URLS", urls(&targets)));
        checkers.push(spawn_healthy(&env, &["--duration", "7"]).await);
    }
    set_all(&targets, Mode::Hang);
    let mut started = 0;
    let mut existed = 0;
    for c in checkers {
        let run = c.finish(Duration::from_secs(20)).await;
        assert!(run.status.success());
        started += event(&run.logs, "failover_started").len();
        existed += event(&run.logs, "failover_exists").len();
        assert!(event(&run.logs, "failover_failed").is_empty(), "{:#?}", event(&run.logs, "failover_failed"));
    }
    (moto.executions(&arn).await.len(), started, existed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_checkers_of_one_az_seeing_one_outage_start_one_execution() {
    let seen = one_outage_seen_by("Failover-shared", "us-east-1c", &["subnet-1", "subnet-2", "subnet-3"]).await;
    assert_eq!(seen, (1, 1, 2), "one checker starts it, the others find it already started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_invocations_of_one_subnet_start_one_execution() {
    let seen = one_outage_seen_by("Failover-overlap", "us-east-1d", &["subnet-same", "subnet-same"]).await;
    assert_eq!(seen, (1, 1, 1), "the second invocation finds the first one's execution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_state_machine_is_logged_and_counted_while_probing_goes_on() {
    let moto = Moto::start().await;
    let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:DoesNotExist".to_string();
    let targets = three_targets().await;
    let mut env = aws_env(&moto, &arn, "us-east-1a", "subnet-x");
    env.push(("CHECK_URLS", urls(&targets)));
    let mut checker = spawn_healthy(&env, &["--duration", "6"]).await;
    set_all(&targets, Mode::Error503);
    let failed = checker.wait_for_log("failover_failed", |v| v["event"] == "failover_failed", Duration::from_secs(10)).await;
    assert!(failed["error"].as_str().unwrap_or("").contains("StateMachineDoesNotExist"), "{failed}");
    let run = checker.finish(Duration::from_secs(15)).await;
    assert!(run.status.success());
    let rounds_after = run.logs.iter().filter(|l| l["event"] == "round").count();
    assert!(rounds_after >= 3, "probing went on after the failed trigger");
    assert_eq!(metric_sum(&run.stdout, "FailoverError"), 1.0);
    assert!(metric_sum(&run.stdout, "ProbeFailureHttpStatus") >= 9.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_2_naming_the_variable_before_any_probe() {
    for (var, value) in [
        ("REQUEST_TIMEOUT", "-1"),
        ("CHECK_URLS", "ftp://example.com/"),
        ("QUORUM", "9"),
        ("FAILOVER_STATE_MACHINE_ARN", "not-an-arn"),
        ("CANARY_URLS", "https://162.159.36.1/,gopher://149.112.112.10/"),
        ("CANARY_QUORUM", "3"),
    ] {
        let mut env = vec![(var, value.to_string())];
        if var == "CANARY_QUORUM" {
            // More than the two canaries configured.
            env.push(("CANARY_URLS", "https://162.159.36.1/,https://149.112.112.10/".to_string()));
        }
        let checker = Checker::spawn(&env, &["--duration", "5"]);
        let run = checker.finish(Duration::from_secs(10)).await;
        assert_eq!(run.status.code(), Some(2), "{var}={value}");
        assert!(run.stdout.is_empty(), "nothing on stdout: {:?}", run.stdout);
        let text: Vec<String> = run.logs.iter().map(|l| l.to_string()).collect();
        assert!(text.iter().any(|l| l.contains(var) && l.contains("expected")), "{var}: {text:?}");
        assert!(event(&run.logs, "probe").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_round_flushes_complete_emf_and_exits_cleanly() {
    let targets = three_targets().await;
    for t in &targets {
        t.set(Mode::Hang);
    }
    let mut checker = Checker::spawn(&[("CHECK_URLS", urls(&targets))], &[]);
    checker.wait_for_log("a bad round", |v| v["event"] == "round" && v["good"] == false, Duration::from_secs(10)).await;
    // Rounds overlap (0.8 s probes every 0.4 s): a round is in flight now.
    let pid = checker.pid();
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(status.success());
    let run = checker.finish(Duration::from_secs(5)).await;
    assert_eq!(run.status.code(), Some(0));
    assert_all_emf(&run.stdout);
    let finished = event(&run.logs, "run_finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["stopped_by"], "signal");
    let rounds = finished[0]["rounds"].as_f64().unwrap();
    assert_eq!(metric_sum(&run.stdout, "ProbeFailure"), rounds * 3.0, "every finished round is in the metrics");
}

/// The NAT-instance path (issue 12): while the default path is healthy, canaries that refuse
/// connections turn the NAT path UNHEALTHY after UNHEALTHY_THRESHOLD canary rounds, and nothing
/// fails over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_canaries_make_the_nat_path_unhealthy_without_a_failover() {
    let moto = Moto::start().await;
    let arn = moto.state_machine("Failover-canary").await;
    let targets = three_targets().await;
    let canaries = [refused_url().await, refused_url().await];
    let mut env = aws_env(&moto, &arn, "us-east-1a", "subnet-0canary");
    env.push(("CHECK_URLS", urls(&targets)));
    env.push(("CANARY_URLS", canaries.join(",")));
    // Generous: on a loaded test machine a slow loopback answer must not read as a failure.
    env.push(("REQUEST_TIMEOUT", "2".to_string()));
    // Given healthy default targets, when both canaries refuse connections for a 4 s run,
    let run = Checker::spawn(&env, &["--duration", "4"]).finish(Duration::from_secs(15)).await;
    assert!(run.status.success(), "{:?}", run.status);
    assert_all_emf(&run.stdout);
    // then the NAT path is 0 for the first two canary rounds and 1 from the third on,
    let path = metric_values(&run.stdout, "NatPathUnhealthy");
    assert!(path.len() >= 5, "{path:?}");
    assert_eq!(path[..2], [0.0, 0.0], "{path:?}");
    assert!(path[2..].iter().all(|&v| v == 1.0), "{path:?}");
    let finished = event(&run.logs, "run_finished");
    assert_eq!(finished[0]["canary_rounds"].as_u64(), Some(path.len() as u64), "one value per canary round");
    assert_eq!(finished[0]["nat_path_verdict"], "unhealthy");
    assert_eq!(metric_sum(&run.stdout, "NatPathProbeFailure"), 2.0 * path.len() as f64);
    // logged once, naming the failed canaries and their cause,
    let changes = event(&run.logs, "nat_path_changed");
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!((changes[0]["to"].as_str(), changes[0]["round"].as_u64()), (Some("unhealthy"), Some(3)));
    let failed = changes[0]["failed_canaries"].as_str().unwrap();
    for canary in &canaries {
        assert!(failed.contains(&format!("{canary} connect_refused")), "{failed}");
    }
    // while the default path stays healthy, its metrics hold no canary, and nothing fails over.
    assert!(event(&run.logs, "verdict_changed").is_empty(), "{:#?}", event(&run.logs, "verdict_changed"));
    assert_eq!(metric_sum(&run.stdout, "Unhealthy"), 0.0);
    assert_eq!(metric_sum(&run.stdout, "ProbeFailure"), 0.0);
    assert_eq!(metric_values(&run.stdout, "ProbeLatency").len() as u64, finished[0]["probes"].as_u64().unwrap());
    assert_eq!(metric_sum(&run.stdout, "FailoverTriggered"), 0.0);
    assert!(event(&run.logs, "failover_started").is_empty());
    assert!(moto.executions(&arn).await.is_empty());
}

/// A canary whose far end answers, even wrongly (a certificate nobody trusts, HTTP 503), proves the
/// NAT-instance path: healthy, logged once per canary as misconfigured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_answering_with_a_bad_certificate_or_an_error_status_prove_the_path() {
    let targets = three_targets().await;
    let untrusted = UntrustedTlsTarget::start().await;
    let failing = LocalTarget::start(Mode::Error503).await;
    let env = [
        ("CHECK_URLS", urls(&targets)),
        ("CANARY_URLS", format!("{},{}", untrusted.url(), failing.url())),
        ("CANARY_QUORUM", "2".to_string()),
        // Generous: on a loaded test machine a slow handshake must not read as a timeout.
        ("REQUEST_TIMEOUT", "2".to_string()),
    ];
    let run = Checker::spawn(&env, &["--duration", "3"]).finish(Duration::from_secs(15)).await;
    assert!(run.status.success(), "{:?}", run.status);
    assert_all_emf(&run.stdout);
    let path = metric_values(&run.stdout, "NatPathUnhealthy");
    assert!(path.len() >= 4 && path.iter().all(|&v| v == 0.0), "{path:?}");
    assert!(metric_values(&run.stdout, "NatPathProbeFailure").is_empty(), "a far end that answered is no path failure");
    assert!(event(&run.logs, "nat_path_changed").is_empty());
    // Each canary's probes really failed the way the scenario says, and each is reported once.
    let causes: std::collections::BTreeSet<(String, String)> = event(&run.logs, "canary_probe")
        .iter()
        .map(|l| (l["target"].as_str().unwrap_or("").to_string(), l["cause"].as_str().unwrap_or("ok").to_string()))
        .collect();
    assert_eq!(
        causes,
        [(untrusted.url(), "tls".to_string()), (failing.url(), "http_status".to_string())].into_iter().collect(),
    );
    let warned: Vec<&str> = event(&run.logs, "canary_misconfigured").iter().map(|l| l["target"].as_str().unwrap()).collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned.contains(&untrusted.url().as_str()) && warned.contains(&failing.url().as_str()));
    let finished = event(&run.logs, "run_finished");
    assert_eq!(finished[0]["nat_path_verdict"], "healthy");
    assert_eq!(finished[0]["canary_failures"].as_u64(), Some(0));
}
