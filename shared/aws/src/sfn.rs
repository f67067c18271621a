//! The Step Functions failover backend: the run loop's [`FailoverPort`] as `StartExecution` of the
//! Failover state machine, under a deterministic execution name per AZ and incident (so that every
//! checker of one AZ starts one execution). On `ExecutionAlreadyExists` the execution of that name is
//! described: started after this outage began (less [`SAME_INCIDENT_SLACK`]), it is this incident's
//! and the incident is handled; started before, it belongs to an earlier incident of this AZ in the
//! same window (failover, fallback, new failure) and the next name (`-2`, `-3`, … up to
//! [`MAX_EXECUTION_NAMES`]) is tried. A failed description also moves on: an extra idempotent
//! Failover is cheap, a missed one is an outage.
//!
//! [`StepFunctions`] names the execution and builds its input; [`ExecutionStarter`] sends it
//! ([`SfnStarter`] over `aws-sdk-sfn`, a fake in tests). The SDK's own retries are off: the run loop
//! owns the retry budget so that it can be bounded by the invocation deadline and tested without AWS.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use nat_watchdog_core::{timefmt, FailoverInput};
use nat_watchdog_runtime::{FailoverPort, FailoverRequest, StartError, StartOutcome};

use crate::arn::StateMachineArn;

/// One StartExecution call's worth.
#[derive(Debug, Clone, PartialEq)]
pub struct StartExecutionRequest {
    pub state_machine_arn: String,
    pub name: String,
    pub input: FailoverInput,
}

impl StartExecutionRequest {
    pub fn input_json(&self) -> String {
        self.input.to_json()
    }
}

/// The capability to call StartExecution, and DescribeExecution of an execution it could not start
/// because the name exists.
pub trait ExecutionStarter: Send + Sync {
    fn start(&self, request: &StartExecutionRequest) -> impl Future<Output = Result<StartOutcome, StartError>> + Send;
    /// DescribeExecution of the execution `request.name` of `request.state_machine_arn`.
    fn describe(&self, request: &StartExecutionRequest) -> impl Future<Output = Result<ExistingExecution, StartError>> + Send;
}

/// What DescribeExecution tells about an execution whose name was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingExecution {
    pub started_at: SystemTime,
}

/// Names tried per incident: the base name and `-2` … `-5`. Five failovers of one AZ within one
/// naming window are not an AZ that recovers; past that the incident counts as handled.
pub const MAX_EXECUTION_NAMES: u32 = 5;

/// An execution of this name that started no earlier than this before the outage start is this
/// incident's. Checkers of one incident see its first bad round within a round of each other and
/// their first execution starts after detection (several rounds later), so the margin only absorbs
/// clock skew and a checker invocation that began during the Failover's own run. An earlier
/// incident's execution started before that incident recovered, was fallen back and failed again,
/// which takes longer. The window itself (`FAILOVER_DEDUP_WINDOW`) caps it.
pub const SAME_INCIDENT_SLACK: Duration = Duration::from_secs(2);

/// DescribeExecution gets at most this long, so that a start and a description fit in one attempt
/// of the trigger (2 s); no answer in time moves on to the next name.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_millis(800);

/// The ARN of execution `name` of the state machine `state_machine_arn` (same partition, region,
/// account; `execution` in place of `stateMachine`).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    match state_machine_arn.split_once(":stateMachine:") {
        Some((prefix, machine)) => format!("{prefix}:execution:{machine}:{name}"),
        None => format!("{state_machine_arn}:{name}"),
    }
}

/// The `candidate`-th name of an incident: `base` for 0, then `base-2`, `base-3`, ….
pub fn candidate_name(base: &str, candidate: u32) -> String {
    match candidate {
        0 => base.to_string(),
        n => format!("{base}-{}", n + 1),
    }
}

