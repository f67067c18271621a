//! Manual failover and fallback through the binary: the route really moves in moto.

use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_moves_the_route_and_a_fallback_brings_it_back() {
    let moto = Moto::start().await;
    let world = build_world(&moto).await;
    let env = moto.env();
    let tables = &world.tables["us-east-1a"];
    let before = default_targets(&moto, tables).await;

    let run = nat_watchdog(&env, &["--stack", STACK, "--output", "json", "failover", "--az", "us-east-1a", "--yes"], "").await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["execution"]["status"], "SUCCEEDED");
    assert_eq!(v["execution"]["trigger"], "manual");
    assert_eq!(v["execution"]["moved"], serde_json::json!(["us-east-1a"]));
    assert_eq!(default_targets(&moto, tables).await, vec![world.gateways["us-east-1a"].clone(); 2]);
    // The other AZs are left alone.
    assert_ne!(default_targets(&moto, &world.tables["us-east-1b"]).await[0], world.gateways["us-east-1b"]);

    // The input the state machine received is the contract's manual form.
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let d = sfn.describe_execution().execution_arn(v["execution_arn"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(d.input(), Some(r#"{"availabilityZone":"us-east-1a","trigger":"manual"}"#));

    let status = nat_watchdog(&env, &["--stack", STACK, "status"], "").await;
    assert_eq!(status.code, 1, "on a gateway needs attention: {}{}", status.stdout, status.stderr);
    assert!(status.stdout.contains("us-east-1a  ATTENTION: on a NAT gateway"), "{}", status.stdout);

    let back = nat_watchdog(&env, &["--stack", STACK, "fallback", "--az", "us-east-1a"], "y\n").await;
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert!(back.stderr.starts_with("Start Fallback for us-east-1a (trigger manual; now "), "{}", back.stderr);
    assert!(back.stdout.contains(": SUCCEEDED"), "{}", back.stdout);
    assert_eq!(default_targets(&moto, tables).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_prompt_starts_nothing_and_exits_4() {
    let moto = Moto::start().await;
    let world = build_world(&moto).await;
    let run = nat_watchdog(&moto.env(), &["--stack", STACK, "failover", "--az", "us-east-1b"], "no\n").await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.ends_with("nat-watchdog: not confirmed: nothing was changed\n"), "{}", run.stderr);
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let list = sfn.list_executions().state_machine_arn(&world.failover_arn).send().await.unwrap();
    assert!(list.executions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_then_resume_sets_and_removes_the_tags_on_every_table_of_the_az() {
    let moto = Moto::start().await;
    let world = build_world(&moto).await;
    let env = moto.env();
    let run = nat_watchdog(&env, &["--stack", STACK, "pause", "--az", "us-east-1b", "--for", "90m", "--yes"], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk().await);
    let tag_of = |t: &aws_sdk_ec2::types::RouteTable| t.tags().iter().find(|t| t.key() == Some("nat-watchdog:paused-until")).and_then(|t| t.value()).map(str::to_string);
    let all = ec2.describe_route_tables().vpc_id_filter(&world.vpc).await;
    let paused: Vec<String> = all.iter().filter(|t| tag_of(t).is_some()).map(|t| t.route_table_id().unwrap().to_string()).collect();
    let mut expected = world.tables["us-east-1b"].clone();
    expected.sort();
    assert_eq!(paused, expected);
    let until = tag_of(&all[all.iter().position(|t| tag_of(t).is_some()).unwrap()]).unwrap();
    let secs = aws_smithy_types::DateTime::from_str(&until, aws_smithy_types::date_time::Format::DateTime).unwrap().secs();
    assert!((secs - epoch_now() - 5400).abs() <= 60, "{until}");

    let run = nat_watchdog(&env, &["--stack", STACK, "resume", "--az", "us-east-1b"], "").await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = ec2.describe_route_tables().vpc_id_filter(&world.vpc).await;
    assert!(all.iter().all(|t| tag_of(t).is_none()));
}

trait VpcFilter {
    async fn vpc_id_filter(self, vpc: &str) -> Vec<aws_sdk_ec2::types::RouteTable>;
}

impl VpcFilter for aws_sdk_ec2::operation::describe_route_tables::builders::DescribeRouteTablesFluentBuilder {
    async fn vpc_id_filter(self, vpc: &str) -> Vec<aws_sdk_ec2::types::RouteTable> {
        let f = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(vpc).build();
        let mut v = self.filters(f).send().await.unwrap().route_tables().to_vec();
        v.sort_by(|a, b| a.route_table_id().cmp(&b.route_table_id()));
        v
    }
}
