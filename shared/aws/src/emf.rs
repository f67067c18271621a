//! CloudWatch embedded metric format: values are aggregated between flushes and written as a few
//! documents, never one per probe. Limits of the specification are enforced here and checked by
//! [`validate`], which tests and fuzzing run over everything this module writes.
//!
//! Cost shapes the output (a custom metric is billed per metric × dimension combination, for the
//! hours in which it has data): the health document has one dimension set, `[AvailabilityZone]`
//! (`SubnetId` is a plain property); counts are written only when non-zero (absent = 0); the arrays
//! do the counting that needs no metric of its own: `Unhealthy` has one value per round (its
//! SampleCount is the checker's liveness), `ProbeLatency` one per successful probe of the default
//! path (its SampleCount is the success count), `NatPathUnhealthy` one per canary round (only with
//! canaries); `RoundHealthy` is a log property, not a metric; per-target documents
//! (`[AvailabilityZone, Target]`) are written only when `PER_TARGET_METRICS` is on.

use serde_json::{json, Map, Value};

use nat_watchdog_core::metrics::Metric;
use nat_watchdog_core::Cause;

/// At most this many values in one metric's array.
pub const MAX_VALUES: usize = 100;
/// At most this many metrics in one document.
pub const MAX_METRICS: usize = 100;
/// At most this many keys in one dimension set.
pub const MAX_DIMENSION_KEYS: usize = 30;

/// What every document of this checker carries.
#[derive(Debug, Clone, PartialEq)]
pub struct EmfContext {
    pub namespace: String,
    pub availability_zone: String,
    pub subnet_id: String,
    /// Safe-to-publish target labels, indexed like the config's targets.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct TargetStats {
    latencies_ms: Vec<f64>,
    failures: u64,
    probes: u64,
}

/// Values gathered since the last flush.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsBuffer {
    /// Write the per-target documents too (`PER_TARGET_METRICS`).
    per_target: bool,
    latencies_ms: Vec<f64>,
    probe_failure: u64,
    by_cause: [u64; Cause::ALL.len()],
    round_healthy: Vec<f64>,
    unhealthy: Vec<f64>,
    failover_triggered: u64,
    failover_error: u64,
    /// The NAT-instance path (canaries): its verdict after each canary round, and the canary probes
    /// that failed for the path.
    nat_path_unhealthy: Vec<f64>,
    nat_path_probe_failure: u64,
    targets: Vec<TargetStats>,
}

/// The metric counting one cause (the names live with the causes in `nat_watchdog_core::cause`).
fn cause_metric(c: Cause) -> &'static str {
    c.metric_name()
}

impl MetricsBuffer {
    /// A buffer that writes the health document only.
    pub fn new(targets: usize) -> Self {
        MetricsBuffer { targets: vec![TargetStats::default(); targets], ..Default::default() }
    }

    /// A buffer that also writes one document per probed target when `per_target` is set.
    pub fn with_per_target(targets: usize, per_target: bool) -> Self {
        MetricsBuffer { per_target, ..MetricsBuffer::new(targets) }
    }

    /// One probe of the default path. A success adds exactly one `ProbeLatency` value (its
    /// SampleCount is the success count).
    pub fn record_probe(&mut self, target: usize, cause: Option<Cause>, latency_ms: f64) {
        let Some(stats) = self.targets.get_mut(target) else { return };
        stats.probes += 1;
        match cause {
            None => {
                // A non-finite value would be written as `null` and void the whole document; it
                // cannot come from a measured duration, and is kept as 0 so that the count holds.
                let rounded = (latency_ms * 1000.0).round() / 1000.0;
                let value = if rounded.is_finite() { rounded } else { 0.0 };
                stats.latencies_ms.push(value);
                self.latencies_ms.push(value);
            }
            Some(c) => {
                self.probe_failure += 1;
                self.by_cause[Cause::ALL.iter().position(|&x| x == c).unwrap_or(Cause::ALL.len() - 1)] += 1;
                stats.failures += 1;
            }
        }
    }

    /// One finished round: was it good, and what is the verdict after it.
    pub fn record_round(&mut self, good: bool, unhealthy_after: bool) {
        self.round_healthy.push(f64::from(u8::from(good)));
        self.unhealthy.push(f64::from(u8::from(unhealthy_after)));
    }

