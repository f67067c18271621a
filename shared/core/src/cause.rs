//! Why a probe failed: the log, metric and execution-input vocabulary.
//!
//! The enum, its list [`Cause::ALL`], its log name and its EMF metric name are generated from one
//! table by `vocabulary!`, so a new cause is one line here and the compiler keeps every listing complete
//! (a cause left out of `ALL` would otherwise be counted as `Other` silently).

use serde::{Deserialize, Serialize};

vocabulary! {
    /// Why a probe failed. The names are the metric and log vocabulary.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
    #[serde(rename_all = "snake_case")]
    pub enum Cause;
    /// The name in logs and in the execution input (`connect_timeout`).
    fn as_str;
    /// The EMF metric counting probes that failed this way (`ProbeFailureConnectTimeout`).
    fn metric_name;
    /// The name did not resolve (or not to a usable address).
    Dns => "dns", "ProbeFailureDns";
    /// The TCP connection was refused or reset.
    ConnectRefused => "connect_refused", "ProbeFailureConnectRefused";
    /// No TCP connection in time: the blackholed-NAT signature.
    ConnectTimeout => "connect_timeout", "ProbeFailureConnectTimeout";
    /// The TLS handshake failed.
    Tls => "tls", "ProbeFailureTls";
    /// A response arrived with a status outside `HTTP_STATUS_POLICY`.
    HttpStatus => "http_status", "ProbeFailureHttpStatus";
    /// Connected, but no complete response head in time.
    Timeout => "timeout", "ProbeFailureTimeout";
    /// Anything else (malformed response, local errors).
    Other => "other", "ProbeFailureOther";
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_each_cause_once_at_its_index() {
        for (i, c) in Cause::ALL.iter().enumerate() {
            assert_eq!(c.index(), i, "{c}");
        }
    }

    #[test]
    fn names_round_trip_through_json() {
        for c in Cause::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<Cause>(&json).unwrap(), c);
            assert!(c.metric_name().starts_with("ProbeFailure"));
        }
    }
}
