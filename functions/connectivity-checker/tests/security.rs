//! Secrets in CHECK_URLS (user info, query tokens) never reach logs, EMF or the execution input,
//! neither in a normal run with an outage and a failover nor in a configuration error.

use std::time::Duration;

use crate::support::{aws_env, event, Checker, LocalTarget, Mode, Moto};

const PASSWORD: &str = "pa55-w0rd-Zq";
const TOKEN: &str = "t0ken-s3cret-Xy";

fn leaks(text: &str) -> Vec<&'static str> {
    [PASSWORD, TOKEN, "alice:", "token="].into_iter().filter(|s| text.contains(s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_secrets_never_reach_logs_metrics_or_the_execution_input() {
    let moto = Moto::start().await;
    let arn = moto.state_machine("Failover-secrets").await;
    let targets = [LocalTarget::start(Mode::Serve).await, LocalTarget::start(Mode::Serve).await];
    let secret_urls: Vec<String> = targets
        .iter()
        .map(|t| format!("http://alice:{PASSWORD}@{}/health?token={TOKEN}&x=1#frag", t.addr))
        .collect();
    let mut env = aws_env(&moto, &arn, "us-east-1a", "subnet-secrets");
    env.push(("CHECK_URLS", secret_urls.join(",")));
    // Per-target documents (opt-in) carry the Target label: on, so the check covers them too.
    env.push(("PER_TARGET_METRICS", "true".to_string()));
    // Debug level: every probe event with its target, the config, the verdict, the trigger, the summary.
    let mut checker = Checker::spawn(&env, &["--duration", "4"]);
    checker.wait_for_log("a good round", |v| v["event"] == "round" && v["good"] == true, Duration::from_secs(10)).await;
    for t in &targets {
        t.set(Mode::Error503);
    }
    checker.wait_for_log("failover_started", |v| v["event"] == "failover_started", Duration::from_secs(10)).await;
    let run = checker.finish(Duration::from_secs(15)).await;
    assert!(run.status.success());

    // The run did write the targets everywhere (so the check below has something to look at) ...
    let probes = event(&run.logs, "probe");
    assert!(probes.len() >= 10 && probes.iter().all(|p| p["target"].as_str().is_some_and(|t| t.contains("/health"))));
    assert!(run.stdout.iter().any(|d| d.contains("\"Target\":\"http://127.0.0.1:")));
    let executions = moto.executions(&arn).await;
    assert_eq!(executions.len(), 1);
    let input = executions[0].1.to_string();
    assert!(input.contains("/health"), "{input}");

    // ... and never a secret.
    for (what, text) in [
        ("stderr", run.logs.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n")),
        ("stdout", run.stdout.join("\n")),
        ("execution input", input),
    ] {
        assert!(leaks(&text).is_empty(), "{what} leaks {:?}", leaks(&text));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configuration_error_does_not_echo_url_secrets() {
    let bad = format!("https://alice:{PASSWORD}@a.example/?token={TOKEN},ftp://bob:{PASSWORD}@b.example/");
    let run = Checker::spawn(&[("CHECK_URLS", bad)], &["--duration", "2"]).finish(Duration::from_secs(10)).await;
    assert_eq!(run.status.code(), Some(2));
    let text = run.logs.iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("CHECK_URLS") && text.contains("b.example"), "{text}");
    assert!(leaks(&text).is_empty(), "leaks {:?}: {text}", leaks(&text));
}
