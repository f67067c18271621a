//! The run loop wired to the AWS adapters, as scenarios: a scripted world (which targets answer,
//! when), a fake StartExecution behind the real execution naming, the real EMF writer, tokio's
//! paused clock. Given / when / then, in virtual milliseconds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nat_watchdog_aws::sfn::{ExecutionStarter, ExistingExecution, StartExecutionRequest, StepFunctions};
use nat_watchdog_aws::{emf, EmfMetrics, StateMachineArn};
use nat_watchdog_core::{Cause, Config, Health, Mode, Target};
use nat_watchdog_probe::{ProbeReport, Prober};
use nat_watchdog_runtime::{run, AnchoredClock, MemorySink, Ports, RunLimits, RunSummary, StartError, StartOutcome, StopReason};
use serde_json::Value;
use tokio::time::Instant;

/// 2026-11-22T20:00:00Z: execution names in these tests are predictable.
const WALL_START: u64 = 1_795_377_600;

/// Which targets are down over which virtual seconds; a down target swallows packets (blackhole).
#[derive(Clone, Default)]
struct World {
    outages: Vec<(usize, f64, f64)>,
    /// Targets whose far end answers with this cause at once (a canary with a bad certificate, a 500).
    answers: Vec<(usize, Cause)>,
    start: Option<Instant>,
}

impl World {
    fn down(mut self, target: usize, from_s: f64, to_s: f64) -> Self {
        self.outages.push((target, from_s, to_s));
        self
    }
    fn answers(mut self, target: usize, cause: Cause) -> Self {
        self.answers.push((target, cause));
        self
    }
    fn all_down(mut self, targets: usize, from_s: f64, to_s: f64) -> Self {
        for t in 0..targets {
            self = self.down(t, from_s, to_s);
        }
        self
    }
    /// Every target down for `down_s`, up for `up_s`, over and over from `from_s` to `to_s`.
    fn flapping(mut self, targets: usize, from_s: f64, to_s: f64, down_s: f64, up_s: f64) -> Self {
        let mut t = from_s;
        while t < to_s {
            self = self.all_down(targets, t, (t + down_s).min(to_s));
            t += down_s + up_s;
        }
        self
    }
}

struct ScriptedProber {
    world: World,
    timeout: Duration,
    urls: Vec<String>,
    starts: Mutex<Vec<(usize, f64)>>,
}

