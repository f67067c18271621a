//! Config::from_map over arbitrary maps: never panics; an accepted config keeps its invariants; a
//! rejected one names a variable it knows and states the accepted form.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nat_watchdog_core::{settings, Config, Mode};

/// The keys fuzzed: the settings table's variables (so values get exercised) and one the checker
/// leaves to the SDK.
fn key(index: u8) -> &'static str {
    let i = usize::from(index) % (settings::ALL.len() + 1);
    settings::ALL.get(i).map_or("AWS_REGION", |s| s.name)
}

fuzz_target!(|input: (bool, Vec<(u8, String)>, Vec<(String, String)>)| {
    let (lambda, known, other) = input;
    let mut vars: HashMap<String, String> = other.into_iter().collect();
    for (k, v) in known {
        vars.insert(key(k).to_string(), v);
    }
    let mode = if lambda { Mode::FailoverRequired } else { Mode::DetectOnlyAllowed };
    match Config::from_map(&vars, mode) {
        Ok(c) => {
            assert!(!c.targets.is_empty() && c.targets.len() <= 20);
            assert!(c.quorum >= 1 && c.quorum <= c.targets.len());
            assert!(c.interval >= Duration::from_millis(50) && c.timeout >= Duration::from_millis(50));
            assert!(c.timeout + Duration::from_secs(1) < c.max_run);
            assert!(c.unhealthy_threshold >= 1 && c.healthy_threshold >= 1);
            assert!(mode == Mode::DetectOnlyAllowed || c.state_machine_arn.is_some());
            assert!(c.degraded.is_none_or(|w| c.unhealthy_threshold < w.threshold && w.threshold <= w.window && w.window <= 1000));
        }
        Err(e) => {
            assert!(settings::by_name(e.variable()).is_some(), "{e}");
            assert!(e.to_string().contains("expected"), "{e}");
        }
    }
});
