//! Config::from_map over arbitrary maps: never panics; an accepted config keeps its invariants; a
//! rejected one names a variable it knows and states the accepted form.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nat_watchdog_core::{Config, Mode};

/// The variables the checker reads: fuzzed keys are mostly these, so values get exercised.
const KNOWN: [&str; 19] = [
    "CHECK_URLS", "CONNECTIVITY_CHECK_INTERVAL", "REQUEST_TIMEOUT", "UNHEALTHY_THRESHOLD", "HEALTHY_THRESHOLD",
    "QUORUM", "HTTP_STATUS_POLICY", "IPV4_ONLY", "FAILOVER_STATE_MACHINE_ARN", "AVAILABILITY_ZONE", "SUBNET_ID",
    "METRICS_NAMESPACE", "METRICS_FLUSH_INTERVAL", "MAX_RUN_SECONDS", "FAILOVER_DEDUP_WINDOW", "EXTRA_CA_CERTS",
    "DEGRADED_WINDOW", "DEGRADED_THRESHOLD",
    "AWS_REGION",
];

fuzz_target!(|input: (bool, Vec<(u8, String)>, Vec<(String, String)>)| {
    let (lambda, known, other) = input;
    let mut vars: HashMap<String, String> = other.into_iter().collect();
    for (k, v) in known {
        vars.insert(KNOWN[usize::from(k) % KNOWN.len()].to_string(), v);
    }
    let mode = if lambda { Mode::Lambda } else { Mode::Cli };
    match Config::from_map(&vars, mode) {
        Ok(c) => {
            assert!(!c.targets.is_empty() && c.targets.len() <= 20);
            assert!(c.quorum >= 1 && c.quorum <= c.targets.len());
            assert!(c.interval >= Duration::from_millis(50) && c.timeout >= Duration::from_millis(50));
            assert!(c.timeout + Duration::from_secs(1) < c.max_run);
            assert!(c.unhealthy_threshold >= 1 && c.healthy_threshold >= 1);
            assert!(mode == Mode::Cli || c.state_machine_arn.is_some());
            assert!(c.degraded.is_none_or(|w| c.unhealthy_threshold < w.threshold && w.threshold <= w.window && w.window <= 1000));
        }
        Err(e) => {
            assert!(KNOWN.contains(&e.variable()), "{e}");
            assert!(e.to_string().contains("expected"), "{e}");
        }
    }
});
