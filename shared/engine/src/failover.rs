//! The failover trigger: what to start, under which deterministic name, with bounded retries.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use crate::probe::Cause;
use crate::timefmt;
use crate::verdict::Rule;

/// The execution input the Failover state machine receives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailoverInput {
    pub availability_zone: String,
    pub subnet_id: String,
    pub detected_at: String,
    pub outage_started_at: String,
    pub failed_targets: Vec<FailedTarget>,
    pub consecutive_bad_rounds: u32,
    /// Which rule fired: `consecutive` (hard failure) or `window` (a path failing part of the time).
    pub rule: Rule,
    /// Bad rounds among the last `windowRounds` rounds seen since the verdict last turned healthy
    /// (both 0 when the windowed rule is off).
    pub bad_rounds_in_window: u32,
    pub window_rounds: u32,
    pub checker: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTarget {
    pub url: String,
    pub cause: Cause,
}

/// One StartExecution call's worth.
#[derive(Debug, Clone, PartialEq)]
pub struct FailoverRequest {
    pub state_machine_arn: String,
    pub name: String,
    pub input: FailoverInput,
}

impl FailoverRequest {
    pub fn input_json(&self) -> String {
        serde_json::to_string(&self.input).unwrap_or_else(|_| "{}".to_string())
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

/// What StartExecution answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started { execution_arn: String },
    /// Someone (another subnet's checker, an overlapping invocation) already started this incident.
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("rejected: {0}")]
    Rejected(String),
}

impl StartError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, StartError::Rejected(_))
    }
}

/// The capability to start a Failover execution.
pub trait FailoverStarter: Send + Sync {
    fn start(&self, request: &FailoverRequest) -> impl Future<Output = Result<StartOutcome, StartError>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 200/400/800 ms (±50 % jitter) apart, 2 s each: at most ~9.5 s, and always
    /// clipped to the run's hard stop.
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, first_backoff: Duration::from_millis(200), attempt_timeout: Duration::from_secs(2) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    Started { execution_arn: String, attempts: u32 },
    AlreadyExists { attempts: u32 },
    Failed { error: StartError, attempts: u32 },
}

impl TriggerOutcome {
    pub fn attempts(&self) -> u32 {
        match self {
            TriggerOutcome::Started { attempts, .. }
            | TriggerOutcome::AlreadyExists { attempts }
            | TriggerOutcome::Failed { attempts, .. } => *attempts,
        }
    }
}

/// The trigger ends this long before `give_up_at`, so that its outcome is logged and counted before
/// the caller's hard stop (which fires at `give_up_at`) wins the race and drops it.
const GIVE_UP_MARGIN: Duration = Duration::from_millis(100);

/// Calls StartExecution until it succeeds, is answered "already exists", is rejected for good, runs
/// out of attempts, or would pass `give_up_at`. Never panics; ends at least `GIVE_UP_MARGIN` before
/// `give_up_at`.
pub async fn trigger<F: FailoverStarter>(
    starter: &F,
    request: &FailoverRequest,
    policy: RetryPolicy,
    give_up_at: Instant,
) -> TriggerOutcome {
    let mut backoff = policy.first_backoff;
    let mut attempts = 0;
    loop {
        let remaining = give_up_at.saturating_duration_since(Instant::now()).saturating_sub(GIVE_UP_MARGIN);
        if remaining < Duration::from_millis(50) {
            let error = StartError::TimedOut(Duration::ZERO);
            tracing::error!(event = "failover_failed", execution_name = %request.name, attempts, error = "no time left before the run ends", "failover gave up");
            return TriggerOutcome::Failed { error, attempts };
        }
        attempts += 1;
        let limit = policy.attempt_timeout.min(remaining);
        let result = match tokio::time::timeout(limit, starter.start(request)).await {
            Ok(r) => r,
            Err(_) => Err(StartError::TimedOut(limit)),
        };
        match result {
            Ok(StartOutcome::Started { execution_arn }) => {
                tracing::info!(event = "failover_started", execution_name = %request.name, execution_arn = %execution_arn, attempts, "Failover execution started");
                return TriggerOutcome::Started { execution_arn, attempts };
            }
            Ok(StartOutcome::AlreadyExists) => {
                tracing::info!(event = "failover_exists", execution_name = %request.name, attempts, "Failover execution for this incident already exists");
                return TriggerOutcome::AlreadyExists { attempts };
            }
            Err(error) if error.is_retryable() && attempts < policy.max_attempts => {
                let pause = jitter(backoff);
                if Instant::now() + pause + Duration::from_millis(50) + GIVE_UP_MARGIN >= give_up_at {
                    tracing::error!(event = "failover_failed", execution_name = %request.name, attempts, error = %error, "failover gave up: no time left to retry");
                    return TriggerOutcome::Failed { error, attempts };
                }
                tracing::warn!(event = "failover_retry", execution_name = %request.name, attempt = attempts, error = %error, retry_in_ms = pause.as_millis() as u64, "StartExecution failed, retrying");
                tokio::time::sleep(pause).await;
                backoff = backoff.saturating_mul(2);
            }
            Err(error) => {
                tracing::error!(event = "failover_failed", execution_name = %request.name, attempts, error = %error, "failover gave up");
                return TriggerOutcome::Failed { error, attempts };
            }
        }
    }
}

