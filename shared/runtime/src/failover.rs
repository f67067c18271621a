//! The failover port and its trigger: when a watch turns UNHEALTHY, ask the backend to fail this AZ
//! over for the incident, with bounded retries clipped to the run's hard stop.
//!
//! The port speaks of incidents, not of state machines: the Step Functions adapter
//! (`nat_watchdog_aws::sfn`) turns a request into an execution name and input; a test fake records it.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use nat_watchdog_core::{Incident, WatchEvent};
use tokio::time::Instant;

use crate::driver::{Done, Event, Observer, Reaction, EGRESS};

/// "Fail this AZ over for this incident."
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverRequest {
    pub availability_zone: String,
    pub subnet_id: String,
    pub incident: Incident,
}

/// The capability to fail an AZ over. Idempotent per incident: asking twice for one incident (two
/// checkers of one AZ, overlapping invocations) must start one failover, the second answered
/// [`StartOutcome::AlreadyExists`].
///
/// A backend may have several names for one incident (`candidate` 0, 1, …, below [`Self::candidates`]):
/// when the first is held by an earlier incident's failover (the AZ failed, was failed over, fell back
/// and failed again within one naming window) it answers [`StartOutcome::NameTaken`] and the trigger
/// asks for the next one.
pub trait FailoverPort: Send + Sync {
    /// The backend's stable name for this incident's failover under `candidate` (an execution name), for logs.
    fn name(&self, request: &FailoverRequest, candidate: u32) -> String;
    /// How many names the trigger may try for one incident (at least 1).
    fn candidates(&self) -> u32 {
        1
    }
    fn fail_over(&self, request: &FailoverRequest, candidate: u32) -> impl Future<Output = Result<StartOutcome, StartError>> + Send;
}

/// What the backend answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started { execution_arn: String },
    /// Someone (another subnet's checker, an overlapping invocation) already started this incident.
    AlreadyExists,
    /// This candidate name is held by an earlier incident's failover, or by one whose incident could
    /// not be told: try the next name (an extra idempotent Failover is cheap; a missed one is an outage).
    NameTaken,
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

