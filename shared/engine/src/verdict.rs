//! The verdict: quorum per round, then fall/rise hysteresis over consecutive rounds.
//!
//! Pure and clock-free. The caller passes a stamp with each round (a time, a round number) and gets
//! back the stamp of the first bad round of the streak when the subnet turns UNHEALTHY.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// What a round changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition<S> {
    /// `fall` consecutive bad rounds; `outage_started` is the stamp of the first of them.
    BecameUnhealthy { outage_started: S },
    /// `rise` consecutive good rounds after being unhealthy.
    BecameHealthy,
}

/// A round is good when at least `quorum` probes succeeded.
pub fn round_is_good(succeeded: usize, quorum: usize) -> bool {
    succeeded >= quorum
}

#[derive(Debug, Clone)]
pub struct Verdict<S> {
    state: Health,
    fall: u32,
    rise: u32,
    bad_streak: u32,
    good_streak: u32,
    streak_start: Option<S>,
}

impl<S: Copy> Verdict<S> {
    /// Starts HEALTHY: a checker started in the middle of an outage must still fire the trigger.
    pub fn new(fall: u32, rise: u32) -> Self {
        assert!(fall >= 1 && rise >= 1, "thresholds are validated by Config");
        Verdict { state: Health::Healthy, fall, rise, bad_streak: 0, good_streak: 0, streak_start: None }
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// Consecutive bad rounds so far (0 after a good round).
    pub fn bad_streak(&self) -> u32 {
        self.bad_streak
    }

    pub fn observe(&mut self, good: bool, stamp: S) -> Option<Transition<S>> {
        if good {
            self.bad_streak = 0;
            self.streak_start = None;
            self.good_streak = self.good_streak.saturating_add(1);
            if self.state == Health::Unhealthy && self.good_streak >= self.rise {
                self.state = Health::Healthy;
                return Some(Transition::BecameHealthy);
            }
        } else {
            self.good_streak = 0;
            if self.bad_streak == 0 {
                self.streak_start = Some(stamp);
            }
            self.bad_streak = self.bad_streak.saturating_add(1);
            if self.state == Health::Healthy && self.bad_streak >= self.fall {
                self.state = Health::Unhealthy;
                return Some(Transition::BecameUnhealthy { outage_started: self.streak_start.unwrap_or(stamp) });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a pattern like "ggbbb" and returns the transitions with the round index they happened at.
    fn run(fall: u32, rise: u32, pattern: &str) -> Vec<(usize, Transition<usize>)> {
        let mut v = Verdict::new(fall, rise);
        pattern
            .chars()
            .enumerate()
            .filter_map(|(i, c)| v.observe(c == 'g', i).map(|t| (i, t)))
            .collect()
    }

    #[test]
    fn turns_unhealthy_after_exactly_fall_bad_rounds() {
        assert_eq!(run(3, 2, "ggbb"), vec![]);
        assert_eq!(run(3, 2, "ggbbb"), vec![(4, Transition::BecameUnhealthy { outage_started: 2 })]);
    }

    #[test]
    fn a_good_round_resets_the_bad_streak() {
        assert_eq!(run(3, 2, "bbgbbgbb"), vec![]);
        assert_eq!(run(3, 2, "bbgbbb"), vec![(5, Transition::BecameUnhealthy { outage_started: 3 })]);
    }

    #[test]
    fn fires_once_per_incident_however_long_it_lasts() {
        let t = run(2, 2, "bbbbbbbbbb");
        assert_eq!(t, vec![(1, Transition::BecameUnhealthy { outage_started: 0 })]);
    }

    #[test]
    fn recovers_after_rise_good_rounds_and_can_fire_again() {
        let t = run(2, 3, "bbggbggg" /* 0..7 */);
        assert_eq!(
            t,
            vec![(1, Transition::BecameUnhealthy { outage_started: 0 }), (7, Transition::BecameHealthy)]
        );
        let t = run(2, 1, "bbgbb");
        assert_eq!(
            t,
            vec![
                (1, Transition::BecameUnhealthy { outage_started: 0 }),
                (2, Transition::BecameHealthy),
                (4, Transition::BecameUnhealthy { outage_started: 3 }),
            ]
        );
    }

    #[test]
    fn flapping_below_the_rise_threshold_stays_unhealthy() {
        // 1 bad / 1 good: never `rise` good rounds in a row, so no flip-flopping of the verdict.
        let t = run(2, 2, "bbgbgbgbgb");
        assert_eq!(t, vec![(1, Transition::BecameUnhealthy { outage_started: 0 })]);
    }

    #[test]
    fn threshold_one_fires_on_the_first_bad_round() {
        assert_eq!(run(1, 1, "gb"), vec![(1, Transition::BecameUnhealthy { outage_started: 1 })]);
    }

    /// Exhaustive over every pattern of up to 12 rounds and small thresholds: the verdict equals a
    /// direct restatement of the rule.
    #[test]
    fn exhaustive_against_the_definition() {
        for fall in 1..=4u32 {
            for rise in 1..=4u32 {
                for len in 0..=12usize {
                    for bits in 0u32..(1 << len) {
                        let rounds: Vec<bool> = (0..len).map(|i| bits & (1 << i) != 0).collect();
                        let mut v = Verdict::new(fall, rise);
                        let mut expected = Health::Healthy;
                        for (i, &good) in rounds.iter().enumerate() {
                            let t = v.observe(good, i);
                            let trailing = |want: bool| rounds[..=i].iter().rev().take_while(|&&g| g == want).count() as u32;
                            let before = expected;
                            if expected == Health::Healthy && !good && trailing(false) >= fall {
                                expected = Health::Unhealthy;
                            } else if expected == Health::Unhealthy && good && trailing(true) >= rise {
                                expected = Health::Healthy;
                            }
                            assert_eq!(v.state(), expected, "fall={fall} rise={rise} rounds={rounds:?} at {i}");
                            let edge = before != expected;
                            assert_eq!(t.is_some(), edge, "one transition exactly on each edge");
                            if let Some(Transition::BecameUnhealthy { outage_started }) = t {
                                assert_eq!(outage_started as u32, i as u32 + 1 - trailing(false));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn quorum() {
        assert!(round_is_good(1, 1));
        assert!(!round_is_good(0, 1));
        assert!(!round_is_good(1, 2));
        assert!(round_is_good(3, 2));
    }
}
