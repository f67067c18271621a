//! The verdict: quorum per round, then two ways to turn UNHEALTHY and one way back.
//!
//! - `fall` consecutive bad rounds (a hard failure: blackhole, reset, uplink down), or
//! - at least `threshold` bad rounds among the last `window` rounds seen since the verdict last
//!   turned HEALTHY (a path that is broken part of the time: a NAT flapping 1 s down / 1 s up fails
//!   a third of the rounds but rarely `fall` in a row, so the first rule alone never sees it).
//!
//! HEALTHY again after `rise` consecutive good rounds — and, when the windowed rule fired, once fewer
//! than `threshold` of the last `window` rounds are bad, so that the up-phases of a flapping path
//! do not flip the verdict back and forth. The window then starts empty, so the bad rounds of an
//! incident that is over cannot start the next one.
//!
//! Pure and clock-free. The caller passes a stamp with each round (a time, a round number) and gets
//! back, when the subnet turns UNHEALTHY, the stamp of the round the outage is dated from.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// The windowed rule: UNHEALTHY when `threshold` of the last `window` rounds were bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    pub window: u32,
    pub threshold: u32,
}

/// Which rule turned the verdict UNHEALTHY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// `fall` consecutive bad rounds. Checked first: when both rules hold, this is the one reported.
    Consecutive,
    /// `threshold` bad rounds among the last `window`.
    Window,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Consecutive => "consecutive",
            Rule::Window => "window",
        }
    }
}

/// What a round changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition<S> {
    /// `outage_started` is the stamp of the first bad round of the streak (rule `Consecutive`) or of
    /// the oldest bad round still in the window (rule `Window`).
    BecameUnhealthy { outage_started: S, rule: Rule },
    /// `rise` consecutive good rounds after being unhealthy (and a window below its threshold when
    /// the windowed rule fired).
    BecameHealthy,
}

/// A round is good when at least `quorum` probes succeeded.
pub fn round_is_good(succeeded: usize, quorum: usize) -> bool {
    succeeded >= quorum
}

#[derive(Debug, Clone)]
pub struct Verdict<S> {
    fall: u32,
    rise: u32,
    bad_streak: u32,
    good_streak: u32,
    streak_start: Option<S>,
    rule: Option<WindowRule>,
    /// The last `window` rounds since the verdict last turned healthy: `Some(stamp)` for a bad one.
    recent: VecDeque<Option<S>>,
    bad_in_window: u32,
    /// The rule of the incident in progress; `None` while HEALTHY.
    incident: Option<Rule>,
}

impl<S: Copy> Verdict<S> {
    /// Starts HEALTHY: a checker started in the middle of an outage must still fire the trigger.
    /// `window: None` (or a zero-sized window) leaves only the consecutive rule.
    pub fn new(fall: u32, rise: u32, window: Option<WindowRule>) -> Self {
        assert!(fall >= 1 && rise >= 1, "thresholds are validated by Config");
        let rule = window.filter(|w| w.window >= 1 && w.threshold >= 1);
        let capacity = rule.map_or(0, |w| w.window as usize);
        Verdict {
            fall,
            rise,
            bad_streak: 0,
            good_streak: 0,
            streak_start: None,
            rule,
            recent: VecDeque::with_capacity(capacity),
            bad_in_window: 0,
            incident: None,
        }
    }

    pub fn state(&self) -> Health {
        if self.incident.is_some() {
            Health::Unhealthy
        } else {
            Health::Healthy
        }
    }

    /// Consecutive good rounds that turn an UNHEALTHY verdict HEALTHY again.
    pub fn rise(&self) -> u32 {
        self.rise
    }

    /// Consecutive bad rounds so far (0 after a good round).
    pub fn bad_streak(&self) -> u32 {
        self.bad_streak
    }

    /// Bad rounds among the rounds now in the window, and how many rounds that is (0, 0 without a
    /// windowed rule).
    pub fn window_counts(&self) -> (u32, u32) {
        (self.bad_in_window, self.recent.len() as u32)
    }

