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

/// A moto server on 127.0.0.1 (its own port), killed by PID on drop.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Moto {
    pub async fn start() -> Moto {
        let bin = std::env::var_os("MOTO_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".venv/bin/moto_server"));
        assert!(bin.exists(), "moto_server not found at {} (run `make test`, which installs it)", bin.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto did not listen on port {port} within 10 s");
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

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    let reply: &[u8] = match mode {
                        0 => b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
                        2 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
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

impl Drop for LocalTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
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
    vec![
        ("AWS_ENDPOINT_URL", moto.url.clone()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("FAILOVER_STATE_MACHINE_ARN", arn.to_string()),
        ("AVAILABILITY_ZONE", az.to_string()),
        ("SUBNET_ID", subnet.to_string()),
    ]
}