    /// One canary probe that failed for the NAT-instance path (a network-level cause; a canary whose
    /// far end answered is not a path failure and is not recorded).
    pub fn record_canary_failure(&mut self) {
        self.nat_path_probe_failure += 1;
    }

    /// One finished canary round: is the NAT-instance path's verdict after it UNHEALTHY.
    pub fn record_canary_round(&mut self, unhealthy_after: bool) {
        self.nat_path_unhealthy.push(f64::from(u8::from(unhealthy_after)));
    }

    pub fn record_failover(&mut self, triggered: bool) {
        if triggered {
            self.failover_triggered += 1;
        } else {
            self.failover_error += 1;
        }
    }

    /// Renders everything gathered as EMF documents and empties the buffer.
    /// `verdict` is carried as a plain log property, for Logs Insights queries.
    pub fn drain(&mut self, ctx: &EmfContext, timestamp_ms: u64, verdict: &str) -> Vec<String> {
        let taken = std::mem::replace(self, MetricsBuffer::with_per_target(self.targets.len(), self.per_target));
        let mut docs = Vec::new();

        // Health document(s): counts once and only when non-zero, the arrays split into chunks of
        // MAX_VALUES; a flush with nothing to say writes nothing.
        let mut counts: Vec<(&str, &str, u64)> = vec![(Metric::ProbeFailure.name(), "Count", taken.probe_failure)];
        for (i, c) in Cause::ALL.iter().enumerate() {
            counts.push((cause_metric(*c), "Count", taken.by_cause[i]));
        }
        counts.push((Metric::FailoverTriggered.name(), "Count", taken.failover_triggered));
        counts.push((Metric::FailoverError.name(), "Count", taken.failover_error));
        counts.push((Metric::NatPathProbeFailure.name(), "Count", taken.nat_path_probe_failure));
        counts.retain(|&(_, _, value)| value > 0);
        let chunk_range = |len: usize, chunk: usize| chunk * MAX_VALUES..((chunk + 1) * MAX_VALUES).min(len);
        let longest = taken.round_healthy.len().max(taken.latencies_ms.len()).max(taken.nat_path_unhealthy.len());
        let chunks = longest.div_ceil(MAX_VALUES).max(1);
        for chunk in 0..chunks {
            let rounds = chunk_range(taken.round_healthy.len(), chunk);
            let latencies = chunk_range(taken.latencies_ms.len(), chunk);
            let canary_rounds = chunk_range(taken.nat_path_unhealthy.len(), chunk);
            let mut metrics: Vec<(&str, &str, Value)> = Vec::new();
            if chunk == 0 {
                metrics.extend(counts.iter().map(|&(n, u, v)| (n, u, json!(v))));
            }
            if !rounds.is_empty() {
                metrics.push((Metric::Unhealthy.name(), Metric::Unhealthy.unit(), json!(taken.unhealthy[rounds.clone()])));
            }
            if !latencies.is_empty() {
                metrics.push((Metric::ProbeLatency.name(), Metric::ProbeLatency.unit(), json!(taken.latencies_ms[latencies])));
            }
            if !canary_rounds.is_empty() {
                metrics.push((Metric::NatPathUnhealthy.name(), Metric::NatPathUnhealthy.unit(), json!(taken.nat_path_unhealthy[canary_rounds])));
            }
            if metrics.is_empty() {
                continue;
            }
            let dims = vec![vec!["AvailabilityZone"]];
            let mut doc = document(ctx, timestamp_ms, &dims, &metrics, Some(1));
            // One 1/0 per round, for Logs Insights: a log property, not a metric (it would be billed
            // all month and nothing graphs or alarms on it; ProbeLatency/ProbeFailure and Unhealthy do).
            if !rounds.is_empty() {
                doc.insert("RoundHealthy".into(), json!(taken.round_healthy[rounds]));
            }
            doc.insert("Verdict".into(), json!(verdict));
            docs.push(Value::Object(doc).to_string());
        }

        // Opt-in: one target document per probed target; latencies chunked.
        for (i, stats) in taken.targets.iter().enumerate() {
            if !taken.per_target || stats.probes == 0 {
                continue;
            }
            let label = ctx.targets.get(i).cloned().unwrap_or_else(|| format!("target-{i}"));
            let chunks = stats.latencies_ms.len().div_ceil(MAX_VALUES).max(1);
            for chunk in 0..chunks {
                let range = chunk * MAX_VALUES..((chunk + 1) * MAX_VALUES).min(stats.latencies_ms.len());
                let mut metrics: Vec<(&str, &str, Value)> = Vec::new();
                if chunk == 0 {
                    metrics.push(("TargetProbeFailure", "Count", json!(stats.failures)));
                }
                if !range.is_empty() {
                    metrics.push(("ProbeLatency", "Milliseconds", json!(stats.latencies_ms[range])));
                }
                let dims = vec![vec!["AvailabilityZone", "Target"]];
                let mut doc = document(ctx, timestamp_ms, &dims, &metrics, None);
                doc.insert("Target".into(), json!(label));
                docs.push(Value::Object(doc).to_string());
            }
        }
        docs
    }
}

