//! Test fixtures: a moto server per test, loopback targets that can be cut, the checker process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

pub const REGION: &str = "us-east-1";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[path = "../../../tests/support/moto_server.rs"]
mod moto_server;

/// A moto server on 127.0.0.1 (its own port), killed by PID on drop.
pub struct Moto {
    // Held for its Drop: the server is killed with the fixture.
    _server: moto_server::MotoServer,
    pub url: String,
}

impl Moto {
    pub async fn start() -> Moto {
        let server = moto_server::MotoServer::start(&workspace_root()).await;
        Moto { url: server.url.clone(), _server: server }
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        let conf = aws_sdk_sfn::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .endpoint_url(&self.url)
            .build();
        aws_sdk_sfn::Client::from_conf(conf)
    }

    /// A trivial state machine: these tests are about who starts executions, not what they do.
    pub async fn state_machine(&self, name: &str) -> String {
        let out = self
            .sfn()
            .create_state_machine()
            .name(name)
            .role_arn("arn:aws:iam::123456789012:role/failover")
            .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}"#)
            .send()
            .await
            .expect("create state machine in moto");
        out.state_machine_arn().to_string()
    }

    /// (name, input JSON) of every execution of `arn`.
    pub async fn executions(&self, arn: &str) -> Vec<(String, Value)> {
        let sfn = self.sfn();
        let list = sfn.list_executions().state_machine_arn(arn).send().await.expect("list executions");
        let mut out = Vec::new();
        for e in list.executions() {
            let d = sfn.describe_execution().execution_arn(e.execution_arn()).send().await.expect("describe");
            let input = serde_json::from_str(d.input().unwrap_or("null")).unwrap_or(Value::Null);
            out.push((e.name().to_string(), input));
        }
        out
    }
}

/// How a loopback target behaves right now.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Serve = 0,
    /// Accept and never answer: from the probe's side, packets vanish.
    Hang = 1,
    Error503 = 2,
    /// `200 OK` with a 1 GiB body, streamed until the client hangs up.
    HugeBody = 3,
    /// The status line at once, then the headers one byte per second.
    Slowloris = 4,
    /// `302` to itself, forever.
    RedirectLoop = 5,
    /// Accept and close at once.
    AcceptClose = 6,
}

/// An HTTP target on 127.0.0.1 whose behaviour can be switched while the checker runs.
pub struct LocalTarget {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalTarget {
    pub async fn start(mode: Mode) -> LocalTarget {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(AtomicU8::new(mode as u8));
        let m = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mode = m.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if mode == Mode::AcceptClose as u8 {
                        return;
                    }
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    let reply: &[u8] = match mode {
                        0 => b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
                        2 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        3 => return huge_body(s).await,
                        4 => return slowloris(s).await,
                        5 => b"HTTP/1.1 302 Found\r\nLocation: /health\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        _ => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                    };
                    let _ = s.write_all(reply).await;
                });
            }
        });
        LocalTarget { addr, mode: shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

async fn huge_body(mut s: TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n").await;
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..16_384 {
        if s.write_all(&chunk).await.is_err() {
            return;
        }
    }
}

async fn slowloris(mut s: TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
    for b in b"X-Slow: ".iter().cycle().take(60) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if s.write_all(&[*b]).await.is_err() {
            return;
        }
    }
}

impl Drop for LocalTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTPS server on 127.0.0.1 whose certificate (self-signed, for `localhost`) no client trusts:
/// its far end answers every handshake with a certificate the prober rejects.
pub struct UntrustedTlsTarget {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl UntrustedTlsTarget {
    pub async fn start() -> UntrustedTlsTarget {
        use tokio_rustls::rustls;
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The client aborts the handshake once it sees the certificate.
                    let _ = acceptor.accept(s).await;
                });
            }
        });
        UntrustedTlsTarget { addr, task }
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}/health", self.addr.port())
    }
}

impl Drop for UntrustedTlsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback URL whose port refuses connections (bound once, then closed).
pub async fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/refused")
}

pub fn urls(targets: &[LocalTarget]) -> String {
    targets.iter().map(LocalTarget::url).collect::<Vec<_>>().join(",")
}