/// `nat-failover-<az>-<UTC start of the dedup window holding the outage start>`.
///
/// Every checker of one AZ (several subnets, overlapping invocations) that sees the same outage
/// derives the same name, so Step Functions itself deduplicates: the second caller gets
/// `ExecutionAlreadyExists`. Outage starts that straddle a window boundary get two names; the
/// Failover state machine is idempotent, so that costs a second no-op execution, never a wrong route.
pub fn execution_name(availability_zone: &str, outage_started: SystemTime, window: Duration) -> String {
    let secs = outage_started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let window = window.as_secs().max(1);
    let bucket = UNIX_EPOCH + Duration::from_secs(secs - secs % window);
    let az: String = availability_zone
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(48)
        .collect();
    format!("nat-failover-{az}-{}", timefmt::compact(bucket))
}

/// The failover port over Step Functions.
#[derive(Debug, Clone)]
pub struct StepFunctions<S> {
    starter: S,
    state_machine_arn: StateMachineArn,
    dedup_window: Duration,
}

impl<S: ExecutionStarter> StepFunctions<S> {
    /// `dedup_window`: `FAILOVER_DEDUP_WINDOW`, the span of outage starts that share one name.
    pub fn new(starter: S, state_machine_arn: StateMachineArn, dedup_window: Duration) -> Self {
        StepFunctions { starter, state_machine_arn, dedup_window }
    }

    pub fn starter(&self) -> &S {
        &self.starter
    }

    /// The StartExecution call for `request` under its first name.
    pub fn start_execution(&self, request: &FailoverRequest) -> StartExecutionRequest {
        self.start_execution_as(request, 0)
    }

    /// The StartExecution call for `request` under its `candidate`-th name.
    pub fn start_execution_as(&self, request: &FailoverRequest, candidate: u32) -> StartExecutionRequest {
        StartExecutionRequest {
            state_machine_arn: self.state_machine_arn.as_str().to_string(),
            name: self.name(request, candidate),
            input: FailoverInput::from_incident(&request.availability_zone, &request.subnet_id, &request.incident),
        }
    }

    /// Whether the existing execution `sent.name` is this incident's (see [`SAME_INCIDENT_SLACK`]).
    async fn held_by_this_incident(&self, request: &FailoverRequest, sent: &StartExecutionRequest) -> bool {
        let slack = SAME_INCIDENT_SLACK.min(self.dedup_window);
        let since = request.incident.outage_started_at.checked_sub(slack).unwrap_or(UNIX_EPOCH);
        let described = match tokio::time::timeout(DESCRIBE_TIMEOUT, self.starter.describe(sent)).await {
            Ok(described) => described.map_err(|error| error.to_string()),
            Err(_) => Err("no answer in time".to_string()),
        };
        match described {
            Ok(ExistingExecution { started_at: started }) if started >= since => true,
            Ok(ExistingExecution { started_at: started }) => {
                let before = since.duration_since(started).unwrap_or_default() + slack;
                tracing::info!(event = "failover_name_earlier", execution_name = %sent.name, started_before_outage_ms = before.as_millis() as u64, "the execution of this name belongs to an earlier incident");
                false
            }
            Err(error) => {
                tracing::warn!(event = "failover_describe_failed", execution_name = %sent.name, error = %error, "DescribeExecution failed; trying the next name");
                false
            }
        }
    }
}

impl<S: ExecutionStarter> FailoverPort for StepFunctions<S> {
    fn name(&self, request: &FailoverRequest, candidate: u32) -> String {
        let base = execution_name(&request.availability_zone, request.incident.outage_started_at, self.dedup_window);
        candidate_name(&base, candidate)
    }

    fn candidates(&self) -> u32 {
        MAX_EXECUTION_NAMES
    }

    async fn fail_over(&self, request: &FailoverRequest, candidate: u32) -> Result<StartOutcome, StartError> {
        let sent = self.start_execution_as(request, candidate);
        match self.starter.start(&sent).await? {
            StartOutcome::AlreadyExists if !self.held_by_this_incident(request, &sent).await => Ok(StartOutcome::NameTaken),
            outcome => Ok(outcome),
        }
    }
}

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

