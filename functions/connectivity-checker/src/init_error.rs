//! Reports a start-up failure to the Lambda Runtime API (`/runtime/init/error`), so the failed
//! invocation carries `Runtime.ConfigError` and the message naming the variable, instead of a bare
//! "exited with status 2". `lambda_runtime` only does this for its own SnapStart hooks, so the report
//! is sent the way it sends its own: through `lambda_runtime_api_client` (the same HTTP client, the
//! same joining of request paths to `AWS_LAMBDA_RUNTIME_API`, path prefixes such as cargo-lambda's
//! `127.0.0.1:9000/.rt` included) with `lambda_runtime`'s `Diagnostic` as the body.

use std::time::Duration;

use http::{Method, Uri};
use lambda_runtime::Diagnostic;
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{build_request, PooledClient};

/// The Runtime API's path for errors before the first invocation.
const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("AWS_LAMBDA_RUNTIME_API={0:?} is not host:port[/prefix]: {1}")]
    Address(String, http::uri::InvalidUri),
    #[error("cannot build the request: {0}")]
    Request(#[from] http::Error),
    #[error("cannot encode the error: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("runtime API unreachable: {0}")]
    Send(lambda_runtime_api_client::BoxError),
    #[error("runtime API answered HTTP {0}")]
    Status(u16),
    #[error("runtime API did not answer within 2 s")]
    TimedOut,
}

/// The Runtime API's base URI from `AWS_LAMBDA_RUNTIME_API`: `host:port` with an optional path
/// prefix, plain HTTP, as `lambda_runtime_api_client` reads it.
pub fn base_uri(runtime_api: &str) -> Result<Uri, ReportError> {
    let api = runtime_api.trim();
    let full = if api.contains("://") { api.to_string() } else { format!("http://{api}") };
    full.parse().map_err(|e| ReportError::Address(runtime_api.to_string(), e))
}

pub async fn report(runtime_api: &str, error_type: &str, message: &str) -> Result<(), ReportError> {
    let client = PooledClient::builder().with_endpoint(base_uri(runtime_api)?).build();
    let diagnostic = Diagnostic { error_type: error_type.to_string(), error_message: message.to_string() };
    let request = build_request()
        .method(Method::POST)
        .uri(INIT_ERROR_PATH)
        .header("content-type", "application/json")
        .header("lambda-runtime-function-error-type", error_type)
        .body(Body::from(serde_json::to_vec(&diagnostic)?))?;
    let response = tokio::time::timeout(Duration::from_secs(2), client.call(request))
        .await
        .map_err(|_| ReportError::TimedOut)?
        .map_err(ReportError::Send)?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(ReportError::Status(response.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_api_address_keeps_its_path_prefix() {
        assert_eq!(base_uri("127.0.0.1:9001").unwrap(), "http://127.0.0.1:9001/");
        assert_eq!(base_uri("127.0.0.1:9000/.rt").unwrap().path(), "/.rt");
        assert_eq!(base_uri("http://localhost:9001/foo").unwrap().path(), "/foo");
        assert!(matches!(base_uri("not a uri"), Err(ReportError::Address(..))));
    }
}