/// A running checker CLI: stdout (EMF) and stderr (JSON logs) are collected line by line.
pub struct Checker {
    child: Child,
    pub stdout: tokio::task::JoinHandle<Vec<String>>,
    logs: tokio::sync::mpsc::UnboundedReceiver<Value>,
    pub seen_logs: Vec<Value>,
}

pub struct Finished {
    pub status: std::process::ExitStatus,
    pub stdout: Vec<String>,
    pub logs: Vec<Value>,
}

impl Checker {
    pub fn spawn(env: &[(&str, String)], args: &[&str]) -> Checker {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_connectivity-checker"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("RUST_LOG", "debug")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the checker");
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let stdout = tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            let mut all = Vec::new();
            while let Ok(Some(l)) = lines.next_line().await {
                all.push(l);
            }
            all
        });
        let (tx, logs) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                let v = serde_json::from_str(&l).unwrap_or_else(|_| serde_json::json!({ "raw": l }));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Checker { child, stdout, logs, seen_logs: Vec::new() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Waits (bounded) for a log line satisfying `pred`; returns it.
    pub async fn wait_for_log(&mut self, what: &str, pred: impl Fn(&Value) -> bool, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.logs.recv()).await {
                Ok(Some(v)) => {
                    self.seen_logs.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Ok(None) => panic!("checker exited before logging {what}; logs: {:#?}", self.seen_logs),
                Err(_) => panic!("no log {what} within {within:?}; logs: {:#?}", self.seen_logs),
            }
        }
    }

    pub async fn finish(mut self, within: Duration) -> Finished {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("checker still running after {within:?}"))
            .expect("wait");
        let stdout = self.stdout.await.unwrap();
        let mut logs = std::mem::take(&mut self.seen_logs);
        while let Ok(Some(v)) = tokio::time::timeout(Duration::from_secs(2), self.logs.recv()).await {
            logs.push(v);
        }
        Finished { status, stdout, logs }
    }
}

pub fn event<'a>(logs: &'a [Value], name: &str) -> Vec<&'a Value> {
    logs.iter().filter(|l| l["event"] == name).collect()
}

/// Environment for a checker that fails over through moto.
pub fn aws_env(moto: &Moto, arn: &str, az: &str, subnet: &str) -> Vec<(&'static str, String)> {
    aws_env_at(&moto.url, arn, az, subnet)
}

/// Environment for a checker whose Step Functions endpoint is `endpoint` (a fault proxy, a dead port).
pub fn aws_env_at(endpoint: &str, arn: &str, az: &str, subnet: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("FAILOVER_STATE_MACHINE_ARN", arn.to_string()),
        ("AVAILABILITY_ZONE", az.to_string()),
        ("SUBNET_ID", subnet.to_string()),
    ]
}

/// What a [`FaultProxy`] answers to `StartExecution` (every other call is forwarded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `400 {"__type":"ThrottlingException"}`, as Step Functions throttles (awsJson1.0).
    Throttle,
    /// That HTTP status with a JSON error body.
    Status(u16),
    /// Read the request, never answer.
    Hang,
    /// `400 {"__type":"AccessDeniedException"}`.
    AccessDenied,
    /// Throttle the first N calls, then forward to the upstream (moto).
    ThrottleThenForward(usize),
}

