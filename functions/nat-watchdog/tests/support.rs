//! Fixtures: a moto server per test (the checker's helper pattern), a deployment built in it through
//! the APIs, the `nat-watchdog` binary run against it, and golden files.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use aws_smithy_types::DateTime;

pub const REGION: &str = "us-east-1";
pub const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
pub const STACK: &str = "demo";
pub const NAMESPACE: &str = "NatEgressWatchdog";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[path = "../../../tests/support/moto_server.rs"]
mod moto_server;

/// A moto server on 127.0.0.1 (its own port) with Step Functions execution on; killed by PID on drop.
pub struct Moto {
    // Held for its Drop: the server is killed with the fixture.
    _server: moto_server::MotoServer,
    pub url: String,
    pub port: u16,
}

impl Moto {
    pub async fn start() -> Moto {
        let server = moto_server::MotoServer::start(&workspace_root()).await;
        let moto = Moto { url: server.url.clone(), port: server.port, _server: server };
        moto.post("/moto-api/config", r#"{"stepfunctions":{"execute_state_machine":true}}"#);
        moto
    }

    fn post(&self, path: &str, body: &str) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 2"), "{path}: {reply}");
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_ec2::config::Credentials::new("testing", "testing", None, None, "tests"))
            .endpoint_url(&self.url)
            .load()
            .await
    }

    /// Environment for the binary: only what a user would set.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_at(&self.url)
    }
}

pub fn env_at(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ]
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with exactly `env` (plus PATH and a home without AWS files), `stdin` as input.
pub async fn nat_watchdog(env: &[(&str, String)], args: &[&str], stdin: &str) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_nat-watchdog"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        // Never ask the instance metadata endpoint (no network but loopback).
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn nat-watchdog");
    let mut input = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut input, stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.expect("nat-watchdog ended within 120 s").unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn tags(kind: ResourceType, pairs: &[(&str, &str)]) -> TagSpecification {
    let mut b = TagSpecification::builder().resource_type(kind);
    for (k, v) in pairs {
        b = b.tags(Tag::builder().key(*k).value(*v).build());
    }
    b.build()
}

/// What the deployment in moto consists of; `names` maps every generated id to a stable label.
pub struct World {
    pub vpc: String,
    pub tables: BTreeMap<String, Vec<String>>,
    pub gateways: BTreeMap<String, String>,
    pub failover_arn: String,
    pub fallback_arn: String,
    /// A stand-in for the recovery state machine: its executions wait `standInSeconds` of their input.
    pub recovery_arn: String,
    pub names: Vec<(String, String)>,
}

