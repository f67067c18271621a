//! The Step Functions adapter: the engine's `FailoverStarter` over `aws-sdk-sfn`.
//!
//! The SDK's own retries are off: the engine owns the retry budget so that it can be bounded by the
//! invocation deadline and tested without AWS.

use std::time::Duration;

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use nat_watchdog_engine::{FailoverRequest, FailoverStarter, StartError, StartOutcome};

#[derive(Clone, Debug)]
pub struct SfnStarter {
    client: aws_sdk_sfn::Client,
}

impl SfnStarter {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        SfnStarter { client }
    }

    /// Reads region, credentials and `AWS_ENDPOINT_URL` from the environment as the SDK always does.
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_attempt_timeout(Duration::from_secs(2))
                    .build(),
            )
            .load()
            .await;
        SfnStarter::new(aws_sdk_sfn::Client::new(&shared))
    }
}

impl FailoverStarter for SfnStarter {
    async fn start(&self, request: &FailoverRequest) -> Result<StartOutcome, StartError> {
        let sent = self
            .client
            .start_execution()
            .state_machine_arn(&request.state_machine_arn)
            .name(&request.name)
            .input(request.input_json())
            .send()
            .await;
        match sent {
            Ok(out) => Ok(StartOutcome::Started { execution_arn: out.execution_arn().to_string() }),
            Err(e) => classify(e),
        }
    }
}

/// Maps an SDK error to the engine's vocabulary: done, retry, or give up.
pub fn classify(e: SdkError<StartExecutionError>) -> Result<StartOutcome, StartError> {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let err = se.into_err();
            let code = match &err {
                StartExecutionError::ExecutionAlreadyExists(_) => return Ok(StartOutcome::AlreadyExists),
                // Too many open executions of this machine: transient from our point of view.
                StartExecutionError::ExecutionLimitExceeded(_) => "ExecutionLimitExceeded",
                StartExecutionError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
                StartExecutionError::StateMachineDeleting(_) => "StateMachineDeleting",
                StartExecutionError::InvalidArn(_) => "InvalidArn",
                StartExecutionError::InvalidName(_) => "InvalidName",
                StartExecutionError::InvalidExecutionInput(_) => "InvalidExecutionInput",
                StartExecutionError::ValidationException(_) => "ValidationException",
                _ => err.code().unwrap_or("Unknown"),
            }
            .to_string();
            let text = match err.message() {
                Some(m) => format!("{code} (HTTP {status}): {m}"),
                None => format!("{code} (HTTP {status})"),
            };
            if status == 429 || code.contains("Throttl") || code == "TooManyRequestsException" || code == "ExecutionLimitExceeded" {
                Err(StartError::Throttled(text))
            } else if (500..600).contains(&status) || code.contains("ServiceUnavailable") || code.contains("InternalFailure") {
                Err(StartError::Unavailable(text))
            } else {
                Err(StartError::Rejected(text))
            }
        }
        SdkError::TimeoutError(_) => Err(StartError::Unavailable("attempt timed out".into())),
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() { "connect timeout" } else if d.is_io() { "connection failed" } else { "request not sent" };
            Err(StartError::Unavailable(format!("{what}: {:?}", d.as_connector_error().map(|c| c.to_string()))))
        }
        SdkError::ResponseError(r) => Err(StartError::Unavailable(format!("unreadable response (HTTP {})", r.raw().status().as_u16()))),
        SdkError::ConstructionFailure(_) => Err(StartError::Rejected("request could not be built".into())),
        other => Err(StartError::Unavailable(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::error::{ExecutionAlreadyExists, StateMachineDoesNotExist};
    use aws_smithy_mocks::{mock, mock_client};
    use nat_watchdog_engine::failover::{FailoverInput, FailoverRequest};
    use nat_watchdog_engine::verdict::Rule;

    fn request() -> FailoverRequest {
        FailoverRequest {
            state_machine_arn: "arn:aws:states:us-east-1:123456789012:stateMachine:Failover".into(),
            name: "nat-failover-us-east-1a-20261122T200100Z".into(),
            input: FailoverInput {
                availability_zone: "us-east-1a".into(),
                subnet_id: "subnet-1".into(),
                detected_at: "2026-11-22T20:01:13.412Z".into(),
                outage_started_at: "2026-11-22T20:01:12.000Z".into(),
                failed_targets: vec![],
                consecutive_bad_rounds: 3,
                rule: Rule::Consecutive,
                bad_rounds_in_window: 3,
                window_rounds: 30,
                checker: "t".into(),
            },
        }
    }

    #[tokio::test]
    async fn started_execution_returns_its_arn_and_sends_name_and_input() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(|r| {
                r.name() == Some("nat-failover-us-east-1a-20261122T200100Z")
                    && r.input().is_some_and(|i| i.contains(r#""availabilityZone":"us-east-1a""#))
            })
            .then_output(|| StartExecutionOutput::builder().execution_arn("arn:exec:1").start_date(aws_sdk_sfn::primitives::DateTime::from_secs(0)).build().unwrap());
        let client = mock_client!(aws_sdk_sfn, [&rule]);
        let out = SfnStarter::new(client).start(&request()).await;
        assert_eq!(out, Ok(StartOutcome::Started { execution_arn: "arn:exec:1".into() }));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn execution_already_exists_means_done() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution)
            .then_error(|| StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().message("exists").build()));
        let client = mock_client!(aws_sdk_sfn, [&rule]);
        assert_eq!(SfnStarter::new(client).start(&request()).await, Ok(StartOutcome::AlreadyExists));
    }

    #[tokio::test]
    async fn a_deleted_state_machine_is_rejected_for_good() {
        let rule = mock!(aws_sdk_sfn::Client::start_execution)
            .then_error(|| StartExecutionError::StateMachineDoesNotExist(StateMachineDoesNotExist::builder().message("gone").build()));
        let client = mock_client!(aws_sdk_sfn, [&rule]);
        let out = SfnStarter::new(client).start(&request()).await;
        assert!(matches!(&out, Err(StartError::Rejected(m)) if m.contains("StateMachineDoesNotExist")), "{out:?}");
    }

    fn service_error(status: u16, code: &str) -> SdkError<StartExecutionError> {
        let meta = aws_sdk_sfn::error::ErrorMetadata::builder().code(code).message("m").build();
        let raw = aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(StartExecutionError::generic(meta), raw)
    }

    #[test]
    fn service_errors_are_classified_for_retry() {
        for (status, code, want) in [
            (400, "ThrottlingException", "throttled"),
            (429, "Unknown", "throttled"),
            (500, "InternalFailure", "unavailable"),
            (503, "ServiceUnavailable", "unavailable"),
            (400, "AccessDeniedException", "rejected"),
            (403, "UnrecognizedClientException", "rejected"),
        ] {
            let got = match classify(service_error(status, code)) {
                Err(StartError::Throttled(_)) => "throttled",
                Err(StartError::Unavailable(_)) => "unavailable",
                Err(StartError::Rejected(m)) => {
                    assert!(m.contains(code), "{m}");
                    "rejected"
                }
                other => panic!("HTTP {status} {code}: {other:?}"),
            };
            assert_eq!(got, want, "HTTP {status} {code}");
        }
    }

    #[test]
    fn a_timed_out_attempt_is_retryable() {
        let e: SdkError<StartExecutionError> = SdkError::timeout_error("attempt timeout");
        assert!(matches!(classify(e), Err(StartError::Unavailable(_))));
    }
}
