//! The EMF writer's property, written once for its two runners: the bounded proptest
//! (shared/aws/tests/properties.rs, in `make test`) and the fuzz target
//! (fuzz/fuzz_targets/emf_writer.rs, `make fuzz`). Included by `#[path]` in both.

use nat_watchdog_aws::emf::{self, EmfContext};
use serde_json::Value;

/// The health context of an arbitrary checker with `targets` targets.
pub fn context(targets: usize, availability_zone: String, subnet_id: String) -> EmfContext {
    EmfContext {
        namespace: "NatEgressWatchdog".into(),
        availability_zone,
        subnet_id,
        targets: (0..targets).map(|i| format!("https://t{i}.example/")).collect(),
    }
}

/// Probes and rounds one drained document accounts for, once it passes `emf::validate`: successes
/// are the values of ProbeLatency (its SampleCount), failures the ProbeFailure count, rounds the
/// values of the RoundHealthy log property.
pub fn accounted(doc: &str) -> Result<(u64, usize), String> {
    emf::validate(doc).map_err(|e| format!("{e}: {doc}"))?;
    let v: Value = serde_json::from_str(doc).map_err(|e| format!("{e}: {doc}"))?;
    let probes = v["ProbeLatency"].as_array().map_or(0, |a| a.len() as u64) + v["ProbeFailure"].as_u64().unwrap_or(0);
    Ok((probes, v["RoundHealthy"].as_array().map_or(0, Vec::len)))
}
