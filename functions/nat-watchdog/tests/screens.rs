//! `status` and `incidents` on a deployment whose executions really ran in moto, golden in table
//! and JSON form.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StandardUnit, StateValue, StatisticSet, Statistic};
use aws_smithy_types::DateTime;
use serde_json::{json, Value};

use crate::support::*;

struct Minute {
    success: f64,
    failures: &'static [(&'static str, f64)],
    /// Rounds of the default path this minute (SampleCount of `Unhealthy`, the liveness).
    rounds: f64,
    /// The NAT-instance path's verdict this minute (`NatPathUnhealthy`); None: no canaries.
    nat_path_unhealthy: Option<f64>,
}

const OK: Minute = Minute { success: 150.0, failures: &[], rounds: 150.0, nat_path_unhealthy: Some(0.0) };

/// The checker's health metrics for `az`, minute `k` of the 15-minute window ending at `end`
/// (as EMF would make them: counters only when non-zero, dimension AvailabilityZone alone; a
/// minute's many values as one statistic set, which CloudWatch aggregates the same way).
async fn put_minutes(cw: &aws_sdk_cloudwatch::Client, az: &str, end: i64, minutes: &[(i64, Minute)]) {
    let mut data = Vec::new();
    for (k, m) in minutes {
        let at = DateTime::from_secs(end - (15 - k) * 60 + 10);
        let dim = Dimension::builder().name("AvailabilityZone").value(az).build();
        let datum = |name: &str, v: f64, unit: StandardUnit| {
            MetricDatum::builder().metric_name(name).dimensions(dim.clone()).timestamp(at).value(v).unit(unit).build()
        };
        let set = |name: &str, samples: f64, value: f64, unit: StandardUnit| {
            let stats = StatisticSet::builder().sample_count(samples).sum(samples * value).minimum(value).maximum(value).build();
            MetricDatum::builder().metric_name(name).dimensions(dim.clone()).timestamp(at).statistic_values(stats).unit(unit).build()
        };
        let bad_rounds = if m.failures.is_empty() { 0.0 } else { 1.0 };
        data.push(set("Unhealthy", m.rounds, bad_rounds, StandardUnit::None));
        if m.success > 0.0 {
            data.push(set("ProbeLatency", m.success, 42.0, StandardUnit::Milliseconds));
        }
        if let Some(v) = m.nat_path_unhealthy {
            data.push(set("NatPathUnhealthy", m.rounds, v, StandardUnit::None));
        }
        let failed: f64 = m.failures.iter().map(|(_, n)| n).sum();
        if failed > 0.0 {
            data.push(datum("ProbeFailure", failed, StandardUnit::Count));
        }
        for (metric, n) in m.failures {
            data.push(datum(metric, *n, StandardUnit::Count));
        }
    }
    for chunk in data.chunks(500) {
        cw.put_metric_data().namespace(NAMESPACE).set_metric_data(Some(chunk.to_vec())).send().await.unwrap();
    }
}

fn checker_input(az: &str, outage: i64, detected: i64, rule: &str, failed: Value) -> Value {
    json!({
        "availabilityZone": az, "subnetId": "subnet-private", "detectedAt": rfc3339(detected),
        "outageStartedAt": rfc3339(outage), "failedTargets": failed, "consecutiveBadRounds": 3,
        "rule": rule, "badRoundsInWindow": 4, "windowRounds": 6, "checker": "test"
    })
}

async fn alarm(cw: &aws_sdk_cloudwatch::Client, name: &str, anchor: &str) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .alarm_description(format!("What it means and what to check first. Runbook: docs/RUNBOOK.md#{anchor}"))
        .namespace(NAMESPACE)
        .metric_name("ProbeFailure")
        .statistic(Statistic::Sum)
        .period(10)
        .evaluation_periods(6)
        .datapoints_to_alarm(3)
        .threshold(25.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
}

