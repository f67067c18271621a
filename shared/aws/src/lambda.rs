//! The Lambda invocation's time budget.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the run's time budget came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    Deadline,
    NoDeadline,
    DeadlinePassed,
    DeadlineTooFar,
}

/// Lambda's longest timeout is 15 minutes; a deadline further away than that is nonsense.
const LAMBDA_MAX: Duration = Duration::from_secs(15 * 60 + 30);

/// The time this invocation may use, from the Lambda deadline (epoch ms) when it is believable,
/// otherwise `MAX_RUN_SECONDS`. Local emulators send zero, past or far-future deadlines.
pub fn budget_from_deadline(deadline_ms: u64, now: SystemTime, max_run: Duration) -> (Duration, BudgetSource) {
    if deadline_ms == 0 {
        return (max_run, BudgetSource::NoDeadline);
    }
    let now_ms = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    if deadline_ms <= now_ms {
        return (max_run, BudgetSource::DeadlinePassed);
    }
    let remaining = Duration::from_millis(deadline_ms - now_ms);
    if remaining > LAMBDA_MAX {
        return (max_run, BudgetSource::DeadlineTooFar);
    }
    (remaining, BudgetSource::Deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_RUN: Duration = Duration::from_secs(60);

    #[test]
    fn a_believable_deadline_is_the_budget_and_anything_else_falls_back_to_max_run() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_377_600);
        let now_ms = 1_795_377_600_000;
        assert_eq!(budget_from_deadline(now_ms + 59_500, now, MAX_RUN), (Duration::from_millis(59_500), BudgetSource::Deadline));
        assert_eq!(budget_from_deadline(0, now, MAX_RUN), (MAX_RUN, BudgetSource::NoDeadline));
        assert_eq!(budget_from_deadline(now_ms - 1, now, MAX_RUN), (MAX_RUN, BudgetSource::DeadlinePassed));
        assert_eq!(budget_from_deadline(now_ms + 3_600_000, now, MAX_RUN), (MAX_RUN, BudgetSource::DeadlineTooFar));
    }
}
