//! One Failover execution per incident, also when an AZ flaps (issue 12 item 4), as scenarios under
//! tokio's paused clock: real checkers (run loop, watch, trigger, execution naming) against a fake
//! Step Functions that behaves like the real one where it matters — execution names are unique per
//! state machine, DescribeExecution reports when the named execution started — and a fake network
//! whose default route moves to the gateway once a Failover runs and back when a fallback does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nat_watchdog_aws::sfn::{ExecutionStarter, ExistingExecution, StartExecutionRequest, StepFunctions, MAX_EXECUTION_NAMES};
use nat_watchdog_aws::StateMachineArn;
use nat_watchdog_core::{Cause, Config, Mode, Target};
use nat_watchdog_probe::{ProbeReport, Prober};
use nat_watchdog_runtime::{run, AnchoredClock, Ports, RunLimits, RunSummary, StartError, StartOutcome};
use tokio::time::Instant;

/// 2026-11-22T20:00:00Z: the naming window of 60 s runs from 0 to 60 s of virtual time.
const WALL_START: u64 = 1_795_377_600;
const BASE: &str = "nat-failover-us-east-1a-20261122T200000Z";
const URLS: [&str; 2] = ["http://a.test/", "http://b.test/"];
const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:Failover";

fn wall(start: Instant) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(WALL_START) + (Instant::now() - start)
}

/// The AZ's egress: the NAT instance fails over given spans of seconds; the default route points at
/// the NAT instance or (after a Failover has run, until a fallback) at the gateway, which never fails.
struct Network {
    start: Instant,
    nat_down: Vec<(f64, f64)>,
    /// (from second, on the gateway?), the latest at or before now wins.
    route: Mutex<Vec<(f64, bool)>>,
}

impl Network {
    fn new(start: Instant, nat_down: &[(f64, f64)]) -> Self {
        Network { start, nat_down: nat_down.to_vec(), route: Mutex::new(vec![(0.0, false)]) }
    }
    fn now(&self) -> f64 {
        (Instant::now() - self.start).as_secs_f64()
    }
    fn move_route(&self, at: f64, to_gateway: bool) {
        self.route.lock().unwrap().push((at, to_gateway));
    }
    fn reachable(&self, at: f64) -> bool {
        let route = self.route.lock().unwrap();
        let on_gateway = route.iter().filter(|(t, _)| *t <= at).max_by(|a, b| a.0.total_cmp(&b.0)).is_some_and(|r| r.1);
        on_gateway || !self.nat_down.iter().any(|&(from, to)| at + 0.005 >= from && at < to)
    }
}

