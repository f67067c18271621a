//! Reports a start-up failure to the Lambda Runtime API (`/runtime/init/error`), so the failed
//! invocation carries `Runtime.ConfigError` and the message naming the variable, instead of a bare
//! "exited with status 2". `lambda_runtime` only does this for its own SnapStart hooks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub async fn report(runtime_api: &str, error_type: &str, message: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type, "stackTrace": [] }).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {runtime_api}\r\nContent-Type: application/json\r\n\
         Lambda-Runtime-Function-Error-Type: {error_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(runtime_api).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head).await?;
        let status_ok = head[..n].starts_with(b"HTTP/1.1 2") || head[..n].starts_with(b"HTTP/1.0 2");
        if status_ok {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("runtime API answered {:?}", String::from_utf8_lossy(&head[..n]))))
        }
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("runtime API did not answer within 2 s")))
}