impl Prober for ScriptedProber {
    fn probe(&self, target: &Target) -> impl Future<Output = ProbeReport> + Send {
        let index = self.urls.iter().position(|u| u == target.label()).expect("known target");
        let t0 = self.world.start.expect("started");
        let now = (Instant::now() - t0).as_secs_f64();
        self.starts.lock().unwrap().push((index, now));
        // A probe fails if its target is down at any point of its (5 ms) exchange.
        let dead = self.world.outages.iter().any(|&(t, from, to)| t == index && now + 0.005 >= from && now < to);
        let timeout = self.timeout;
        let answered = self.world.answers.iter().find(|&&(t, _)| t == index).map(|&(_, c)| c);
        async move {
            if let (Some(cause), false) = (answered, dead) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                return ProbeReport { cause: Some(cause), status: None, latency: Duration::from_millis(5), dns: Some(Duration::ZERO), connect: None, tls: None, detail: None };
            }
            if dead {
                tokio::time::sleep(timeout).await;
                ProbeReport { cause: Some(Cause::ConnectTimeout), status: None, latency: timeout, dns: Some(Duration::ZERO), connect: None, tls: None, detail: None }
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ProbeReport { cause: None, status: Some(204), latency: Duration::from_millis(5), dns: Some(Duration::ZERO), connect: Some(Duration::from_millis(2)), tls: Some(Duration::from_millis(4)), detail: None }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Answer {
    Start,
    AlreadyExists,
    Hang,
    Throttle,
}

/// A fake Step Functions (behind the real execution naming and input): records each call with its
/// virtual time.
struct FakeStepFunctions {
    answer: Answer,
    start: Instant,
    calls: Mutex<Vec<(f64, StartExecutionRequest)>>,
}

impl FakeStepFunctions {
    fn new(answer: Answer) -> Self {
        FakeStepFunctions { answer, start: Instant::now(), calls: Mutex::new(vec![]) }
    }
    fn calls(&self) -> Vec<(f64, StartExecutionRequest)> {
        self.calls.lock().unwrap().clone()
    }
}

impl ExecutionStarter for FakeStepFunctions {
    async fn start(&self, request: &StartExecutionRequest) -> Result<StartOutcome, StartError> {
        self.calls.lock().unwrap().push(((Instant::now() - self.start).as_secs_f64(), request.clone()));
        match self.answer {
            Answer::Start => Ok(StartOutcome::Started { execution_arn: format!("arn:exec:{}", request.name) }),
            Answer::AlreadyExists => Ok(StartOutcome::AlreadyExists),
            Answer::Throttle => Err(StartError::Throttled("ThrottlingException".into())),
            Answer::Hang => std::future::pending().await,
        }
    }
    /// Only asked after AlreadyExists: another checker of this incident started it just now.
    async fn describe(&self, _: &StartExecutionRequest) -> Result<ExistingExecution, StartError> {
        Ok(ExistingExecution { started_at: UNIX_EPOCH + Duration::from_secs(WALL_START) + (Instant::now() - self.start) })
    }
}

const URLS: [&str; 3] = ["http://a.test/", "http://b.test/", "http://c.test/"];
/// Canaries (`CANARY_URLS`), targets 3 and 4 of the world.
const CANARIES: [&str; 2] = ["https://canary-a.test/", "https://canary-b.test/"];

fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("CHECK_URLS".to_string(), URLS.join(",")),
        ("FAILOVER_STATE_MACHINE_ARN".to_string(), "arn:aws:states:us-east-1:123456789012:stateMachine:Failover".to_string()),
        ("AVAILABILITY_ZONE".to_string(), "us-east-1a".to_string()),
        ("SUBNET_ID".to_string(), "subnet-0abc".to_string()),
    ]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_map(&vars, Mode::FailoverRequired).expect("valid test config")
}

struct Outcome {
    summary: RunSummary,
    calls: Vec<(f64, StartExecutionRequest)>,
    docs: Vec<Value>,
    probe_starts: Vec<(usize, f64)>,
    finished_at: f64,
}

impl Outcome {
    /// The number of values written for `name` (CloudWatch's SampleCount).
    fn sample_count(&self, name: &str) -> usize {
        self.docs.iter().filter_map(|d| d.get(name)).map(|v| v.as_array().map_or(1, Vec::len)).sum()
    }
    fn metric_sum(&self, name: &str) -> f64 {
        self.docs.iter().filter_map(|d| d.get(name)).map(|v| match v {
            Value::Array(a) => a.iter().filter_map(Value::as_f64).sum(),
            other => other.as_f64().unwrap_or(0.0),
        }).sum()
    }
}

/// Runs the loop for `seconds` of Lambda budget (or until `stop_at` seconds) in paused time.
async fn scenario(cfg: Config, world: World, answer: Answer, seconds: f64, stop_at: Option<f64>) -> Outcome {
    let start = Instant::now();
    let world = World { start: Some(start), ..world };
    let urls = URLS.iter().chain(CANARIES.iter()).map(|s| s.to_string()).collect();
    let prober = ScriptedProber { world, timeout: cfg.timeout, urls, starts: Mutex::new(vec![]) };
    let arn = StateMachineArn::parse(cfg.state_machine_arn.as_deref().expect("test config has an ARN")).expect("valid ARN");
    let sfn = StepFunctions::new(FakeStepFunctions::new(answer), arn, cfg.dedup_window);
    let mut sink = MemorySink::default();
    let clock = AnchoredClock::starting_at(UNIX_EPOCH + Duration::from_secs(WALL_START));
    let limits = RunLimits::for_budget(start, Duration::from_secs_f64(seconds));
    let shutdown = async move {
        match stop_at {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s)).await,
            None => std::future::pending().await,
        }
    };
    let mut metrics = EmfMetrics::new(&cfg, &mut sink, &clock);
    let ports = Ports { prober: &prober, failover: Some(&sfn), clock: &clock, observers: vec![&mut metrics] };
    let summary = run(&cfg, ports, limits, shutdown).await;
    drop(metrics);
    let finished_at = (Instant::now() - start).as_secs_f64();
    for d in &sink.documents {
        emf::validate(d).unwrap_or_else(|e| panic!("{e}: {d}"));
    }
    Outcome {
        summary,
        calls: sfn.starter().calls(),
        docs: sink.documents.iter().map(|d| serde_json::from_str(d).unwrap()).collect(),
        probe_starts: prober.starts.into_inner().unwrap(),
        finished_at,
    }
}