fn document(
    ctx: &EmfContext,
    timestamp_ms: u64,
    dimensions: &[Vec<&str>],
    metrics: &[(&str, &str, Value)],
    storage_resolution: Option<u8>,
) -> Map<String, Value> {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| {
            let mut d = json!({ "Name": name, "Unit": unit });
            if let Some(r) = storage_resolution {
                d["StorageResolution"] = json!(r);
            }
            d
        })
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": ctx.namespace,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }]
        }),
    );
    root.insert("AvailabilityZone".into(), json!(ctx.availability_zone));
    root.insert("SubnetId".into(), json!(ctx.subnet_id));
    for (name, _, value) in metrics {
        root.insert((*name).into(), value.clone());
    }
    root
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid EMF document: {0}")]
pub struct EmfViolation(pub String);

/// Checks one line against the EMF specification's rules (as documented for CloudWatch Logs).
pub fn validate(line: &str) -> Result<(), EmfViolation> {
    let bad = |s: String| Err(EmfViolation(s));
    if line.contains('\n') {
        return bad("a document must be one line".into());
    }
    let root: Value = serde_json::from_str(line).map_err(|e| EmfViolation(format!("not JSON: {e}")))?;
    let Some(root) = root.as_object() else { return bad("root is not an object".into()) };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else { return bad("no _aws object".into()) };
    if !aws.get("Timestamp").is_some_and(|t| t.is_u64()) {
        return bad("_aws.Timestamp is not a non-negative integer".into());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        return bad("_aws.CloudWatchMetrics is not an array".into());
    };
    let mut resolutions: std::collections::HashMap<&str, u64> = Default::default();
    for directive in directives {
        let ns = directive.get("Namespace").and_then(Value::as_str).unwrap_or("");
        if ns.is_empty() || ns.len() > 255 || !ns.chars().all(|c| c.is_ascii_alphanumeric() || " ._#:/-".contains(c)) {
            return bad(format!("namespace {ns:?} does not match [a-zA-Z0-9 ._#:/-]{{1,255}}"));
        }
        let Some(dims) = directive.get("Dimensions").and_then(Value::as_array) else {
            return bad("Dimensions is not an array".into());
        };
        for set in dims {
            let Some(keys) = set.as_array() else { return bad("a dimension set is not an array".into()) };
            if keys.len() > MAX_DIMENSION_KEYS {
                return bad(format!("a dimension set has {} keys (max {MAX_DIMENSION_KEYS})", keys.len()));
            }
            for k in keys {
                let Some(k) = k.as_str() else { return bad("a dimension key is not a string".into()) };
                if !root.get(k).is_some_and(Value::is_string) {
                    return bad(format!("dimension {k:?} is not a string member of the root"));
                }
            }
        }
        let Some(metrics) = directive.get("Metrics").and_then(Value::as_array) else {
            return bad("Metrics is not an array".into());
        };
        if metrics.len() > MAX_METRICS {
            return bad(format!("{} metrics in one document (max {MAX_METRICS})", metrics.len()));
        }
        for m in metrics {
            let Some(name) = m.get("Name").and_then(Value::as_str) else { return bad("a metric without Name".into()) };
            let resolution = match m.get("StorageResolution") {
                None => 60,
                Some(r) => match r.as_u64() {
                    Some(r @ (1 | 60)) => r,
                    _ => return bad(format!("{name}: StorageResolution must be 1 or 60")),
                },
            };
            if let Some(prev) = resolutions.insert(name, resolution) {
                if prev != resolution {
                    return bad(format!("{name} has two storage resolutions"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) => {
                    if values.is_empty() || values.len() > MAX_VALUES {
                        return bad(format!("{name} has {} values (1..={MAX_VALUES})", values.len()));
                    }
                    if !values.iter().all(Value::is_number) {
                        return bad(format!("{name} has a non-numeric value"));
                    }
                }
                _ => return bad(format!("metric {name:?} is not a number or array member of the root")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EmfContext {
        EmfContext {
            namespace: "NatEgressWatchdog".into(),
            availability_zone: "us-east-1a".into(),
            subnet_id: "subnet-0abc".into(),
            targets: vec!["https://a.example/".into(), "http://b.example/".into()],
        }
    }

    /// Golden output: given two rounds (one good, one bad that made the subnet unhealthy) and a
    /// failover, the flush writes exactly this health document: one dimension set, zero counts left
    /// out, every success latency in it, no per-target documents (PER_TARGET_METRICS off).
    #[test]
    fn golden_flush() {
        let mut b = MetricsBuffer::new(2);
        b.record_probe(0, None, 12.3456);
        b.record_probe(1, Some(Cause::ConnectTimeout), 800.0);
        b.record_round(true, false);
        b.record_probe(0, Some(Cause::ConnectTimeout), 800.0);
        b.record_probe(1, Some(Cause::Dns), 3.0);
        b.record_round(false, true);
        b.record_failover(true);
        let docs = b.drain(&ctx(), 1_795_377_673_412, "unhealthy");
        let expected = [
            r#"{"_aws":{"Timestamp":1795377673412,"CloudWatchMetrics":[{"Namespace":"NatEgressWatchdog","Dimensions":[["AvailabilityZone"]],"Metrics":[{"Name":"ProbeFailure","Unit":"Count","StorageResolution":1},{"Name":"ProbeFailureDns","Unit":"Count","StorageResolution":1},{"Name":"ProbeFailureConnectTimeout","Unit":"Count","StorageResolution":1},{"Name":"FailoverTriggered","Unit":"Count","StorageResolution":1},{"Name":"Unhealthy","Unit":"None","StorageResolution":1},{"Name":"ProbeLatency","Unit":"Milliseconds","StorageResolution":1}]}]},"AvailabilityZone":"us-east-1a","SubnetId":"subnet-0abc","ProbeFailure":3,"ProbeFailureDns":1,"ProbeFailureConnectTimeout":2,"FailoverTriggered":1,"Unhealthy":[0.0,1.0],"ProbeLatency":[12.346],"RoundHealthy":[1.0,0.0],"Verdict":"unhealthy"}"#,
        ];
        assert_eq!(docs, expected);
        for d in &docs {
            validate(d).unwrap();
        }
    }

    /// Golden output with PER_TARGET_METRICS on: the same health document, then one document per
    /// probed target with the `[AvailabilityZone, Target]` dimension set.
    #[test]
    fn golden_flush_with_per_target_documents() {
        let mut b = MetricsBuffer::with_per_target(2, true);
        b.record_probe(0, None, 12.3456);
        b.record_probe(1, Some(Cause::ConnectTimeout), 800.0);
        b.record_round(true, false);
        let docs = b.drain(&ctx(), 1_795_377_673_412, "healthy");
        let expected = [
            r#"{"_aws":{"Timestamp":1795377673412,"CloudWatchMetrics":[{"Namespace":"NatEgressWatchdog","Dimensions":[["AvailabilityZone"]],"Metrics":[{"Name":"ProbeFailure","Unit":"Count","StorageResolution":1},{"Name":"ProbeFailureConnectTimeout","Unit":"Count","StorageResolution":1},{"Name":"Unhealthy","Unit":"None","StorageResolution":1},{"Name":"ProbeLatency","Unit":"Milliseconds","StorageResolution":1}]}]},"AvailabilityZone":"us-east-1a","SubnetId":"subnet-0abc","ProbeFailure":1,"ProbeFailureConnectTimeout":1,"Unhealthy":[0.0],"ProbeLatency":[12.346],"RoundHealthy":[1.0],"Verdict":"healthy"}"#,
            r#"{"_aws":{"Timestamp":1795377673412,"CloudWatchMetrics":[{"Namespace":"NatEgressWatchdog","Dimensions":[["AvailabilityZone","Target"]],"Metrics":[{"Name":"TargetProbeFailure","Unit":"Count"},{"Name":"ProbeLatency","Unit":"Milliseconds"}]}]},"AvailabilityZone":"us-east-1a","SubnetId":"subnet-0abc","TargetProbeFailure":0,"ProbeLatency":[12.346],"Target":"https://a.example/"}"#,
            r#"{"_aws":{"Timestamp":1795377673412,"CloudWatchMetrics":[{"Namespace":"NatEgressWatchdog","Dimensions":[["AvailabilityZone","Target"]],"Metrics":[{"Name":"TargetProbeFailure","Unit":"Count"}]}]},"AvailabilityZone":"us-east-1a","SubnetId":"subnet-0abc","TargetProbeFailure":1,"Target":"http://b.example/"}"#,
        ];
        assert_eq!(docs, expected);
        for d in &docs {
            validate(d).unwrap();
        }
    }

    /// Golden output with canaries: the NAT-instance path's verdict per canary round, and its failed
    /// probes only when there are some; nothing of the canaries goes into ProbeLatency.
    #[test]
    fn golden_flush_with_canaries() {
        let mut b = MetricsBuffer::new(2);
        b.record_probe(0, None, 12.3456);
        b.record_probe(1, None, 20.0);
        b.record_round(true, false);
        b.record_canary_failure();
        b.record_canary_round(false);
        b.record_canary_failure();
        b.record_canary_round(true);
        let docs = b.drain(&ctx(), 1_795_377_673_412, "healthy");
        let expected = [
            r#"{"_aws":{"Timestamp":1795377673412,"CloudWatchMetrics":[{"Namespace":"NatEgressWatchdog","Dimensions":[["AvailabilityZone"]],"Metrics":[{"Name":"NatPathProbeFailure","Unit":"Count","StorageResolution":1},{"Name":"Unhealthy","Unit":"None","StorageResolution":1},{"Name":"ProbeLatency","Unit":"Milliseconds","StorageResolution":1},{"Name":"NatPathUnhealthy","Unit":"None","StorageResolution":1}]}]},"AvailabilityZone":"us-east-1a","SubnetId":"subnet-0abc","NatPathProbeFailure":2,"Unhealthy":[0.0],"ProbeLatency":[12.346,20.0],"NatPathUnhealthy":[0.0,1.0],"RoundHealthy":[1.0],"Verdict":"healthy"}"#,
        ];
        assert_eq!(docs, expected);
        validate(&docs[0]).unwrap();
    }

    #[test]
    fn an_idle_flush_writes_nothing() {
        let docs = MetricsBuffer::with_per_target(2, true).drain(&ctx(), 5, "healthy");
        assert!(docs.is_empty(), "no rounds, no counts: no document ({docs:?})");
    }

    #[test]
    fn a_failover_outcome_alone_is_a_document_of_its_count() {
        let mut b = MetricsBuffer::new(1);
        b.record_failover(false);
        let docs = b.drain(&ctx(), 5, "unhealthy");
        assert_eq!(docs.len(), 1);
        let v: Value = serde_json::from_str(&docs[0]).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Metrics"], json!([{"Name": "FailoverError", "Unit": "Count", "StorageResolution": 1}]));
        assert!(v.get("Unhealthy").is_none() && v.get("RoundHealthy").is_none(), "no empty arrays");
        validate(&docs[0]).unwrap();
    }

    /// Every successful probe is exactly one ProbeLatency value, even one whose latency cannot be
    /// written as JSON: the success count is SampleCount(ProbeLatency).
    #[test]
    fn each_success_is_one_latency_value() {
        let mut b = MetricsBuffer::new(1);
        for latency in [1.0, f64::NAN, f64::INFINITY, 3.5] {
            b.record_probe(0, None, latency);
        }
        b.record_probe(0, Some(Cause::Tls), 1.0);
        let docs = b.drain(&ctx(), 5, "healthy");
        let v: Value = serde_json::from_str(&docs[0]).unwrap();
        assert_eq!(v["ProbeLatency"], json!([1.0, 0.0, 0.0, 3.5]));
        assert_eq!(v["ProbeFailure"], json!(1));
        validate(&docs[0]).unwrap();
    }

    #[test]
    fn long_arrays_are_split_at_the_limit() {
        let mut b = MetricsBuffer::with_per_target(1, true);
        for i in 0..250 {
            b.record_probe(0, None, f64::from(i));
            b.record_round(true, false);
            b.record_canary_round(false);
        }
        b.record_probe(0, Some(Cause::Dns), 1.0);
        let docs = b.drain(&ctx(), 1, "healthy");
        // 3 health documents (100+100+50 rounds and latencies) and 3 target documents.
        assert_eq!(docs.len(), 6);
        let values = |d: &str, m: &str| serde_json::from_str::<Value>(d).unwrap()[m].as_array().map_or(0, Vec::len);
        assert_eq!([values(&docs[0], "RoundHealthy"), values(&docs[1], "RoundHealthy"), values(&docs[2], "RoundHealthy")], [100, 100, 50]);
        assert_eq!([values(&docs[0], "ProbeLatency"), values(&docs[1], "ProbeLatency"), values(&docs[2], "ProbeLatency")], [100, 100, 50]);
        assert_eq!([values(&docs[0], "NatPathUnhealthy"), values(&docs[1], "NatPathUnhealthy"), values(&docs[2], "NatPathUnhealthy")], [100, 100, 50]);
        assert_eq!([values(&docs[3], "ProbeLatency"), values(&docs[4], "ProbeLatency"), values(&docs[5], "ProbeLatency")], [100, 100, 50]);
        let counted = docs.iter().filter(|d| d.contains("\"ProbeFailure\":1")).count();
        assert_eq!(counted, 1, "counts are written once per flush");
        for d in &docs {
            validate(d).unwrap();
        }
    }

    #[test]
    fn per_target_documents_are_opt_in_and_the_setting_survives_a_drain() {
        let mut off = MetricsBuffer::new(2);
        let mut on = MetricsBuffer::with_per_target(2, true);
        for _ in 0..2 {
            for b in [&mut off, &mut on] {
                b.record_probe(0, None, 1.0);
                b.record_probe(1, Some(Cause::Tls), 1.0);
            }
            assert_eq!(off.drain(&ctx(), 1, "healthy").len(), 1);
            assert_eq!(on.drain(&ctx(), 1, "healthy").len(), 3);
        }
    }

    #[test]
    fn drain_empties_the_buffer() {
        let mut b = MetricsBuffer::with_per_target(1, true);
        b.record_probe(0, Some(Cause::Tls), 1.0);
        b.record_probe(0, None, 1.0);
        b.drain(&ctx(), 1, "healthy");
        assert_eq!(b, MetricsBuffer::with_per_target(1, true));
    }

    #[test]
    fn the_validator_rejects_what_the_spec_forbids() {
        let ok = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["A"]],"Metrics":[{"Name":"M"}]}]},"A":"x","M":1}"#;
        validate(ok).unwrap();
        let broken = [
            ok.replace(r#""M":1"#, r#""M":"1""#),
            ok.replace(r#""A":"x","#, ""),
            ok.replace(r#""Namespace":"N""#, r#""Namespace":"N{}""#),
            ok.replace(r#""M":1"#, r#""M":[]"#),
            ok.replace(r#"{"Name":"M"}"#, r#"{"Name":"M","StorageResolution":5}"#),
            ok.replace(r#""Timestamp":1"#, r#""Timestamp":-1"#),
            "not json".to_string(),
        ];
        for b in broken {
            assert!(validate(&b).is_err(), "{b}");
        }
    }
}