/// An HTTP proxy in front of moto that injects `fault` into `StartExecution` and counts the attempts.
pub struct FaultProxy {
    pub url: String,
    attempts: Arc<std::sync::Mutex<Vec<std::time::SystemTime>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(fault: Fault, upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = attempts.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(client, fault, upstream.clone(), seen.clone()));
            }
        });
        FaultProxy { url, attempts, task }
    }

    /// When each StartExecution reached the proxy.
    pub fn attempts(&self) -> Vec<std::time::SystemTime> {
        self.attempts.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 message: head (through the blank line) and a Content-Length body.
async fn read_message(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    Some((head, body))
}

fn json_error(status: u16, error_type: &str, message: &str) -> Vec<u8> {
    let body = format!(r#"{{"__type":"{error_type}","message":"{message}"}}"#);
    format!(
        "HTTP/1.1 {status} Injected\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn proxy_connection(
    mut client: TcpStream,
    fault: Fault,
    upstream: String,
    attempts: Arc<std::sync::Mutex<Vec<std::time::SystemTime>>>,
) {
    while let Some((head, body)) = read_message(&mut client).await {
        let start_execution = head.to_ascii_lowercase().contains("x-amz-target: awsstepfunctions.startexecution");
        let n = if start_execution {
            let mut a = attempts.lock().unwrap();
            a.push(std::time::SystemTime::now());
            a.len()
        } else {
            0
        };
        let injected = match (start_execution, fault) {
            (false, _) => None,
            (true, Fault::Throttle) => Some(json_error(400, "ThrottlingException", "Rate exceeded")),
            (true, Fault::ThrottleThenForward(k)) if n <= k => Some(json_error(400, "ThrottlingException", "Rate exceeded")),
            (true, Fault::ThrottleThenForward(_)) => None,
            (true, Fault::Status(code)) => {
                let error_type = if code == 503 { "ServiceUnavailable" } else { "InternalFailure" };
                Some(json_error(code, error_type, "injected"))
            }
            (true, Fault::AccessDenied) => Some(json_error(
                400,
                "AccessDeniedException",
                "User is not authorized to perform: states:StartExecution",
            )),
            (true, Fault::Hang) => {
                tokio::time::sleep(Duration::from_secs(120)).await;
                return;
            }
        };
        let reply = match injected {
            Some(r) => r,
            None => match forward(&upstream, &head, &body).await {
                Some(r) => r,
                None => return,
            },
        };
        if client.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Sends one request upstream on a fresh connection and returns the response with its own length.
async fn forward(upstream: &str, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await.ok()?;
    let head = head.trim_end_matches("\r\n").to_string() + "\r\nConnection: close\r\n\r\n";
    up.write_all(head.as_bytes()).await.ok()?;
    up.write_all(body).await.ok()?;
    let mut response = Vec::new();
    up.read_to_end(&mut response).await.ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let body = &response[split..];
    let mut out = String::new();
    for line in head.trim_end().split("\r\n") {
        let name = line.split(':').next().unwrap_or("").trim().to_ascii_lowercase();
        if !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding" | "keep-alive") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    Some(bytes)
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`2026-11-22T20:01:13.412345Z`).
pub fn rfc3339_secs(s: &str) -> f64 {
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).unwrap_or_else(|| panic!("timestamp {s:?}"));
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let (hh, mm) = (num(11..13), num(14..16));
    let secs: f64 = s[17..].trim_end_matches('Z').parse().unwrap_or_else(|_| panic!("timestamp {s:?}"));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + hh * 3600 + mm * 60) as f64 + secs
}

/// Start instants (epoch seconds) of each round, from the `started_at` of its `probe` events.
pub fn round_starts(logs: &[Value]) -> Vec<(u64, f64)> {
    let mut starts: std::collections::BTreeMap<u64, f64> = Default::default();
    for l in event(logs, "probe") {
        if let (Some(round), Some(at)) = (l["round"].as_u64(), l["started_at"].as_str()) {
            starts.insert(round, rfc3339_secs(at));
        }
    }
    starts.into_iter().collect()
}

pub fn log_time(l: &Value) -> f64 {
    rfc3339_secs(l["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {l}")))
}

pub fn metric_sum(stdout: &[String], name: &str) -> f64 {
    stdout
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|d| d.get(name).cloned())
        .map(|v| match v {
            Value::Array(a) => a.iter().filter_map(Value::as_f64).sum(),
            other => other.as_f64().unwrap_or(0.0),
        })
        .sum()
}

/// The values of `name` in the order they were written (arrays flattened).
pub fn metric_values(stdout: &[String], name: &str) -> Vec<f64> {
    stdout
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|d| d.get(name).cloned())
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().filter_map(Value::as_f64).collect(),
            other => other.as_f64().into_iter().collect::<Vec<f64>>(),
        })
        .collect()
}

pub fn assert_all_emf(stdout: &[String]) {
    assert!(!stdout.is_empty(), "no EMF written");
    for line in stdout {
        nat_watchdog_aws::emf::validate(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}
