//! The moto server of the Rust integration tests, shared by the crates' test supports through
//! `#[path]` (one launcher, as tests/support/moto_env.py is for the Python tests): moto_server from
//! MOTO_SERVER_BIN (or the project venv) on 127.0.0.1 and a free port, run through
//! tests/support/moto_aws_compat.py with moto_server's own interpreter when it has one beside it, so
//! the state machines see AWS's error names and `$$.Execution.StartTime`. Killed by PID on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct MotoServer {
    child: Child,
    #[allow(dead_code)] // read by some of the crates that include this file
    pub port: u16,
    pub url: String,
}

impl MotoServer {
    /// Starts moto and waits until it listens (at most 10 s).
    pub async fn start(workspace_root: &Path) -> MotoServer {
        let bin = std::env::var_os("MOTO_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root.join(".venv/bin/moto_server"));
        assert!(bin.exists(), "moto_server not found at {} (run `make test`, which installs it)", bin.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let python = bin.with_file_name("python");
        let mut command = if python.exists() {
            let mut c = Command::new(&python);
            c.arg(workspace_root.join("tests/support/moto_aws_compat.py"));
            c
        } else {
            Command::new(&bin)
        };
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // moto's aws-sdk task integrations call back into this server on MOTO_PORT.
            .env("MOTO_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = MotoServer { child, port, url: format!("http://127.0.0.1:{port}") };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto did not listen on port {port} within 10 s");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