/// Builds the scene the goldens and the README show: us-east-1a failed over and fell back, us-east-1b
/// on its standby NAT gateway and degraded with its alarm in ALARM, us-east-1c on its stable ENI,
/// paused for maintenance, its checker silent.
pub async fn scene(moto: &Moto) -> World {
    let world = build_world(moto).await;
    let now = epoch_now();
    let failed_a = json!([{"url": "https://checkip.amazonaws.com/", "cause": "connect_timeout"}]);
    let (status, output) = execute(moto, &world.failover_arn, "nat-failover-us-east-1a-1", &checker_input("us-east-1a", now - 600, now - 594, "consecutive", failed_a)).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    assert!(output.contains("\"replaced\""), "{output}");
    let (status, output) = execute(moto, &world.fallback_arn, "nat-fallback-us-east-1a-1", &json!({"availabilityZone": "us-east-1a", "trigger": "fallback-auto"})).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    let failed_b = json!([{"url": "https://checkip.amazonaws.com/", "cause": "timeout"}, {"url": "https://www.example.com/", "cause": "http_status"}]);
    let (status, output) = execute(moto, &world.failover_arn, "nat-failover-us-east-1b-1", &checker_input("us-east-1b", now - 300, now - 290, "window", failed_b)).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    assert_eq!(default_targets(moto, &world.tables["us-east-1b"]).await, vec![world.gateways["us-east-1b"].clone(); 2]);

    // The recovery watches us-east-1b (still running) and watched us-east-1a (its watch ended when it fell back).
    let watch = |az: &str, seconds: u64| {
        let failover = format!("arn:aws:states:us-east-1:123456789012:execution:demo-failover:nat-failover-{az}-1");
        json!({"watch": {"availabilityZone": az, "failoverExecutionArn": failover}, "standInSeconds": seconds})
    };
    let (status, _) = execute(moto, &world.recovery_arn, "nat-failover-us-east-1a-1-us-east-1a", &watch("us-east-1a", 0)).await;
    assert_eq!(status, "SUCCEEDED");
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let input = watch("us-east-1b", 3600).to_string();
    sfn.start_execution().state_machine_arn(&world.recovery_arn).name("nat-failover-us-east-1b-1-us-east-1b").input(input).send().await.unwrap();

    let paused = nat_watchdog(&moto.env(), &["--stack", STACK, "pause", "--az", "us-east-1c", "--for", "2h", "--reason", "kernel patch", "--yes"], "").await;
    assert_eq!(paused.code, 0, "{}", paused.stderr);

    let cw = aws_sdk_cloudwatch::Client::new(&moto.sdk().await);
    alarm(&cw, "demo-us-east-1b-connectivity-degraded", "connectivity-degraded").await;
    alarm(&cw, "demo-us-east-1a-checker-silent", "checker-silent").await;
    alarm(&cw, "other-us-east-1a-connectivity-degraded", "connectivity-degraded").await;
    for name in ["demo-us-east-1b-connectivity-degraded", "other-us-east-1a-connectivity-degraded"] {
        cw.set_alarm_state()
            .alarm_name(name)
            .state_value(StateValue::Alarm)
            .state_reason("Threshold Crossed: 3 out of the last 6 datapoints were greater than the threshold (25.0)")
            .send()
            .await
            .unwrap();
    }

    // The window the command will use ends at the next minute boundary; stay clear of a boundary
    // so that the command sees the same window (ordering, not timing: we wait, then act).
    while epoch_now() % 60 >= 40 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let end = (epoch_now() / 60 + 1) * 60;
    let timeouts: &[(&str, f64)] = &[("ProbeFailureConnectTimeout", 130.0)];
    let a: Vec<(i64, Minute)> = (0..15)
        .map(|k| (k, if k == 5 || k == 6 { Minute { success: 20.0, failures: timeouts, rounds: 150.0, nat_path_unhealthy: Some(1.0) } } else { OK }))
        .collect();
    put_minutes(&cw, "us-east-1a", end, &a).await;
    let degraded: &[(&str, f64)] = &[("ProbeFailureTimeout", 60.0), ("ProbeFailureHttpStatus", 30.0)];
    // us-east-1b: its NAT instance failed 5 minutes ago (NAT path unhealthy) and is healthy again for the
    // last 3, while the AZ stays on its gateway and degraded.
    let b: Vec<(i64, Minute)> = (0..15)
        .map(|k| {
            let nat_path_unhealthy = Some(if (9..11).contains(&k) { 1.0 } else { 0.0 });
            (k, if k >= 10 { Minute { success: 60.0, failures: degraded, rounds: 150.0, nat_path_unhealthy } } else { Minute { nat_path_unhealthy, ..OK } })
        })
        .collect();
    put_minutes(&cw, "us-east-1b", end, &b).await;
    // us-east-1c's checker (no canaries) stopped writing five minutes ago.
    let c: Vec<(i64, Minute)> = (0..10).map(|k| (k, Minute { nat_path_unhealthy: None, ..OK })).collect();
    put_minutes(&cw, "us-east-1c", end, &c).await;
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_incidents_tell_the_story_of_executions_that_really_ran() {
    let moto = Moto::start().await;
    let world = scene(&moto).await;
    let env = moto.env();

    let table = nat_watchdog(&env, &["--stack", STACK, "status"], "").await;
    let as_json = nat_watchdog(&env, &["--stack", STACK, "status", "--output", "json"], "").await;
    let incidents = nat_watchdog(&env, &["--stack", STACK, "incidents", "--since", "1h"], "").await;
    let incidents_json = nat_watchdog(&env, &["--stack", STACK, "--output", "json", "incidents"], "").await;

    // An AZ on a gateway, degraded, paused and silent: exit 1. Incidents: 0.
    assert_eq!((table.code, as_json.code, incidents.code, incidents_json.code), (1, 1, 0, 0), "{}{}", table.stderr, incidents.stderr);
    assert_eq!(table.stderr, "");

    let v: Value = serde_json::from_str(&as_json.stdout).unwrap();
    let az = |name: &str| v["availability_zones"].as_array().unwrap().iter().find(|a| a["availability_zone"] == name).unwrap().clone();
    let (a, b, c) = (az("us-east-1a"), az("us-east-1b"), az("us-east-1c"));
    assert_eq!((a["egress"].as_str(), b["egress"].as_str(), c["egress"].as_str()), (Some("nat-instance"), Some("nat-gateway"), Some("nat-eni")));
    assert_eq!(a["attention"], json!([]));
    assert!(a["since_execution"].as_str().unwrap().ends_with("nat-fallback-us-east-1a-1"), "{a}");
    assert!(b["since_execution"].as_str().unwrap().ends_with("nat-failover-us-east-1b-1"), "{b}");
    assert_eq!(c["since"], Value::Null, "no execution moved us-east-1c: unknown");
    assert_eq!(a["probes"]["succeeded"], json!(13 * 150 + 2 * 20));
    assert_eq!(a["probes"]["failures_by_cause"], json!([{"cause": "connect_timeout", "count": 260}]));
    assert_eq!(b["probes"]["failures_by_cause"], json!([{"cause": "http_status", "count": 150}, {"cause": "timeout", "count": 300}]));
    assert_eq!(c["checkers"]["alive"], json!(false));
    assert_eq!((a["checkers"]["alive"].as_bool(), a["checkers"]["rounds"].as_u64()), (Some(true), Some(450)), "{a}");
    assert_eq!((a["nat_path"]["state"].as_str(), b["nat_path"]["state"].as_str(), c["nat_path"]["state"].as_str()), (Some("healthy"), Some("healthy"), Some("unknown")));
    assert_eq!((a["nat_path"]["unhealthy_minutes"].as_u64(), b["nat_path"]["unhealthy_minutes"].as_u64()), (Some(2), Some(2)));
    assert_eq!(b["recovery"]["running"], json!(["nat-failover-us-east-1b-1-us-east-1b"]));
    assert_eq!((a["recovery"]["running"].as_array().map(Vec::len), a["recovery"]["last"]["status"].as_str()), (Some(0), Some("SUCCEEDED")));
    assert_eq!(b["next_step"], json!("automatic fallback expected after hold"));
    assert_eq!(a["next_step"], json!("nothing to do"));
    assert_eq!((a["auto_fallback_suspended"].as_bool(), b["auto_fallback_suspended"].as_bool()), (Some(false), Some(false)));
    assert_eq!(c["pause"]["reason"], json!("kernel patch"));
    assert_eq!(c["pause"]["active"], json!(true));
    let alarms: Vec<&str> = v["alarms_in_alarm"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(alarms, vec!["demo-us-east-1b-connectivity-degraded"]);

    let iv: Value = serde_json::from_str(&incidents_json.stdout).unwrap();
    let list = iv["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{iv}");
    assert_eq!((list[0]["availability_zone"].as_str(), list[0]["detection_secs"].as_i64(), list[0]["fallback_at"].is_null()), (Some("us-east-1b"), Some(10), true));
    assert_eq!(list[0]["probe_failures"], json!(450));
    assert_eq!((list[1]["availability_zone"].as_str(), list[1]["detection_secs"].as_i64()), (Some("us-east-1a"), Some(6)));
    assert_eq!(list[1]["fallback_execution"], json!("nat-fallback-us-east-1a-1"));
    assert_eq!(list[1]["probe_failures"], json!(260));

    golden("status.txt", &normalise(&table.stdout, &world.names));
    golden("status.json", &normalise(&as_json.stdout, &world.names));
    golden("incidents.txt", &normalise(&incidents.stdout, &world.names));
    golden("incidents.json", &normalise(&incidents_json.stdout, &world.names));
    readme_screen(&table.stdout, &world.names);
}

const BEGIN: &str = "<!-- nat-watchdog status screen: begin -->\n";
const END: &str = "<!-- nat-watchdog status screen: end -->";

/// The README's on-call section shows a real screen of this scene. `UPDATE_README=1` writes the
/// screen just captured; otherwise the README's screen must match this run once normalised.
fn readme_screen(screen: &str, names: &[(String, String)]) {
    let path = workspace_root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (readme.find(BEGIN), readme.find(END)) else { panic!("README.md has no status screen markers") };
    let block = format!("```text\n$ nat-watchdog --stack demo status\n{screen}```\n");
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, format!("{}{block}{}", &readme[..b + BEGIN.len()], &readme[e..])).unwrap();
        return;
    }
    // The README's ids are moto's from the run that wrote it: normalise both sides by shape.
    let _ = names;
    let shape = |s: &str| normalise_ids(&normalise(s, &[]));
    assert_eq!(shape(&readme[b + BEGIN.len()..e]), shape(&block), "README screen is stale: UPDATE_README=1 rewrites it");
}

/// Any `<prefix>-<hex>` id (vpc, rtb, i, eni, nat) → `<prefix>-<id>`.
fn normalise_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    'outer: while !rest.is_empty() {
        for p in ["vpc-", "rtb-", "i-", "eni-", "nat-"] {
            if rest.starts_with(p) && !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-') {
                let tail = &rest[p.len()..];
                let n = tail.chars().take_while(|c| c.is_ascii_hexdigit()).count();
                if n >= 8 {
                    out.push_str(p);
                    out.push_str("<id>");
                    rest = &tail[n..];
                    continue 'outer;
                }
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}