#[tokio::test(start_paused = true)]
async fn a_hard_failure_starts_exactly_one_failover_within_the_detection_target() {
    // Given three healthy targets that all go dark 10.2 s into the invocation,
    let world = World::default().all_down(3, 10.2, 1000.0);
    // when the checker runs its default configuration for a 30 s invocation,
    let out = scenario(config(&[]), world, Answer::Start, 30.0, None).await;
    // then exactly one execution starts, within 2.2 s of the failure,
    assert_eq!(out.calls.len(), 1, "{:?}", out.calls.iter().map(|c| c.0).collect::<Vec<_>>());
    let (at, request) = &out.calls[0];
    let detection = at - 10.2;
    assert!(detection > 0.0 && detection <= 2.2, "detected after {detection:.3} s");
    // named after the AZ and the minute the outage started, with the failing targets as input.
    assert_eq!(request.name, "nat-failover-us-east-1a-20261122T200000Z");
    let input: Value = serde_json::from_str(&request.input_json()).unwrap();
    assert_eq!(input["availabilityZone"], "us-east-1a");
    assert_eq!(input["subnetId"], "subnet-0abc");
    assert_eq!(input["consecutiveBadRounds"], 3);
    assert_eq!(input["rule"], "consecutive");
    assert_eq!(input["failedTargets"].as_array().unwrap().len(), 3);
    assert_eq!(input["failedTargets"][0], serde_json::json!({"url": "http://a.test/", "cause": "connect_timeout"}));
    assert!(input["outageStartedAt"].as_str().unwrap().starts_with("2026-11-22T20:00:10."), "{input}");
    assert_eq!(out.summary.verdict, Health::Unhealthy);
    assert_eq!((out.summary.incidents, out.summary.failovers_triggered, out.summary.failover_errors), (1, 1, 0));
    assert_eq!(out.metric_sum("FailoverTriggered"), 1.0);
    assert_eq!(out.metric_sum("FailoverError"), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_flapping_nat_is_failed_over_once_by_the_windowed_rule() {
    // Given a NAT that drops everything for 1 s out of every 2 s from 10.2 s on (two bad rounds of
    // 0.4 s in every five, never three in a row),
    let world = World::default().flapping(3, 10.2, 40.2, 1.0, 1.0);
    // when the default checker watches it for a 60 s invocation,
    let out = scenario(config(&[]), world.clone(), Answer::Start, 60.0, None).await;
    // then one execution starts, about 5 s in (the 6th bad round), dated from the first bad round,
    assert_eq!(out.calls.len(), 1, "{:?}", out.calls.iter().map(|c| c.0).collect::<Vec<_>>());
    let (at, request) = &out.calls[0];
    assert!((4.0..=7.0).contains(&(at - 10.2)), "detected after {:.3} s", at - 10.2);
    let input: Value = serde_json::from_str(&request.input_json()).unwrap();
    assert_eq!(input["rule"], "window");
    assert_eq!((input["badRoundsInWindow"].as_u64(), input["windowRounds"].as_u64()), (Some(6), Some(30)));
    assert!(input["outageStartedAt"].as_str().unwrap().starts_with("2026-11-22T20:00:10.4"), "{input}");
    // one incident while it flaps (the up-phases' good rounds do not end it), healthy again once
    // the flapping has stopped long enough to leave the window.
    assert_eq!(out.summary.incidents, 1);
    assert_eq!(out.summary.verdict, Health::Healthy);

    // The same world with the windowed rule off (as the anchors behave) never fails over.
    let off = scenario(config(&[("DEGRADED_WINDOW", "0")]), world, Answer::Start, 60.0, None).await;
    assert!(off.calls.is_empty() && off.summary.incidents == 0);
    assert!(off.metric_sum("ProbeFailure") >= 60.0, "the flapping is still visible in metrics");
}

#[tokio::test(start_paused = true)]
async fn healthy_targets_or_one_target_down_never_fail_over() {
    for world in [World::default(), World::default().down(1, 0.0, 1000.0)] {
        let out = scenario(config(&[]), world, Answer::Start, 30.0, None).await;
        assert!(out.calls.is_empty());
        assert_eq!(out.summary.verdict, Health::Healthy);
        assert_eq!(out.summary.incidents, 0);
        assert_eq!(out.metric_sum("Unhealthy"), 0.0);
        assert!(out.summary.rounds >= 70, "rounds {}", out.summary.rounds);
    }
}

#[tokio::test(start_paused = true)]
async fn short_blips_below_the_threshold_are_ignored() {
    // Two rounds' worth of loss (0.5 s) never makes three bad rounds in a row.
    let world = World::default().all_down(3, 5.0, 5.5);
    let out = scenario(config(&[]), world, Answer::Start, 20.0, None).await;
    assert!(out.calls.is_empty(), "{:?}", out.calls.iter().map(|c| c.0).collect::<Vec<_>>());
    assert!(out.metric_sum("ProbeFailureConnectTimeout") >= 3.0, "the blip is still visible in metrics");
}

#[tokio::test(start_paused = true)]
async fn rounds_keep_a_fixed_cadence_even_when_every_probe_times_out() {
    // Probes take 0.8 s, rounds start every 0.4 s: a slow round never delays the next one.
    let world = World::default().all_down(3, 0.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Start, 12.0, None).await;
    let starts: Vec<f64> = out.probe_starts.iter().filter(|(t, _)| *t == 0).map(|(_, s)| *s).collect();
    for (i, s) in starts.iter().enumerate() {
        assert!((s - 0.4 * i as f64).abs() < 1e-6, "round {i} started at {s}");
    }
    assert!(starts.len() >= 25, "{} rounds", starts.len());
}

#[tokio::test(start_paused = true)]
async fn the_run_ends_before_the_deadline_with_every_round_finished_and_flushed() {
    let world = World::default().all_down(3, 0.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Start, 10.0, None).await;
    assert!(out.finished_at <= 10.0 - 0.25 + 1e-9, "finished at {}", out.finished_at);
    let last_start = out.probe_starts.iter().map(|p| p.1).fold(0.0, f64::max);
    assert!(last_start + 0.8 <= 9.0 + 1e-9, "a probe started at {last_start} could outlive the round window");
    assert_eq!(out.summary.rounds as f64 * 3.0, out.sample_count("ProbeLatency") as f64 + out.metric_sum("ProbeFailure"), "every finished round was flushed");
    assert_eq!(out.summary.rounds as usize, out.sample_count("Unhealthy"), "one Unhealthy value per round: the liveness");
    assert_eq!(out.summary.stopped_by, StopReason::Deadline);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_step_functions_never_stops_probing_and_is_counted() {
    let world = World::default().all_down(3, 3.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Hang, 30.0, None).await;
    // The trigger gives up after its attempts (2 s each) while rounds keep their cadence.
    let starts: Vec<f64> = out.probe_starts.iter().filter(|(t, _)| *t == 0).map(|(_, s)| *s).collect();
    assert!(starts.windows(2).all(|w| (w[1] - w[0] - 0.4).abs() < 1e-6), "cadence broke");
    assert!(starts.last().copied().unwrap_or(0.0) > 25.0);
    assert_eq!(out.calls.len(), 4, "bounded attempts");
    assert_eq!(out.summary.failover_errors, 1);
    assert_eq!(out.metric_sum("FailoverError"), 1.0);
    assert_eq!(out.metric_sum("FailoverTriggered"), 0.0);
}

/// A trigger whose last attempt is clipped by the hard stop must still be logged and counted: the
/// give-up comes before the hard stop, not at the same instant (where the hard stop would win the race
/// and the FailoverError of this invocation would be lost).
#[tokio::test(start_paused = true)]
async fn a_hanging_step_functions_cut_short_by_the_deadline_is_still_counted() {
    // Given an 8 s invocation whose targets all go dark at 3 s (unhealthy at ~4.8 s),
    let world = World::default().all_down(3, 3.0, 1000.0);
    // when StartExecution hangs (2 s per attempt, the second clipped by the 7.75 s hard stop),
    let out = scenario(config(&[]), world, Answer::Hang, 8.0, None).await;
    // then the trigger gave up within the run, and said so in the metrics.
    assert_eq!(out.calls.len(), 2, "{:?}", out.calls.iter().map(|c| c.0).collect::<Vec<_>>());
    assert_eq!(out.summary.failover_errors, 1, "{:?}", out.summary);
    assert_eq!(out.metric_sum("FailoverError"), 1.0);
    assert!(out.finished_at <= 7.75 + 1e-6, "finished at {:.3} s, after the hard stop", out.finished_at);
}

#[tokio::test(start_paused = true)]
async fn persistent_throttling_stays_within_the_retry_budget() {
    let world = World::default().all_down(3, 3.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Throttle, 20.0, None).await;
    assert_eq!(out.calls.len(), 4);
    let span = out.calls.last().unwrap().0 - out.calls[0].0;
    assert!(span < 3.0, "retries took {span:.2} s");
    assert_eq!(out.summary.failover_errors, 1);
}

#[tokio::test(start_paused = true)]
async fn execution_already_exists_is_success() {
    let world = World::default().all_down(3, 3.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::AlreadyExists, 15.0, None).await;
    assert_eq!(out.calls.len(), 1);
    assert_eq!((out.summary.failovers_triggered, out.summary.failover_errors), (1, 0));
    assert!(out.summary.executions.is_empty());
}

#[tokio::test(start_paused = true)]
async fn recovery_then_a_new_outage_in_another_minute_starts_a_second_execution() {
    let world = World::default().all_down(3, 10.0, 20.0).all_down(3, 75.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Start, 100.0, None).await;
    let names: Vec<&str> = out.calls.iter().map(|c| c.1.name.as_str()).collect();
    assert_eq!(names, ["nat-failover-us-east-1a-20261122T200000Z", "nat-failover-us-east-1a-20261122T200100Z"]);
    assert_eq!(out.summary.incidents, 2);
    // Recovered within rise (3) rounds plus the rounds in flight at the end of the outage.
    let unhealthy: Vec<f64> = out.docs.iter().filter_map(|d| d.get("Unhealthy")).flat_map(|v| v.as_array().unwrap().clone()).filter_map(|v| v.as_f64()).collect();
    assert!(unhealthy.contains(&0.0) && unhealthy.contains(&1.0));
}

#[tokio::test(start_paused = true)]
async fn shutdown_mid_round_drains_flushes_and_stops_promptly() {
    let world = World::default().all_down(3, 0.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Start, 60.0, Some(5.1)).await;
    assert_eq!(out.summary.stopped_by, StopReason::Signal);
    assert!(out.finished_at < 5.1 + 0.8 + 0.3, "stopped at {}", out.finished_at);
    assert_eq!(out.summary.rounds as f64 * 3.0, out.sample_count("ProbeLatency") as f64 + out.metric_sum("ProbeFailure"));
    assert_eq!(out.summary.rounds as usize, out.sample_count("Unhealthy"));
}

#[tokio::test(start_paused = true)]
async fn quorum_of_all_three_turns_one_dead_target_into_an_outage() {
    let cfg = config(&[("QUORUM", "3")]);
    let world = World::default().down(2, 2.0, 1000.0);
    let out = scenario(cfg, world, Answer::Start, 10.0, None).await;
    assert_eq!(out.calls.len(), 1);
    let failed = out.calls[0].1.input.failed_targets();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].url, "http://c.test/");
}

#[tokio::test(start_paused = true)]
async fn metrics_are_flushed_every_few_seconds_and_on_each_verdict_change() {
    let world = World::default().all_down(3, 12.0, 1000.0);
    let out = scenario(config(&[]), world, Answer::Start, 30.0, None).await;
    let stamps: Vec<u64> = out.docs.iter().filter(|d| d.get("Unhealthy").is_some()).map(|d| d["_aws"]["Timestamp"].as_u64().unwrap()).collect();
    let base = WALL_START * 1000;
    let rel: Vec<u64> = stamps.iter().map(|s| s - base).collect();
    // Timer flushes at 5, 10, 15, 20, 25 s; one at the verdict change (~14 s); one after the
    // trigger; one at the end.
    for t in [5_000, 10_000, 15_000, 20_000, 25_000] {
        assert!(rel.contains(&t), "no flush at {t} ms: {rel:?}");
    }
    assert!(rel.iter().any(|&t| t > 12_000 && t < 15_000), "no flush at the verdict change: {rel:?}");
    let _ = SystemTime::now();
}

fn canaries(extra: &[(&str, &str)]) -> Config {
    let list = CANARIES.join(",");
    let mut vars = vec![("CANARY_URLS", list.as_str())];
    vars.extend_from_slice(extra);
    config(&vars)
}

#[tokio::test(start_paused = true)]
async fn a_dead_nat_instance_path_is_reported_and_never_fails_over() {
    // Given healthy default targets and both canaries blackholed from 5 s on (the AZ is on a
    // gateway, its NAT instance is dead),
    let world = World::default().down(3, 5.0, 1000.0).down(4, 5.0, 1000.0);
    // when the checker with canaries runs a 20 s invocation,
    let out = scenario(canaries(&[]), world, Answer::Start, 20.0, None).await;
    // then the NAT-instance path turns UNHEALTHY, one 0/1 per canary round, while the default
    // path stays healthy and nothing fails over.
    assert!(out.calls.is_empty(), "{:?}", out.calls.iter().map(|c| c.0).collect::<Vec<_>>());
    assert_eq!((out.summary.verdict, out.summary.incidents), (Health::Healthy, 0));
    let nat = out.summary.nat_path.clone().expect("canaries configured");
    assert_eq!((nat.verdict, nat.incidents), (Health::Unhealthy, 1));
    assert_eq!(nat.rounds, out.summary.rounds);
    let path: Vec<f64> = out.docs.iter().filter_map(|d| d.get("NatPathUnhealthy")).flat_map(|v| v.as_array().unwrap().clone()).filter_map(|v| v.as_f64()).collect();
    assert_eq!(path.len() as u64, nat.rounds, "one value per canary round");
    let first_bad = path.iter().position(|&v| v == 1.0).expect("the path turned unhealthy");
    assert!(path[..first_bad].iter().all(|&v| v == 0.0) && path[first_bad..].iter().all(|&v| v == 1.0), "{path:?}");
    // Rounds start every 0.4 s from 0: the first bad one at 5.2 s (round index 13), the verdict
    // turns with the third (UNHEALTHY_THRESHOLD) bad one, index 15.
    assert_eq!(first_bad, 13 + 2, "{path:?}");
    assert_eq!(out.metric_sum("NatPathProbeFailure"), nat.probe_failures as f64);
    assert!(nat.probe_failures >= 2 * 30);
    // Canaries never reach the default path's metrics.
    assert_eq!(out.metric_sum("Unhealthy"), 0.0);
    assert_eq!(out.metric_sum("ProbeFailure"), 0.0);
    assert_eq!(out.sample_count("ProbeLatency") as u64, out.summary.probes);
}

#[tokio::test(start_paused = true)]
async fn canaries_whose_far_end_answers_prove_the_path() {
    // Given one canary with a bad certificate and one answering HTTP 500 (both rejected answers),
    for cause in [Cause::Tls, Cause::HttpStatus] {
        let world = World::default().answers(3, Cause::Tls).answers(4, cause);
        // when the checker requires both canaries (CANARY_QUORUM=2),
        let out = scenario(canaries(&[("CANARY_QUORUM", "2")]), world, Answer::Start, 10.0, None).await;
        // then the NAT-instance path stays healthy: each far end answered.
        let nat = out.summary.nat_path.clone().expect("canaries configured");
        assert_eq!((nat.verdict, nat.incidents, nat.probe_failures), (Health::Healthy, 0, 0), "{cause}");
        assert_eq!(nat.misconfigured, nat.probes);
        assert_eq!(out.metric_sum("NatPathUnhealthy"), 0.0);
        assert_eq!(out.sample_count("NatPathUnhealthy") as u64, nat.rounds);
        assert_eq!(out.metric_sum("NatPathProbeFailure"), 0.0, "absent when zero");
    }
}

#[tokio::test(start_paused = true)]
async fn without_canaries_there_is_no_nat_path_metric() {
    let out = scenario(config(&[]), World::default(), Answer::Start, 5.0, None).await;
    assert!(out.summary.nat_path.is_none());
    assert_eq!(out.sample_count("NatPathUnhealthy"), 0);
    assert!(out.sample_count("Unhealthy") > 0);
}
