//! `--print-config`: one JSON object with every variable of the settings table and its effective
//! value (what the lab reads its defaults from); a bad value exits 2 with the usual one-line error.
//! No AWS, no probes.

use std::time::Duration;

use nat_watchdog_core::settings;
use serde_json::Value;

use crate::support::{event, Checker};

async fn print_config(env: &[(&str, String)]) -> (Option<i32>, Vec<String>, Vec<Value>) {
    let run = Checker::spawn(env, &["--print-config"]).finish(Duration::from_secs(10)).await;
    (run.status.code(), run.stdout, run.logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_set_it_prints_every_default_and_nothing_else() {
    let (code, stdout, logs) = print_config(&[]).await;
    assert_eq!(code, Some(0));
    assert_eq!(stdout.len(), 1, "one JSON object: {stdout:?}");
    let object: serde_json::Map<String, Value> = serde_json::from_str(&stdout[0]).unwrap();
    let names: Vec<&str> = object.keys().map(String::as_str).collect();
    let table: Vec<&str> = settings::ALL.iter().map(|s| s.name).collect();
    assert_eq!(names, table, "every variable of the settings table, in its order");
    assert_eq!(object["CONNECTIVITY_CHECK_INTERVAL"], "0.4");
    assert_eq!(object["REQUEST_TIMEOUT"], "0.6");
    assert_eq!(object["UNHEALTHY_THRESHOLD"], "3");
    assert_eq!(object["DEGRADED_THRESHOLD"], "6");
    assert_eq!(object["DEGRADED_WINDOW"], "30");
    assert_eq!(object["FAILOVER_STATE_MACHINE_ARN"], Value::Null);
    assert_eq!(object["EXTRA_CA_CERTS"], Value::Null);
    assert_eq!((&object["CANARY_URLS"], &object["CANARY_QUORUM"]), (&Value::Null, &Value::from("1")), "no canaries by default");
    assert!(event(&logs, "probe").is_empty() && event(&logs, "config").is_empty(), "never probes: {logs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_values_and_derived_defaults_are_effective_values() {
    let env = [("UNHEALTHY_THRESHOLD", "10".to_string()), ("CHECK_URLS", "".to_string()), ("QUORUM", " 2 ".to_string())];
    let (code, stdout, _) = print_config(&env).await;
    assert_eq!(code, Some(0));
    let object: Value = serde_json::from_str(&stdout[0]).unwrap();
    assert_eq!(object["UNHEALTHY_THRESHOLD"], "10");
    assert_eq!((object["DEGRADED_THRESHOLD"].as_str(), object["DEGRADED_WINDOW"].as_str()), (Some("20"), Some("100")));
    assert_eq!(object["CHECK_URLS"], settings::DEFAULT_CHECK_URLS, "empty counts as unset");
    assert_eq!(object["QUORUM"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_and_their_quorum_are_effective_values() {
    let canaries = "https://162.159.36.1/,https://149.112.112.10/";
    let (code, stdout, _) = print_config(&[("CANARY_URLS", canaries.to_string()), ("CANARY_QUORUM", "2".to_string())]).await;
    assert_eq!(code, Some(0));
    let object: Value = serde_json::from_str(&stdout[0]).unwrap();
    assert_eq!((object["CANARY_URLS"].as_str(), object["CANARY_QUORUM"].as_str()), (Some(canaries), Some("2")));
    let (code, stdout, logs) = print_config(&[("CANARY_URLS", canaries.to_string()), ("CANARY_QUORUM", "3".to_string())]).await;
    assert_eq!((code, stdout.len()), (Some(2), 0));
    let text: Vec<String> = logs.iter().map(|l| l.to_string()).collect();
    assert!(text.iter().any(|l| l.contains("CANARY_QUORUM") && l.contains("only 2 canary")), "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_value_exits_2_naming_the_variable() {
    for (var, value) in [("QUORUM", "0"), ("FAILOVER_STATE_MACHINE_ARN", "not-an-arn")] {
        let (code, stdout, logs) = print_config(&[(var, value.to_string()), ("AVAILABILITY_ZONE", "us-east-1a".into())]).await;
        assert_eq!(code, Some(2), "{var}={value}");
        assert!(stdout.is_empty(), "{stdout:?}");
        let text: Vec<String> = logs.iter().map(|l| l.to_string()).collect();
        assert!(text.iter().any(|l| l.contains(var) && l.contains("expected")), "{var}: {text:?}");
    }
}