    pub fn observe(&mut self, good: bool, stamp: S) -> Option<Transition<S>> {
        if let Some(rule) = self.rule {
            self.recent.push_back(if good { None } else { Some(stamp) });
            if !good {
                self.bad_in_window += 1;
            }
            if self.recent.len() > rule.window as usize {
                if let Some(Some(_)) = self.recent.pop_front() {
                    self.bad_in_window -= 1;
                }
            }
        }
        if good {
            self.bad_streak = 0;
            self.streak_start = None;
            self.good_streak = self.good_streak.saturating_add(1);
            let window_clear = match (self.incident, self.rule) {
                (Some(Rule::Window), Some(r)) => self.bad_in_window < r.threshold,
                _ => true,
            };
            if self.incident.is_some() && self.good_streak >= self.rise && window_clear {
                self.incident = None;
                self.recent.clear();
                self.bad_in_window = 0;
                return Some(Transition::BecameHealthy);
            }
        } else {
            self.good_streak = 0;
            if self.bad_streak == 0 {
                self.streak_start = Some(stamp);
            }
            self.bad_streak = self.bad_streak.saturating_add(1);
            if self.incident.is_none() {
                if self.bad_streak >= self.fall {
                    self.incident = Some(Rule::Consecutive);
                    let outage_started = self.streak_start.unwrap_or(stamp);
                    return Some(Transition::BecameUnhealthy { outage_started, rule: Rule::Consecutive });
                }
                if self.rule.is_some_and(|r| self.bad_in_window >= r.threshold) {
                    self.incident = Some(Rule::Window);
                    let outage_started = self.recent.iter().flatten().next().copied().unwrap_or(stamp);
                    return Some(Transition::BecameUnhealthy { outage_started, rule: Rule::Window });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds a pattern like "ggbbb" and returns the transitions with the round index they happened at.
    fn run_with(fall: u32, rise: u32, window: Option<WindowRule>, pattern: &str) -> Vec<(usize, Transition<usize>)> {
        let mut v = Verdict::new(fall, rise, window);
        pattern
            .chars()
            .enumerate()
            .filter_map(|(i, c)| v.observe(c == 'g', i).map(|t| (i, t)))
            .collect()
    }

    fn run(fall: u32, rise: u32, pattern: &str) -> Vec<(usize, Transition<usize>)> {
        run_with(fall, rise, None, pattern)
    }

    fn down(outage_started: usize) -> Transition<usize> {
        Transition::BecameUnhealthy { outage_started, rule: Rule::Consecutive }
    }

    fn degraded(outage_started: usize) -> Transition<usize> {
        Transition::BecameUnhealthy { outage_started, rule: Rule::Window }
    }

    const SIX_OF_30: Option<WindowRule> = Some(WindowRule { window: 30, threshold: 6 });

    #[test]
    fn turns_unhealthy_after_exactly_fall_bad_rounds() {
        assert_eq!(run(3, 2, "ggbb"), vec![]);
        assert_eq!(run(3, 2, "ggbbb"), vec![(4, down(2))]);
    }

    #[test]
    fn a_good_round_resets_the_bad_streak() {
        assert_eq!(run(3, 2, "bbgbbgbb"), vec![]);
        assert_eq!(run(3, 2, "bbgbbb"), vec![(5, down(3))]);
    }

    #[test]
    fn fires_once_per_incident_however_long_it_lasts() {
        assert_eq!(run(2, 2, "bbbbbbbbbb"), vec![(1, down(0))]);
        assert_eq!(run_with(2, 2, SIX_OF_30, &"b".repeat(100)), vec![(1, down(0))]);
    }

    #[test]
    fn recovers_after_rise_good_rounds_and_can_fire_again() {
        assert_eq!(run(2, 3, "bbggbggg" /* 0..7 */), vec![(1, down(0)), (7, Transition::BecameHealthy)]);
        assert_eq!(run(2, 1, "bbgbb"), vec![(1, down(0)), (2, Transition::BecameHealthy), (4, down(3))]);
    }

    #[test]
    fn flapping_below_the_rise_threshold_stays_unhealthy() {
        // 1 bad / 1 good: never `rise` good rounds in a row, so no flip-flopping of the verdict.
        assert_eq!(run(2, 2, "bbgbgbgbgb"), vec![(1, down(0))]);
    }

    #[test]
    fn threshold_one_fires_on_the_first_bad_round() {
        assert_eq!(run(1, 1, "gb"), vec![(1, down(1))]);
    }

    /// What the lab recorded for a NAT flapping 1 s down / 1 s up with 0.4 s rounds: one or two bad
    /// rounds in every five, never three in a row.
    #[test]
    fn flapping_is_caught_by_the_window_and_missed_without_it() {
        let one_in_five = "Bgggg".repeat(8);
        let two_in_five = "BBggg".repeat(8);
        assert_eq!(run(3, 3, &one_in_five), vec![], "three in a row never happens");
        assert_eq!(run(3, 3, &two_in_five), vec![]);
        // The 6th bad round: round 25 (10 s of 0.4 s rounds) and round 11 (5 s); the three good
        // rounds of each up-phase do not end the incident while the flapping goes on.
        assert_eq!(run_with(3, 3, SIX_OF_30, &one_in_five), vec![(25, degraded(0))]);
        assert_eq!(run_with(3, 3, SIX_OF_30, &two_in_five), vec![(11, degraded(0))]);
    }

    /// Once the flapping stops, HEALTHY comes back when the window holds fewer than `threshold` bad
    /// rounds; after a hard failure, `rise` good rounds are enough.
    #[test]
    fn recovery_waits_for_the_window_only_after_a_windowed_incident() {
        let flapping_then_fine = format!("{}{}", "BBggg".repeat(6), "g".repeat(30));
        // The last bad rounds are 25 and 26; from round 45 the window (16..=45) holds only 5.
        assert_eq!(
            run_with(3, 3, SIX_OF_30, &flapping_then_fine),
            vec![(11, degraded(0)), (45, Transition::BecameHealthy)]
        );
        let hard_then_fine = format!("{}{}", "b".repeat(20), "g".repeat(5));
        assert_eq!(run_with(3, 3, SIX_OF_30, &hard_then_fine), vec![(2, down(0)), (22, Transition::BecameHealthy)]);
    }

    /// The 20 % loss soaks' worst 30-round stretches held 3-4 bad rounds (BENCHMARKS.md): short of 6.
    #[test]
    fn scattered_bad_rounds_below_the_threshold_never_fire() {
        let lossy = "ggggbggggggggbgggggggggbgggggg".repeat(20);
        assert_eq!(run_with(3, 3, SIX_OF_30, &lossy), vec![]);
        // Five bad in any 30, forever: still healthy.
        let five = "bggggg".repeat(50);
        assert_eq!(run_with(3, 3, SIX_OF_30, &five), vec![]);
    }

    #[test]
    fn old_bad_rounds_slide_out_of_the_window() {
        // 5 bad, then 30 good (the window forgets them), then 5 bad: never 6 in 30.
        let p = format!("{}{}{}", "bg".repeat(5), "g".repeat(30), "bg".repeat(5));
        assert_eq!(run_with(3, 3, SIX_OF_30, &p), vec![]);
        // With only 20 good rounds between, the first batch's last bad rounds are still in the window.
        // With only 10 good rounds between, all five are still in the window when the next comes.
        let p = format!("{}{}{}", "bg".repeat(5), "g".repeat(10), "bg".repeat(5));
        assert_eq!(run_with(3, 3, SIX_OF_30, &p), vec![(20, degraded(0))]);
    }

    /// After recovery the window starts empty: the bad rounds of the last incident do not count
    /// towards the next.
    #[test]
    fn the_window_starts_empty_after_recovery() {
        let w = Some(WindowRule { window: 10, threshold: 3 });
        // bbb → unhealthy (consecutive, fall 2 → at round 1); ggg → healthy at 5; then b,b → only 2
        // bad since recovery although 5 of the last 10 rounds were bad.
        let t = run_with(2, 3, w, "bbbgggbgbg");
        assert_eq!(t, vec![(1, down(0)), (5, Transition::BecameHealthy)]);
        let t = run_with(2, 3, w, "bbbgggbgbgb");
        assert_eq!(t, vec![(1, down(0)), (5, Transition::BecameHealthy), (10, degraded(6))]);
    }

    #[test]
    fn window_counts_report_the_evidence() {
        let mut v = Verdict::new(3, 3, Some(WindowRule { window: 4, threshold: 4 }));
        for (i, c) in "bgbgb".chars().enumerate() {
            v.observe(c == 'g', i);
        }
        assert_eq!(v.window_counts(), (2, 4));
        assert_eq!(Verdict::<usize>::new(3, 3, None).window_counts(), (0, 0));
    }

    /// A direct restatement of both rules, round by round, from the whole history.
    fn expected_states(fall: u32, rise: u32, w: Option<WindowRule>, rounds: &[bool]) -> Vec<(Health, Option<(usize, Rule)>)> {
        let mut out = Vec::new();
        let mut state = Health::Healthy;
        let mut since_healthy = 0usize; // index of the first round after the last turn to HEALTHY
        let mut incident = None;
        for i in 0..rounds.len() {
            let trailing = |want: bool| rounds[..=i].iter().rev().take_while(|&&g| g == want).count() as u32;
            let mut edge = None;
            if state == Health::Healthy && !rounds[i] {
                if trailing(false) >= fall {
                    state = Health::Unhealthy;
                    edge = Some((i + 1 - trailing(false) as usize, Rule::Consecutive));
                } else if let Some(w) = w {
                    let from = since_healthy.max((i + 1).saturating_sub(w.window as usize));
                    let bad: Vec<usize> = (from..=i).filter(|&j| !rounds[j]).collect();
                    if bad.len() as u32 >= w.threshold {
                        state = Health::Unhealthy;
                        edge = Some((bad[0], Rule::Window));
                    }
                }
            } else if state == Health::Unhealthy && rounds[i] && trailing(true) >= rise {
                let window_clear = match (incident, w) {
                    (Some(Rule::Window), Some(w)) => {
                        let from = since_healthy.max((i + 1).saturating_sub(w.window as usize));
                        ((from..=i).filter(|&j| !rounds[j]).count() as u32) < w.threshold
                    }
                    _ => true,
                };
                if window_clear {
                    state = Health::Healthy;
                    since_healthy = i + 1;
                }
            }
            if let Some((_, rule)) = edge {
                incident = Some(rule);
            }
            out.push((state, edge));
        }
        out
    }

    /// Exhaustive over every pattern of up to 10 rounds and small thresholds and windows: the verdict
    /// equals the restatement above, with exactly one transition on each edge.
    #[test]
    fn exhaustive_against_the_definition() {
        let mut windows = vec![None];
        for window in 1..=5u32 {
            for threshold in 1..=window {
                windows.push(Some(WindowRule { window, threshold }));
            }
        }
        for fall in 1..=3u32 {
            for rise in 1..=3u32 {
                for &w in &windows {
                    for len in 0..=12usize {
                        for bits in 0u32..(1 << len) {
                            let rounds: Vec<bool> = (0..len).map(|i| bits & (1 << i) != 0).collect();
                            let expected = expected_states(fall, rise, w, &rounds);
                            let mut v = Verdict::new(fall, rise, w);
                            let mut before = Health::Healthy;
                            for (i, &good) in rounds.iter().enumerate() {
                                let t = v.observe(good, i);
                                let (state, edge) = expected[i];
                                let ctx = || format!("fall={fall} rise={rise} {w:?} rounds={rounds:?} at {i}");
                                assert_eq!(v.state(), state, "{}", ctx());
                                assert_eq!(t.is_some(), before != state, "one transition exactly on each edge: {}", ctx());
                                if let Some(Transition::BecameUnhealthy { outage_started, rule }) = t {
                                    assert_eq!(Some((outage_started, rule)), edge, "{}", ctx());
                                }
                                before = state;
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