/// Per AZ: a public subnet with a NAT instance and a standby NAT gateway, two private route tables
/// tagged `nat-watchdog:az` whose 0.0.0.0/0 goes to the NAT instance (us-east-1a, b: its primary
/// ENI; us-east-1c: a managed stable ENI tagged `nat-watchdog:nat-eni-for`, attached as device 1);
/// the Failover/Fallback state machines from infra/statemachines; a stack `demo` whose outputs name them.
pub async fn build_world(moto: &Moto) -> World {
    let conf = moto.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let mut names = Vec::new();
    let vpc = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await.unwrap().vpc().unwrap().vpc_id().unwrap().to_string();
    names.push((vpc.clone(), "vpc-demo".to_string()));
    let (mut tables, mut gateways) = (BTreeMap::new(), BTreeMap::new());
    for (i, az) in AZS.iter().enumerate() {
        let letter = &az[az.len() - 1..];
        let subnet = |n: usize| {
            ec2.create_subnet().vpc_id(&vpc).availability_zone(*az).cidr_block(format!("10.0.{n}.0/24")).send()
        };
        let public = subnet(i * 2).await.unwrap().subnet().unwrap().subnet_id().unwrap().to_string();
        let instance = ec2
            .run_instances()
            .image_id("ami-12c6146b")
            .instance_type(aws_sdk_ec2::types::InstanceType::T4gNano)
            .min_count(1)
            .max_count(1)
            .subnet_id(&public)
            .tag_specifications(tags(ResourceType::Instance, &[("nat-watchdog:nat-instance-for", az)]))
            .send()
            .await
            .unwrap();
        let instance = &instance.instances()[0];
        let instance_id = instance.instance_id().unwrap().to_string();
        let primary = instance.network_interfaces()[0].network_interface_id().unwrap().to_string();
        names.push((instance_id.clone(), format!("i-nat-{letter}")));
        names.push((primary.clone(), format!("eni-primary-{letter}")));
        let target = if *az == "us-east-1c" {
            let eni = ec2
                .create_network_interface()
                .subnet_id(&public)
                .tag_specifications(tags(ResourceType::NetworkInterface, &[("nat-watchdog:nat-eni-for", az)]))
                .send()
                .await
                .unwrap()
                .network_interface()
                .unwrap()
                .network_interface_id()
                .unwrap()
                .to_string();
            ec2.attach_network_interface().network_interface_id(&eni).instance_id(&instance_id).device_index(1).send().await.unwrap();
            names.push((eni.clone(), format!("eni-stable-{letter}")));
            eni
        } else {
            primary
        };
        let alloc = ec2.allocate_address().domain(aws_sdk_ec2::types::DomainType::Vpc).send().await.unwrap().allocation_id().unwrap().to_string();
        let ngw = ec2
            .create_nat_gateway()
            .subnet_id(&public)
            .allocation_id(alloc)
            .tag_specifications(tags(ResourceType::Natgateway, &[("nat-watchdog:standby-for", az)]))
            .send()
            .await
            .unwrap()
            .nat_gateway()
            .unwrap()
            .nat_gateway_id()
            .unwrap()
            .to_string();
        names.push((ngw.clone(), format!("nat-standby-{letter}")));
        gateways.insert(az.to_string(), ngw);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let rtb = ec2
                .create_route_table()
                .vpc_id(&vpc)
                .tag_specifications(tags(ResourceType::RouteTable, &[("nat-watchdog:az", az)]))
                .send()
                .await
                .unwrap()
                .route_table()
                .unwrap()
                .route_table_id()
                .unwrap()
                .to_string();
            ec2.create_route().route_table_id(&rtb).destination_cidr_block("0.0.0.0/0").network_interface_id(&target).send().await.unwrap();
            ids.push(rtb);
        }
        // Labelled in the order the command lists them (by id), so that goldens do not depend on
        // which random id sorts first.
        ids.sort();
        for (n, rtb) in ids.iter().enumerate() {
            names.push((rtb.clone(), format!("rtb-{letter}{}", n + 1)));
        }
        tables.insert(az.to_string(), ids);
    }
    let sfn = aws_sdk_sfn::Client::new(&conf);
    let mut arns = Vec::new();
    for machine in ["failover", "fallback"] {
        let path = workspace_root().join(format!("infra/statemachines/{machine}.asl.json"));
        // As the template's DefinitionSubstitutions: no shared fallback gateway.
        let definition =
            std::fs::read_to_string(path).unwrap().replace("${FallbackNatGatewayId}", "").replace("${VpcId}", &vpc);
        let arn = sfn
            .create_state_machine()
            .name(format!("{STACK}-{machine}"))
            .role_arn("arn:aws:iam::123456789012:role/nat-watchdog-state-machines")
            .definition(definition)
            .send()
            .await
            .unwrap()
            .state_machine_arn()
            .to_string();
        arns.push(arn);
    }
    // The recovery's own definition needs CloudWatch and EC2 integrations moto does not run; the
    // command only lists its executions and reads their input.
    let recovery_arn = sfn
        .create_state_machine()
        .name(format!("{STACK}-nat-recovery"))
        .role_arn("arn:aws:iam::123456789012:role/nat-watchdog-state-machines")
        .definition(r#"{"StartAt":"Watch","States":{"Watch":{"Type":"Wait","SecondsPath":"$.standInSeconds","End":true}}}"#)
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let template = serde_json::json!({
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "FailoverStateMachineArn": {"Value": arns[0]},
            "FallbackStateMachineArn": {"Value": arns[1]},
            "RecoveryStateMachineArn": {"Value": recovery_arn},
            "VpcId": {"Value": vpc},
            "MetricsNamespace": {"Value": NAMESPACE},
        }
    });
    aws_sdk_cloudformation::Client::new(&conf).create_stack().stack_name(STACK).template_body(template.to_string()).send().await.unwrap();
    World { vpc, tables, gateways, failover_arn: arns[0].clone(), fallback_arn: arns[1].clone(), recovery_arn, names }
}

