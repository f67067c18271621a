//! The config fuzz property (fuzz/fuzz_targets/config_from_map.rs) as a bounded proptest run, so
//! `make test` exercises it on the stable toolchain. (The EMF writer's is in nat-watchdog-aws.)

use std::collections::HashMap;
use std::time::Duration;

use nat_watchdog_core::{settings, Config, Mode};
use proptest::prelude::*;

/// The names the checker reads, from the settings table (a new variable is fuzzed without edits here).
fn known() -> Vec<&'static str> {
    settings::ALL.iter().map(|s| s.name).collect()
}

/// Values near the accepted forms as well as garbage: numbers, URLs, ARNs, lists, any string.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "-?[0-9]{0,4}(\\.[0-9]{0,3})?(e-?[0-9]{1,3})?",
        prop_oneof![Just("NaN"), Just("inf"), Just("-0"), Just(""), Just(" "), Just("true"), Just("any")].prop_map(String::from),
        "(https?|ftp)://(user:pw@)?[a-z.]{0,12}(:[0-9]{1,6})?/[a-z?=&#]{0,8}(,(https?)://[a-z]{1,5}\\.example/)*",
        "arn:aws[a-z-]{0,4}:states:[a-z0-9-]{0,12}:[0-9]{10,13}:stateMachine:[A-Za-z0-9_-]{0,82}",
        "[0-9]{3}(-[0-9]{3})?(,[0-9]{3}(-[0-9]{3})?){0,3}",
    ]
}

fn vars() -> impl Strategy<Value = HashMap<String, String>> {
    (
        proptest::collection::vec((0..settings::ALL.len(), value()), 0..10),
        proptest::collection::vec((any::<String>(), any::<String>()), 0..3),
    )
        .prop_map(|(known, other)| {
            let mut vars: HashMap<String, String> = other.into_iter().collect();
            for (k, v) in known {
                vars.insert(settings::ALL[k].name.to_string(), v);
            }
            vars
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn config_from_arbitrary_maps_never_panics_and_keeps_its_invariants(vars in vars(), lambda in any::<bool>()) {
        let mode = if lambda { Mode::FailoverRequired } else { Mode::DetectOnlyAllowed };
        match Config::from_map(&vars, mode) {
            Ok(c) => {
                prop_assert!(!c.targets.is_empty() && c.targets.len() <= 20);
                prop_assert!(c.quorum >= 1 && c.quorum <= c.targets.len());
                prop_assert!(c.interval >= Duration::from_millis(50) && c.timeout >= Duration::from_millis(50));
                prop_assert!(c.timeout + Duration::from_secs(1) < c.max_run);
                prop_assert!(mode == Mode::DetectOnlyAllowed || c.state_machine_arn.is_some());
                // The windowed rule never fires on fewer bad rounds than UNHEALTHY_THRESHOLD asks for.
                prop_assert!(c.degraded.is_none_or(|w| c.unhealthy_threshold < w.threshold && w.threshold <= w.window && w.window <= 1000));
            }
            Err(e) => {
                prop_assert!(known().contains(&e.variable()), "{}", e);
                prop_assert!(e.to_string().contains("expected"), "{}", e);
                // URL user info never reaches the message (other variables are not URLs and are echoed).
                if e.variable() == "CHECK_URLS" {
                    prop_assert!(!e.to_string().contains("pw@"), "{}", e);
                }
            }
        }
    }
}