impl ExecutionStarter for SfnStarter {
    async fn start(&self, request: &StartExecutionRequest) -> Result<StartOutcome, StartError> {
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

    async fn describe(&self, request: &StartExecutionRequest) -> Result<ExistingExecution, StartError> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn(&request.state_machine_arn, &request.name))
            .send()
            .await
            .map_err(classify_describe)?;
        let started_at = SystemTime::try_from(*out.start_date()).map_err(|_| StartError::Rejected("DescribeExecution: startDate out of range".into()))?;
        Ok(ExistingExecution { started_at })
    }
}

/// A DescribeExecution error as the trigger's vocabulary (every one of them moves on to the next name).
fn classify_describe(e: SdkError<DescribeExecutionError>) -> StartError {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let err = se.into_err();
            StartError::Rejected(format!("{} (HTTP {status})", err.code().unwrap_or("Unknown")))
        }
        SdkError::TimeoutError(_) => StartError::Unavailable("attempt timed out".into()),
        other => StartError::Unavailable(other.to_string()),
    }
}

/// Maps an SDK error to the run loop's vocabulary: done, retry, or give up.
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
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::error::{ExecutionAlreadyExists, StateMachineDoesNotExist};
    use aws_smithy_mocks::{mock, mock_client};
    use nat_watchdog_core::{Incident, Rule};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_are_shared_within_a_window_and_valid_for_step_functions() {
        let w = Duration::from_secs(60);
        // 2026-11-22T20:01:13Z and 20:01:59Z share the 20:01:00 window; 20:02:00 does not.
        let a = execution_name("us-east-1a", at(1_795_377_673), w);
        let b = execution_name("us-east-1a", at(1_795_377_719), w);
        let c = execution_name("us-east-1a", at(1_795_377_720), w);
        assert_eq!(a, "nat-failover-us-east-1a-20261122T200100Z");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, execution_name("us-east-1b", at(1_795_377_673), w), "AZs never share a name");
        let long = execution_name(&"x".repeat(100), at(1_795_377_673), w);
        for name in [a, long] {
            assert!(name.len() <= 80, "{name}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{name}");
        }
    }

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:Failover";

    fn failover_request() -> FailoverRequest {
        FailoverRequest {
            availability_zone: "us-east-1a".into(),
            subnet_id: "subnet-1".into(),
            incident: Incident {
                round: 3,
                detected_at: at(1_795_377_673),
                outage_started_at: at(1_795_377_672),
                rule: Rule::Consecutive,
                consecutive_bad_rounds: 3,
                bad_rounds_in_window: 3,
                window_rounds: 30,
                failed_targets: vec![],
            },
        }
    }

    fn request() -> StartExecutionRequest {
        let port = StepFunctions::new((), StateMachineArn::parse(ARN).unwrap(), Duration::from_secs(60));
        port.start_execution(&failover_request())
    }

    impl ExecutionStarter for () {
        async fn start(&self, _: &StartExecutionRequest) -> Result<StartOutcome, StartError> {
            Err(StartError::Rejected("unit starter".into()))
        }
        async fn describe(&self, _: &StartExecutionRequest) -> Result<ExistingExecution, StartError> {
            Err(StartError::Rejected("unit starter".into()))
        }
    }

    #[test]
    fn an_incident_becomes_a_named_execution_of_the_configured_machine() {
        let r = request();
        assert_eq!(r.state_machine_arn, ARN);
        assert_eq!(r.name, "nat-failover-us-east-1a-20261122T200100Z");
        assert_eq!(r.input, FailoverInput::from_incident("us-east-1a", "subnet-1", &failover_request().incident));
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
        let port = StepFunctions::new(SfnStarter::new(client), StateMachineArn::parse(ARN).unwrap(), Duration::from_secs(60));
        let out = port.fail_over(&failover_request(), 0).await;
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

    #[test]
    fn later_names_carry_a_suffix_and_stay_within_eighty_characters() {
        let base = execution_name(&"x".repeat(100), at(1_795_377_673), Duration::from_secs(60));
        assert_eq!(candidate_name("nat-failover-a-20261122T200100Z", 0), "nat-failover-a-20261122T200100Z");
        assert_eq!(candidate_name("nat-failover-a-20261122T200100Z", 1), "nat-failover-a-20261122T200100Z-2");
        let last = candidate_name(&base, MAX_EXECUTION_NAMES - 1);
        assert!(last.ends_with("-5") && last.len() <= 80, "{last} ({} chars)", last.len());
        assert_eq!(
            execution_arn(ARN, "n-2"),
            "arn:aws:states:us-east-1:123456789012:execution:Failover:n-2"
        );
    }

    fn existing_since(secs: i64) -> (aws_smithy_mocks::Rule, aws_smithy_mocks::Rule) {
        let start = mock!(aws_sdk_sfn::Client::start_execution)
            .then_error(|| StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().message("exists").build()));
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .match_requests(|r| r.execution_arn() == Some("arn:aws:states:us-east-1:123456789012:execution:Failover:nat-failover-us-east-1a-20261122T200100Z-2"))
            .then_output(move || {
                DescribeExecutionOutput::builder()
                    .execution_arn("arn:exec:old")
                    .state_machine_arn(ARN)
                    .status(aws_sdk_sfn::types::ExecutionStatus::Succeeded)
                    .start_date(aws_sdk_sfn::primitives::DateTime::from_secs(secs))
                    .build()
                    .unwrap()
            });
        (start, describe)
    }

    #[tokio::test]
    async fn an_existing_name_started_after_the_outage_began_is_this_incident() {
        // The outage began at 1_795_377_672; another checker started the execution 1.5 s later.
        let (start, describe) = existing_since(1_795_377_673);
        let client = mock_client!(aws_sdk_sfn, [&start, &describe]);
        let port = StepFunctions::new(SfnStarter::new(client), StateMachineArn::parse(ARN).unwrap(), Duration::from_secs(60));
        assert_eq!(port.fail_over(&failover_request(), 1).await, Ok(StartOutcome::AlreadyExists));
        assert_eq!(describe.num_calls(), 1, "described by its execution ARN");
    }

    #[tokio::test]
    async fn an_existing_name_started_before_the_outage_is_an_earlier_incident() {
        // Started 12 s before this outage: the AZ failed over, fell back and failed again.
        let (start, describe) = existing_since(1_795_377_660);
        let client = mock_client!(aws_sdk_sfn, [&start, &describe]);
        let port = StepFunctions::new(SfnStarter::new(client), StateMachineArn::parse(ARN).unwrap(), Duration::from_secs(60));
        assert_eq!(port.fail_over(&failover_request(), 1).await, Ok(StartOutcome::NameTaken));
    }

    #[tokio::test]
    async fn a_denied_description_moves_on_to_the_next_name() {
        let start = mock!(aws_sdk_sfn::Client::start_execution)
            .then_error(|| StartExecutionError::ExecutionAlreadyExists(ExecutionAlreadyExists::builder().message("exists").build()));
        let describe = mock!(aws_sdk_sfn::Client::describe_execution).then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                aws_smithy_types::body::SdkBody::from(r#"{"__type":"AccessDeniedException","message":"not authorized to perform: states:DescribeExecution"}"#),
            )
        });
        let client = mock_client!(aws_sdk_sfn, aws_smithy_mocks::RuleMode::MatchAny, [&start, &describe]);
        let starter = SfnStarter::new(client);
        let err = starter.describe(&request()).await.unwrap_err();
        assert!(err.to_string().contains("AccessDeniedException"), "{err}");
        let port = StepFunctions::new(starter, StateMachineArn::parse(ARN).unwrap(), Duration::from_secs(60));
        assert_eq!(port.fail_over(&failover_request(), 0).await, Ok(StartOutcome::NameTaken));
    }
}