/// Starts a named execution and waits (bounded) for it to end; returns (status, output).
pub async fn execute(moto: &Moto, arn: &str, name: &str, input: &serde_json::Value) -> (String, String) {
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk().await);
    let exec = sfn.start_execution().state_machine_arn(arn).name(name).input(input.to_string()).send().await.unwrap();
    for _ in 0..300 {
        let d = sfn.describe_execution().execution_arn(exec.execution_arn()).send().await.unwrap();
        if d.status().as_str() != "RUNNING" {
            return (d.status().as_str().to_string(), d.output().unwrap_or("").to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("execution {name} still running after 30 s");
}

/// 0.0.0.0/0 target (gateway or ENI id) of each table.
pub async fn default_targets(moto: &Moto, tables: &[String]) -> Vec<String> {
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk().await);
    let out = ec2
        .describe_route_tables()
        .set_route_table_ids(Some(tables.to_vec()))
        .filters(Filter::builder().name("route.destination-cidr-block").values("0.0.0.0/0").build())
        .send()
        .await
        .unwrap();
    let mut by_id: BTreeMap<String, String> = BTreeMap::new();
    for t in out.route_tables() {
        let r = t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).unwrap();
        let target = r.nat_gateway_id().or(r.network_interface_id()).or(r.gateway_id()).unwrap_or("?");
        by_id.insert(t.route_table_id().unwrap().to_string(), target.to_string());
    }
    tables.iter().map(|t| by_id[t].clone()).collect()
}

pub fn epoch_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn rfc3339(epoch: i64) -> String {
    DateTime::from_secs(epoch).fmt(aws_smithy_types::date_time::Format::DateTime).unwrap()
}

/// Replaces generated ids by their labels, instants by `<time>`, spans by `<span>`.
pub fn normalise(text: &str, names: &[(String, String)]) -> String {
    let mut s = text.to_string();
    for (id, label) in names {
        s = s.replace(id, label);
    }
    let mut out = String::new();
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    // Instants: 2026-11-23T12:00:05Z (the only RFC 3339 form the command prints).
    while i < bytes.len() {
        let rest: String = bytes[i..bytes.len().min(i + 20)].iter().collect();
        if rest.len() == 20 && is_instant(&rest) {
            out.push_str("<time>");
            i += 20;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    normalise_spans(&out)
}

fn is_instant(s: &str) -> bool {
    let b = s.as_bytes();
    let digit = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    digit(0..4) && b[4] == b'-' && digit(5..7) && b[7] == b'-' && digit(8..10) && b[10] == b'T' && digit(11..13) && b[13] == b':' && digit(14..16) && b[16] == b':' && digit(17..19) && b[19] == b'Z'
}

/// `45s`, `3m05s`, `2h07m`, `-5s` (the spans the command prints, measured on the wall clock) and
/// the `…_secs` numbers of JSON that are measured, not given.
fn normalise_spans(s: &str) -> String {
    let mut out = Vec::new();
    for token in split_keep(s) {
        let t = token.trim_start_matches('-');
        let measured = !t.is_empty() && {
            let units: String = t.chars().filter(|c| !c.is_ascii_digit()).collect();
            matches!(units.as_str(), "s" | "ms" | "hm" | "dh") && t.chars().next().unwrap().is_ascii_digit() && t.ends_with(['s', 'm', 'h'])
        };
        out.push(if measured { "<span>".to_string() } else { token });
    }
    let joined = out.concat();
    joined
        .lines()
        .map(|l| {
            for key in ["\"time_to_route_change_secs\": ", "\"on_gateway_secs\": "] {
                if let Some(p) = l.find(key) {
                    let tail = &l[p + key.len()..];
                    if tail.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                        let comma = if tail.ends_with(',') { "," } else { "" };
                        return format!("{}{key}<secs>{comma}", &l[..p]);
                    }
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if s.ends_with('\n') { "\n" } else { "" }
}

/// Splits into runs of [0-9a-z-] and single other characters.
fn split_keep(s: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c.is_ascii_lowercase() || c == '-' {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                v.push(std::mem::take(&mut cur));
            }
            v.push(c.to_string());
        }
    }
    if !cur.is_empty() {
        v.push(cur);
    }
    v
}

/// Compares with tests/golden/<name>; `UPDATE_GOLDEN=1` rewrites it instead.
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "golden {name} differs (UPDATE_GOLDEN=1 rewrites it after review)");
}