/// Asks the port until it succeeds, is answered "already exists", is rejected for good, runs
/// out of attempts, or would pass `give_up_at`. A name taken by an earlier incident moves on to the
/// port's next name at once (no backoff, not counted as a failed attempt; at most
/// [`FailoverPort::candidates`] names); errors are retried on the same name. Never panics; ends at
/// least `GIVE_UP_MARGIN` before `give_up_at`.
pub async fn trigger<F: FailoverPort + ?Sized>(
    port: &F,
    request: &FailoverRequest,
    policy: RetryPolicy,
    give_up_at: Instant,
) -> TriggerOutcome {
    let mut backoff = policy.first_backoff;
    let mut attempts = 0;
    let mut failed_attempts = 0;
    let mut candidate = 0;
    let candidates = port.candidates().max(1);
    loop {
        let name = port.name(request, candidate);
        let remaining = give_up_at.saturating_duration_since(Instant::now()).saturating_sub(GIVE_UP_MARGIN);
        if remaining < Duration::from_millis(50) {
            let error = StartError::TimedOut(Duration::ZERO);
            tracing::error!(event = "failover_failed", execution_name = %name, attempts, error = "no time left before the run ends", "failover gave up");
            return TriggerOutcome::Failed { error, attempts };
        }
        attempts += 1;
        let limit = policy.attempt_timeout.min(remaining);
        let result = match tokio::time::timeout(limit, port.fail_over(request, candidate)).await {
            Ok(r) => r,
            Err(_) => Err(StartError::TimedOut(limit)),
        };
        match result {
            Ok(StartOutcome::Started { execution_arn }) => {
                tracing::info!(event = "failover_started", execution_name = %name, execution_arn = %execution_arn, attempts, "Failover execution started");
                return TriggerOutcome::Started { execution_arn, attempts };
            }
            Ok(StartOutcome::AlreadyExists) => {
                tracing::info!(event = "failover_exists", execution_name = %name, attempts, "Failover execution for this incident already exists");
                return TriggerOutcome::AlreadyExists { attempts };
            }
            Ok(StartOutcome::NameTaken) if candidate + 1 < candidates => {
                tracing::info!(event = "failover_name_taken", execution_name = %name, attempts, "execution name held by an earlier incident; trying the next name");
                candidate += 1;
            }
            Ok(StartOutcome::NameTaken) => {
                // Every name of this window is held: this AZ has been failed over that often within
                // one window, so a Failover is there; starting none is the bounded answer.
                tracing::warn!(event = "failover_exists", execution_name = %name, attempts, "every execution name of this window is taken; counting the incident as handled");
                return TriggerOutcome::AlreadyExists { attempts };
            }
            Err(error) if error.is_retryable() && failed_attempts + 1 < policy.max_attempts => {
                failed_attempts += 1;
                let pause = jitter(backoff);
                if Instant::now() + pause + Duration::from_millis(50) + GIVE_UP_MARGIN >= give_up_at {
                    tracing::error!(event = "failover_failed", execution_name = %name, attempts, error = %error, "failover gave up: no time left to retry");
                    return TriggerOutcome::Failed { error, attempts };
                }
                tracing::warn!(event = "failover_retry", execution_name = %name, attempt = attempts, error = %error, retry_in_ms = pause.as_millis() as u64, "StartExecution failed, retrying");
                tokio::time::sleep(pause).await;
                backoff = backoff.saturating_mul(2);
            }
            Err(error) => {
                tracing::error!(event = "failover_failed", execution_name = %name, attempts, error = %error, "failover gave up");
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

/// The failover trigger as an observer: on `BecameUnhealthy` of the [`EGRESS`] watch it starts [`trigger`] (one at a time)
/// and hands the outcome back to every observer as [`Done::Failover`]. Without a port it only says
/// that it is detect-only.
pub struct FailoverTrigger<'a, F: ?Sized> {
    port: Option<&'a F>,
    availability_zone: String,
    subnet_id: String,
    give_up_at: Instant,
    in_flight: bool,
}

impl<'a, F: FailoverPort + ?Sized> FailoverTrigger<'a, F> {
    /// `give_up_at`: the run's hard stop (see `RunLimits`).
    pub fn new(port: Option<&'a F>, availability_zone: &str, subnet_id: &str, give_up_at: Instant) -> Self {
        FailoverTrigger {
            port,
            availability_zone: availability_zone.to_string(),
            subnet_id: subnet_id.to_string(),
            give_up_at,
            in_flight: false,
        }
    }
}

impl<'a, F: FailoverPort + ?Sized> Observer<'a> for FailoverTrigger<'a, F> {
    fn on_event(&mut self, event: &Event<'_>) -> Option<Reaction<'a>> {
        match event {
            Event::Watch(EGRESS, WatchEvent::BecameUnhealthy(incident)) => match self.port {
                Some(port) if !self.in_flight => {
                    self.in_flight = true;
                    let request = FailoverRequest {
                        availability_zone: self.availability_zone.clone(),
                        subnet_id: self.subnet_id.clone(),
                        incident: incident.clone(),
                    };
                    let give_up_at = self.give_up_at;
                    Some(Box::pin(async move {
                        Done::Failover(trigger(port, &request, RetryPolicy::default(), give_up_at).await)
                    }))
                }
                Some(_) => {
                    tracing::warn!(event = "failover_skipped", "a Failover trigger is still in flight; not starting another");
                    None
                }
                None => {
                    tracing::info!(event = "failover_disabled", "no FAILOVER_STATE_MACHINE_ARN: detect-only");
                    None
                }
            },
            Event::Done(Done::Failover(_)) => {
                self.in_flight = false;
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nat_watchdog_core::Rule;
    use std::sync::Mutex;
    use std::time::UNIX_EPOCH;

    /// Answers from a script, one per call; records call instants.
    struct Scripted {
        answers: Mutex<Vec<Result<StartOutcome, StartError>>>,
        hang: bool,
        calls: Mutex<Vec<Instant>>,
        candidates_asked: Mutex<Vec<u32>>,
    }

    impl Scripted {
        fn new(mut answers: Vec<Result<StartOutcome, StartError>>) -> Self {
            answers.reverse();
            Scripted { answers: Mutex::new(answers), hang: false, calls: Mutex::new(vec![]), candidates_asked: Mutex::new(vec![]) }
        }
        fn calls(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    impl FailoverPort for Scripted {
        fn name(&self, _: &FailoverRequest, candidate: u32) -> String {
            format!("nat-failover-az-x-{candidate}")
        }
        fn candidates(&self) -> u32 {
            3
        }
        async fn fail_over(&self, _: &FailoverRequest, candidate: u32) -> Result<StartOutcome, StartError> {
            self.calls.lock().unwrap().push(Instant::now());
            self.candidates_asked.lock().unwrap().push(candidate);
            if self.hang {
                std::future::pending::<()>().await;
            }
            let next = self.answers.lock().unwrap().pop();
            next.unwrap_or(Err(StartError::Unavailable("script exhausted".into())))
        }
    }

    fn request() -> FailoverRequest {
        FailoverRequest {
            availability_zone: "az".into(),
            subnet_id: "s".into(),
            incident: Incident {
                round: 3,
                detected_at: UNIX_EPOCH,
                outage_started_at: UNIX_EPOCH,
                rule: Rule::Consecutive,
                consecutive_bad_rounds: 3,
                bad_rounds_in_window: 3,
                window_rounds: 30,
                failed_targets: vec![],
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

    #[tokio::test(start_paused = true)]
    async fn a_name_taken_by_an_earlier_incident_moves_on_at_once_and_errors_retry_that_name() {
        let s = Scripted::new(vec![
            Ok(StartOutcome::NameTaken),
            Err(StartError::Throttled("ThrottlingException".into())),
            Ok(StartOutcome::Started { execution_arn: "arn:exec:2".into() }),
        ]);
        let start = Instant::now();
        let out = trigger(&s, &request(), RetryPolicy::default(), far()).await;
        assert_eq!(out, TriggerOutcome::Started { execution_arn: "arn:exec:2".into(), attempts: 3 });
        assert_eq!(*s.candidates_asked.lock().unwrap(), [0, 1, 1], "the next name, then a retry of that same name");
        let calls = s.calls.lock().unwrap().clone();
        assert_eq!(calls[1] - calls[0], Duration::ZERO, "a taken name costs no backoff");
        assert!(Instant::now() - start < Duration::from_millis(400), "only the throttling backed off");
    }

    #[tokio::test(start_paused = true)]
    async fn names_are_bounded_and_all_taken_counts_as_handled() {
        let s = Scripted::new(vec![Ok(StartOutcome::NameTaken); 5]);
        let out = trigger(&s, &request(), RetryPolicy::default(), far()).await;
        assert_eq!(out, TriggerOutcome::AlreadyExists { attempts: 3 });
        assert_eq!(*s.candidates_asked.lock().unwrap(), [0, 1, 2], "no more names than the port has");
    }
}