/// Uniform in [base/2, base*3/2): checkers of one AZ that were throttled together retry apart.
fn jitter(base: Duration) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(base.as_nanos() as u64);
    let r = (h.finish() % 1000) as f64 / 1000.0;
    base.mul_f64(0.5 + r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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

    #[test]
    fn input_has_the_contract_fields() {
        let req = FailoverRequest {
            state_machine_arn: "arn".into(),
            name: "n".into(),
            input: FailoverInput {
                availability_zone: "us-east-1a".into(),
                subnet_id: "subnet-1".into(),
                detected_at: "2026-11-22T20:01:13.412Z".into(),
                outage_started_at: "2026-11-22T20:01:12.000Z".into(),
                failed_targets: vec![FailedTarget { url: "https://a.example/".into(), cause: Cause::ConnectTimeout }],
                consecutive_bad_rounds: 3,
                rule: Rule::Consecutive,
                bad_rounds_in_window: 3,
                window_rounds: 12,
                checker: "connectivity-checker/0.1.0".into(),
            },
        };
        assert_eq!(
            req.input_json(),
            r#"{"availabilityZone":"us-east-1a","subnetId":"subnet-1","detectedAt":"2026-11-22T20:01:13.412Z","outageStartedAt":"2026-11-22T20:01:12.000Z","failedTargets":[{"url":"https://a.example/","cause":"connect_timeout"}],"consecutiveBadRounds":3,"rule":"consecutive","badRoundsInWindow":3,"windowRounds":12,"checker":"connectivity-checker/0.1.0"}"#
        );
    }

    /// Answers from a script, one per call; records call instants.
    struct Scripted {
        answers: Mutex<Vec<Result<StartOutcome, StartError>>>,
        hang: bool,
        calls: Mutex<Vec<Instant>>,
    }

    impl Scripted {
        fn new(mut answers: Vec<Result<StartOutcome, StartError>>) -> Self {
            answers.reverse();
            Scripted { answers: Mutex::new(answers), hang: false, calls: Mutex::new(vec![]) }
        }
        fn calls(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    impl FailoverStarter for Scripted {
        async fn start(&self, _: &FailoverRequest) -> Result<StartOutcome, StartError> {
            self.calls.lock().unwrap().push(Instant::now());
            if self.hang {
                std::future::pending::<()>().await;
            }
            let next = self.answers.lock().unwrap().pop();
            next.unwrap_or(Err(StartError::Unavailable("script exhausted".into())))
        }
    }

    fn request() -> FailoverRequest {
        FailoverRequest {
            state_machine_arn: "arn".into(),
            name: "nat-failover-az-x".into(),
            input: FailoverInput {
                availability_zone: "az".into(),
                subnet_id: "s".into(),
                detected_at: String::new(),
                outage_started_at: String::new(),
                failed_targets: vec![],
                consecutive_bad_rounds: 3,
                rule: Rule::Consecutive,
                bad_rounds_in_window: 3,
                window_rounds: 30,
                checker: String::new(),
            },
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_then_success_is_retried_with_backoff() {
        let s = Scripted::new(vec![
            Err(StartError::Throttled("ThrottlingException".into())),
            Err(StartError::Unavailable("HTTP 503".into())),
            Ok(StartOutcome::Started { execution_arn: "arn:exec".into() }),
        ]);
        let out = trigger(&s, &request(), RetryPolicy::default(), far()).await;
        assert_eq!(out, TriggerOutcome::Started { execution_arn: "arn:exec".into(), attempts: 3 });
        let calls = s.calls.lock().unwrap().clone();
        let gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps[0] >= Duration::from_millis(100) && gaps[0] < Duration::from_millis(300), "{gaps:?}");
        assert!(gaps[1] >= Duration::from_millis(200) && gaps[1] < Duration::from_millis(600), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn already_exists_counts_as_done_without_retry() {
        let s = Scripted::new(vec![Ok(StartOutcome::AlreadyExists)]);
        let out = trigger(&s, &request(), RetryPolicy::default(), far()).await;
        assert_eq!(out, TriggerOutcome::AlreadyExists { attempts: 1 });
        assert_eq!(s.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn access_denied_is_not_retried() {
        let s = Scripted::new(vec![Err(StartError::Rejected("AccessDeniedException".into()))]);
        let out = trigger(&s, &request(), RetryPolicy::default(), far()).await;
        assert!(matches!(out, TriggerOutcome::Failed { error: StartError::Rejected(_), attempts: 1 }), "{out:?}");
        assert_eq!(s.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_errors_stop_after_the_attempt_budget() {
        let s = Scripted::new(vec![]);
        let out = trigger(&s, &request(), RetryPolicy::default(), far()).await;
        assert!(matches!(out, TriggerOutcome::Failed { error: StartError::Unavailable(_), attempts: 4 }), "{out:?}");
        assert_eq!(s.calls(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_endpoint_never_outlives_the_give_up_instant() {
        let mut s = Scripted::new(vec![]);
        s.hang = true;
        let start = Instant::now();
        let give_up = start + Duration::from_millis(3000);
        let out = trigger(&s, &request(), RetryPolicy::default(), give_up).await;
        assert!(matches!(out, TriggerOutcome::Failed { .. }), "{out:?}");
        assert!(Instant::now() + GIVE_UP_MARGIN <= give_up, "ran {:?} past the limit", Instant::now() - give_up);
        assert!(s.calls() >= 1 && s.calls() <= 2, "calls {}", s.calls());
    }
}
