//! The Lambda entry point against a fake Runtime API on 127.0.0.1: the invocation deadline decides
//! when the run ends, the summary is posted before the deadline, nonsense deadlines fall back to
//! MAX_RUN_SECONDS, and a bad configuration is reported as an init error.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::{event, urls, Checker, LocalTarget, Mode};

/// What the fake Runtime API received: (path, body, arrival in epoch ms).
type Received = (String, String, u64);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Serves one invocation whose deadline is `budget_ms` after it is handed out (`None`: header "0"),
/// then never answers /next again. Keep-alive HTTP/1.1, as the runtime client expects.
async fn fake_runtime(budget_ms: Option<u64>) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream, tx.clone(), served.clone(), budget_ms));
        }
    });
    (addr, rx)
}

async fn connection(
    mut s: TcpStream,
    tx: mpsc::UnboundedSender<Received>,
    served: std::sync::Arc<std::sync::atomic::AtomicBool>,
    budget_ms: Option<u64>,
) {
    let mut buf = Vec::new();
    loop {
        // Read one request: head, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut s, &mut buf).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if !read_more(&mut s, &mut buf).await {
                return;
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        buf.drain(..head_end + length);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        if path.ends_with("/invocation/next") {
            if served.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            let deadline = budget_ms.map_or(0, |b| now_ms() + b);
            let _ = tx.send(("next".to_string(), deadline.to_string(), now_ms()));
            let event = r#"{"version":"0","id":"e-1","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2026-11-22T20:00:00Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/checker"],"detail":{}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:checker\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{event}",
                event.len()
            );
            if s.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        } else {
            let _ = tx.send((path, body, now_ms()));
            if s.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n").await.is_err() {
                return;
            }
        }
    }
}

/// Appends what the peer sent next; false when it hung up.
async fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

fn lambda_env(runtime: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "checker".to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_string()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/checker".to_string()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "stream".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
        ("FAILOVER_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:123456789012:stateMachine:Failover".to_string()),
        ("AVAILABILITY_ZONE", "us-east-1a".to_string()),
        ("SUBNET_ID", "subnet-lambda".to_string()),
    ];
    env.extend(extra.iter().cloned());
    env
}

async fn next_post(rx: &mut mpsc::UnboundedReceiver<Received>, within: Duration) -> Received {
    tokio::time::timeout(within, rx.recv()).await.expect("nothing posted to the Runtime API in time").expect("runtime gone")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_probes_until_its_deadline_and_answers_before_it() {
    let targets = [LocalTarget::start(Mode::Serve).await, LocalTarget::start(Mode::Serve).await];
    let budget_ms = 5_000;
    let (runtime, mut rx) = fake_runtime(Some(budget_ms)).await;
    let checker = Checker::spawn(&lambda_env(&runtime, &[("CHECK_URLS", urls(&targets))]), &[]);
    let (next, deadline, handed_out) = next_post(&mut rx, Duration::from_secs(15)).await;
    assert_eq!(next, "next");
    let deadline: u64 = deadline.parse().unwrap();
    let (path, body, at) = next_post(&mut rx, Duration::from_secs(15)).await;
    assert_eq!(path, "/2018-06-01/runtime/invocation/req-1/response", "{body}");
    // Never killed by its own timeout: the answer beats the deadline, and the run used most of it
    // (rounds stop REQUEST_TIMEOUT + 1 s before it).
    assert!(at < deadline, "answered {} ms after the deadline", at - deadline);
    assert!(at - handed_out >= budget_ms - 2_500, "gave up early: ran {} ms of {budget_ms}", at - handed_out);
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["stoppedBy"], "deadline");
    assert_eq!(summary["verdict"], "healthy");
    assert!(summary["rounds"].as_u64().unwrap() >= 5, "{summary}");
    assert_eq!(summary["probeFailures"], 0);
    drop(checker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonsense_deadline_falls_back_to_max_run_seconds() {
    let targets = [LocalTarget::start(Mode::Serve).await];
    let (runtime, mut rx) = fake_runtime(None).await;
    let mut checker = Checker::spawn(&lambda_env(&runtime, &[("CHECK_URLS", urls(&targets)), ("MAX_RUN_SECONDS", "4".into())]), &[]);
    let (next, deadline, handed_out) = next_post(&mut rx, Duration::from_secs(15)).await;
    assert_eq!((next.as_str(), deadline.as_str()), ("next", "0"));
    let warn = checker.wait_for_log("deadline_fallback", |v| v["event"] == "deadline_fallback", Duration::from_secs(10)).await;
    assert_eq!(warn["reason"], "NoDeadline");
    let (path, body, at) = next_post(&mut rx, Duration::from_secs(15)).await;
    assert!(path.ends_with("/response"), "{path}");
    // The fallback budget is treated as a deadline: answered before it, rounds stopping
    // REQUEST_TIMEOUT + 1 s early.
    let ran = at - handed_out;
    assert!((1_500..4_000).contains(&ran), "ran {ran} ms for a 4 s fallback");
    let summary: Value = serde_json::from_str(&body).unwrap();
    assert!(summary["rounds"].as_u64().unwrap() >= 3, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_reported_as_an_init_error() {
    let (runtime, mut rx) = fake_runtime(Some(5_000)).await;
    let checker = Checker::spawn(&lambda_env(&runtime, &[("UNHEALTHY_THRESHOLD", "0".into())]), &[]);
    let (path, body, _) = next_post(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(path, "/2018-06-01/runtime/init/error");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "Runtime.ConfigError");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("UNHEALTHY_THRESHOLD") && message.contains("expected"), "{message}");
    let run = checker.finish(Duration::from_secs(5)).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stdout.is_empty());
    assert!(event(&run.logs, "probe").is_empty());
}

/// cargo-lambda's emulator serves the Runtime API under a path prefix
/// (`AWS_LAMBDA_RUNTIME_API=127.0.0.1:9000/.rt`); `lambda_runtime` joins its paths to it, and so
/// must the init-error report (it used to fail with "invalid port value" and leave the invoke hanging).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_api_with_a_path_prefix_gets_the_init_error_under_that_prefix() {
    let (runtime, mut rx) = fake_runtime(Some(5_000)).await;
    let prefixed = format!("{runtime}/.rt");
    let checker = Checker::spawn(&lambda_env(&prefixed, &[("UNHEALTHY_THRESHOLD", "0".into())]), &[]);
    let (path, body, _) = next_post(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(path, "/.rt/2018-06-01/runtime/init/error");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "Runtime.ConfigError");
    assert!(error["errorMessage"].as_str().unwrap().contains("UNHEALTHY_THRESHOLD"), "{error}");
    let run = checker.finish(Duration::from_secs(5)).await;
    assert_eq!(run.status.code(), Some(2));
}