impl Prober for Network {
    fn probe(&self, _: &Target) -> impl Future<Output = ProbeReport> + Send {
        let up = self.reachable(self.now());
        async move {
            if up {
                tokio::time::sleep(Duration::from_millis(5)).await;
                ProbeReport { cause: None, status: Some(204), latency: Duration::from_millis(5), dns: None, connect: None, tls: None, detail: None }
            } else {
                tokio::time::sleep(Duration::from_millis(800)).await;
                ProbeReport { cause: Some(Cause::ConnectTimeout), status: None, latency: Duration::from_millis(800), dns: None, connect: None, tls: None, detail: None }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Describe {
    Answers,
    Fails,
}

/// Step Functions for one state machine: names are unique, each call takes 30 ms (so concurrent
/// callers interleave), a started Failover moves the route to the gateway 1 s later.
struct FakeStepFunctions<'n> {
    network: &'n Network,
    describe: Describe,
    executions: Mutex<HashMap<String, SystemTime>>,
    started: Mutex<Vec<(f64, String)>>,
    starts_asked: Mutex<Vec<String>>,
    describes_asked: Mutex<Vec<String>>,
}

impl<'n> FakeStepFunctions<'n> {
    fn new(network: &'n Network, describe: Describe) -> Self {
        FakeStepFunctions {
            network,
            describe,
            executions: Mutex::new(HashMap::new()),
            started: Mutex::new(vec![]),
            starts_asked: Mutex::new(vec![]),
            describes_asked: Mutex::new(vec![]),
        }
    }
    /// An execution that exists before the scenario, started at `at` (wall clock).
    fn existing(self, name: &str, at: SystemTime) -> Self {
        self.executions.lock().unwrap().insert(name.to_string(), at);
        self
    }
    fn started(&self) -> Vec<String> {
        self.started.lock().unwrap().iter().map(|s| s.1.clone()).collect()
    }
}

impl ExecutionStarter for FakeStepFunctions<'_> {
    async fn start(&self, request: &StartExecutionRequest) -> Result<StartOutcome, StartError> {
        self.starts_asked.lock().unwrap().push(request.name.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut executions = self.executions.lock().unwrap();
        if executions.contains_key(&request.name) {
            return Ok(StartOutcome::AlreadyExists);
        }
        executions.insert(request.name.clone(), wall(self.network.start));
        let now = self.network.now();
        self.started.lock().unwrap().push((now, request.name.clone()));
        self.network.move_route(now + 1.0, true);
        Ok(StartOutcome::Started { execution_arn: format!("arn:exec:{}", request.name) })
    }

    async fn describe(&self, request: &StartExecutionRequest) -> Result<ExistingExecution, StartError> {
        self.describes_asked.lock().unwrap().push(request.name.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        if self.describe == Describe::Fails {
            return Err(StartError::Rejected("AccessDeniedException (HTTP 400)".into()));
        }
        let known = self.executions.lock().unwrap().get(&request.name).copied();
        known.map(|started_at| ExistingExecution { started_at }).ok_or_else(|| StartError::Rejected("ExecutionDoesNotExist (HTTP 400)".into()))
    }
}

fn config(subnet: &str) -> Config {
    let vars: HashMap<String, String> = HashMap::from([
        ("CHECK_URLS".to_string(), URLS.join(",")),
        ("FAILOVER_STATE_MACHINE_ARN".to_string(), ARN.to_string()),
        ("AVAILABILITY_ZONE".to_string(), "us-east-1a".to_string()),
        ("SUBNET_ID".to_string(), subnet.to_string()),
    ]);
    Config::from_map(&vars, Mode::FailoverRequired).expect("valid test config")
}

/// One checker of `subnet`, starting `offset` seconds in, for a `seconds` invocation.
async fn checker(sfn: &StepFunctions<FakeStepFunctions<'_>>, network: &Network, subnet: &str, offset: f64, seconds: f64) -> RunSummary {
    tokio::time::sleep(Duration::from_secs_f64(offset)).await;
    let cfg = config(subnet);
    let clock = AnchoredClock::starting_at(wall(network.start));
    let limits = RunLimits::for_budget(Instant::now(), Duration::from_secs_f64(seconds));
    let ports = Ports { prober: network, failover: Some(sfn), clock: &clock, observers: vec![] };
    run(&cfg, ports, limits, std::future::pending::<()>()).await
}

fn step_functions(fake: FakeStepFunctions<'_>) -> StepFunctions<FakeStepFunctions<'_>> {
    StepFunctions::new(fake, StateMachineArn::parse(ARN).unwrap(), Duration::from_secs(60))
}

#[tokio::test(start_paused = true)]
async fn an_az_that_fails_again_after_a_fallback_in_the_same_window_gets_a_second_execution() {
    // Given a NAT instance that fails at 5.2 s (the Failover moves the route ~1 s after it starts),
    // a fallback at 25 s onto the repaired instance, and the instance failing again at 40.2 s,
    // all within the naming window 20:00:00–20:01:00,
    let network = Network::new(Instant::now(), &[(5.2, 20.0), (40.2, 1000.0)]);
    network.move_route(25.0, false);
    let sfn = step_functions(FakeStepFunctions::new(&network, Describe::Answers));
    // when one checker watches the whole minute,
    let summary = checker(&sfn, &network, "subnet-a", 0.0, 58.0).await;
    // then each outage started its own execution: the base name, then `-2`,
    assert_eq!(sfn.starter().started(), [BASE.to_string(), format!("{BASE}-2")]);
    assert_eq!((summary.incidents, summary.failovers_triggered, summary.failover_errors), (2, 2, 0));
    // after one look at the first one (started before the second outage began).
    assert_eq!(*sfn.starter().describes_asked.lock().unwrap(), [BASE]);
    let times: Vec<f64> = sfn.starter().started.lock().unwrap().iter().map(|s| s.0).collect();
    assert!(times[0] > 5.2 && times[0] < 8.0 && times[1] > 40.2 && times[1] < 43.0, "{times:?}");
}

#[tokio::test(start_paused = true)]
async fn concurrent_checkers_of_one_incident_start_exactly_one_execution() {
    // Given three checkers of one AZ (three subnets), started 0, 0.13 and 0.27 s apart,
    let network = Network::new(Instant::now(), &[(10.2, 1000.0)]);
    let sfn = step_functions(FakeStepFunctions::new(&network, Describe::Answers));
    // when the NAT instance fails under all of them,
    let (a, b, c) = tokio::join!(
        checker(&sfn, &network, "subnet-a", 0.0, 30.0),
        checker(&sfn, &network, "subnet-b", 0.13, 30.0),
        checker(&sfn, &network, "subnet-c", 0.27, 30.0),
    );
    // then one execution started and the others found it to be theirs.
    assert_eq!(sfn.starter().started(), [BASE]);
    let starts = sfn.starter().starts_asked.lock().unwrap().clone();
    assert_eq!(starts, [BASE, BASE, BASE], "nobody tried a second name");
    for s in [&a, &b, &c] {
        assert_eq!((s.incidents, s.failovers_triggered, s.failover_errors), (1, 1, 0), "{s:?}");
    }
    assert_eq!([&a, &b, &c].iter().map(|s| s.executions.len()).sum::<usize>(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_description_moves_on_to_a_new_name_within_a_bound() {
    // Given an execution of the base name that exists already and DescribeExecution denied,
    let network = Network::new(Instant::now(), &[(10.2, 1000.0)]);
    let taken = UNIX_EPOCH + Duration::from_secs(WALL_START + 3);
    let sfn = step_functions(FakeStepFunctions::new(&network, Describe::Fails).existing(BASE, taken));
    // when the checker detects an outage,
    let summary = checker(&sfn, &network, "subnet-a", 0.0, 30.0).await;
    // then it starts the next name rather than risk a missed failover.
    assert_eq!(sfn.starter().started(), [format!("{BASE}-2")]);
    assert_eq!((summary.failovers_triggered, summary.failover_errors), (1, 0));

    // And with every name of the window taken, it stops after the last one, well within the budget.
    let network = Network::new(Instant::now(), &[(10.2, 1000.0)]);
    let mut fake = FakeStepFunctions::new(&network, Describe::Fails).existing(BASE, taken);
    for n in 2..=MAX_EXECUTION_NAMES {
        fake = fake.existing(&format!("{BASE}-{n}"), taken);
    }
    let sfn = step_functions(fake);
    let began = Instant::now();
    let summary = checker(&sfn, &network, "subnet-a", 0.0, 30.0).await;
    assert!(sfn.starter().started().is_empty());
    let asked = sfn.starter().starts_asked.lock().unwrap().clone();
    assert_eq!(asked.len(), MAX_EXECUTION_NAMES as usize, "{asked:?}");
    assert_eq!(asked.last().map(String::as_str), Some(format!("{BASE}-{MAX_EXECUTION_NAMES}").as_str()));
    assert_eq!((summary.failovers_triggered, summary.failover_errors), (1, 0), "counted as handled");
    assert!(Instant::now() - began < Duration::from_secs(30), "the run kept its deadline");
}

#[tokio::test(start_paused = true)]
async fn an_execution_of_the_same_name_started_before_the_outage_is_not_this_incidents() {
    // Given an execution of the base name started at 20:00:03, 7 s before this outage began,
    let network = Network::new(Instant::now(), &[(10.2, 1000.0)]);
    let earlier = UNIX_EPOCH + Duration::from_secs(WALL_START + 3);
    let sfn = step_functions(FakeStepFunctions::new(&network, Describe::Answers).existing(BASE, earlier));
    // when the checker detects the outage,
    checker(&sfn, &network, "subnet-a", 0.0, 30.0).await;
    // then it looked the base name up and started `-2`.
    assert_eq!(*sfn.starter().describes_asked.lock().unwrap(), [BASE]);
    assert_eq!(sfn.starter().started(), [format!("{BASE}-2")]);

    // One started 1 s after the outage began (another checker of it) is this incident's: no new name.
    let network = Network::new(Instant::now(), &[(10.2, 1000.0)]);
    let same = UNIX_EPOCH + Duration::from_secs(WALL_START + 11);
    let sfn = step_functions(FakeStepFunctions::new(&network, Describe::Answers).existing(BASE, same));
    let summary = checker(&sfn, &network, "subnet-a", 0.0, 30.0).await;
    assert!(sfn.starter().started().is_empty());
    assert_eq!((summary.failovers_triggered, summary.failover_errors), (1, 0));
}
