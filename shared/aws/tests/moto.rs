//! The execution naming against moto's Step Functions (real StartExecution / DescribeExecution over
//! HTTP on 127.0.0.1, real `ExecutionAlreadyExists`): two incidents of one AZ in one naming window
//! start two executions, a second checker of the first incident starts none.
//! `MOTO_SERVER_BIN=$PWD/.venv/bin/moto_server cargo test -p nat-watchdog-aws` (default: the project venv).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use nat_watchdog_aws::{SfnStarter, StateMachineArn, StepFunctions};
use nat_watchdog_core::{Incident, Rule};
use nat_watchdog_runtime::failover::trigger;
use nat_watchdog_runtime::{FailoverPort as _, FailoverRequest, RetryPolicy, TriggerOutcome};
use tokio::time::Instant;

#[path = "../../../tests/support/moto_server.rs"]
mod moto_server;

/// One day: both outages of the test fall in today's window whatever the time of day.
const WINDOW: Duration = Duration::from_secs(86_400);

fn client(url: &str) -> aws_sdk_sfn::Client {
    let conf = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(url)
        .build();
    aws_sdk_sfn::Client::from_conf(conf)
}

fn incident(outage_started_at: SystemTime) -> FailoverRequest {
    FailoverRequest {
        availability_zone: "us-east-1a".into(),
        subnet_id: "subnet-moto".into(),
        incident: Incident {
            round: 3,
            detected_at: outage_started_at + Duration::from_millis(1200),
            outage_started_at,
            rule: Rule::Consecutive,
            consecutive_bad_rounds: 3,
            bad_rounds_in_window: 3,
            window_rounds: 30,
            failed_targets: vec![],
        },
    }
}

async fn fail_over(port: &StepFunctions<SfnStarter>, request: &FailoverRequest) -> TriggerOutcome {
    trigger(port, request, RetryPolicy::default(), Instant::now() + Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_incidents_of_one_az_in_one_window_start_two_real_executions() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let moto = moto_server::MotoServer::start(&root).await;
    let sfn = client(&moto.url);
    let arn = sfn
        .create_state_machine()
        .name("Failover-naming")
        .role_arn("arn:aws:iam::123456789012:role/failover")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}"#)
        .send()
        .await
        .expect("create state machine in moto")
        .state_machine_arn()
        .to_string();
    let port = StepFunctions::new(SfnStarter::new(client(&moto.url)), StateMachineArn::parse(&arn).unwrap(), WINDOW);

    // Stay clear of the day's end so that both outages share today's window (we wait, then act).
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    while secs(SystemTime::now()) % 86_400 > 86_400 - 30 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let now = SystemTime::now();
    let day_start = UNIX_EPOCH + Duration::from_secs(secs(now) - secs(now) % 86_400);
    // Given an outage that began just now (or at midnight, if that is later than 5 s ago),
    let first = incident(now.checked_sub(Duration::from_secs(5)).unwrap().max(day_start));
    // when its checker fails over and a second checker of that incident does too,
    let a = fail_over(&port, &first).await;
    // (another subnet: Step Functions answers a repeat with the same input of a running execution
    // with that execution, not ExecutionAlreadyExists)
    let b = fail_over(&port, &FailoverRequest { subnet_id: "subnet-moto-2".into(), ..first.clone() }).await;
    // then one execution exists and the second checker found it to be its incident's.
    assert!(matches!(a, TriggerOutcome::Started { .. }), "{a:?}");
    assert_eq!(b, TriggerOutcome::AlreadyExists { attempts: 1 });

    // Given a second outage of that AZ starting after the first execution (a failover, a fallback
    // and a new failure: here 10 s on, same window),
    let second = incident(now + Duration::from_secs(10));
    assert_eq!(port.name(&first, 0), port.name(&second, 0), "one window, one base name");
    let c = fail_over(&port, &second).await;
    // then it starts its own execution under the next name.
    assert!(matches!(&c, TriggerOutcome::Started { execution_arn, attempts: 2 } if execution_arn.ends_with(&format!("{}-2", port.name(&first, 0)))), "{c:?}");
    let listed = sfn.list_executions().state_machine_arn(&arn).send().await.unwrap();
    let mut names: Vec<String> = listed.executions().iter().map(|e| e.name().to_string()).collect();
    names.sort();
    assert_eq!(names, [port.name(&first, 0), format!("{}-2", port.name(&first, 0))]);
}
