//! Configuration: parsed once from a map of the environment through the settings table
//! ([`crate::settings`]), validated before the first probe.
//!
//! Every error names the variable, the value it saw and the form it accepts, so a bad deployment
//! fails at start-up with one line an operator can act on.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::settings::{self as set, Kind, Setting};
use crate::settings::{BOOL_FORM, COUNT_FORM, SECONDS_FORM};
use crate::target::{Target, TargetError};
use crate::verdict::WindowRule;

pub use crate::settings::DEFAULT_CHECK_URLS;

const URLS_FORM: &str = set::CHECK_URLS.form;
const CANARY_URLS_FORM: &str = set::CANARY_URLS.form;
const POLICY_FORM: &str = set::HTTP_STATUS_POLICY.form;
const DEGRADED_WINDOW_FORM: &str = set::DEGRADED_WINDOW.form;
const DEGRADED_THRESHOLD_FORM: &str = set::DEGRADED_THRESHOLD.form;
const ARN_FORM: &str = set::FAILOVER_STATE_MACHINE_ARN.form;
const AZ_FORM: &str = set::AVAILABILITY_ZONE.form;
const SUBNET_FORM: &str = set::SUBNET_ID.form;
const NAMESPACE_FORM: &str = set::METRICS_NAMESPACE.form;
const PATH_FORM: &str = set::EXTRA_CA_CERTS.form;

/// Whether this run must be able to fail over (the scheduled Lambda function) or may only detect
/// (the CLI). Decides whether `FAILOVER_STATE_MACHINE_ARN` is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    FailoverRequired,
    DetectOnlyAllowed,
}

/// Which HTTP statuses mean "the egress path works".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusPolicy {
    /// Any response below 500: a 4xx still proves packets crossed the NAT.
    Below500,
    /// Any HTTP response at all.
    Any,
    /// Explicit inclusive ranges of accepted codes.
    Ranges(Vec<(u16, u16)>),
}

impl StatusPolicy {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusPolicy::Below500 => status < 500,
            StatusPolicy::Any => true,
            StatusPolicy::Ranges(ranges) => ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status)),
        }
    }
}

/// Everything the engine needs, typed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub targets: Vec<Target>,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    /// The windowed UNHEALTHY rule (`DEGRADED_THRESHOLD` bad of the last `DEGRADED_WINDOW` rounds);
    /// `None` when `DEGRADED_WINDOW=0`.
    pub degraded: Option<WindowRule>,
    pub quorum: usize,
    /// `CANARY_URLS`: probed every round over the NAT instance's own path, in a second watch; empty
    /// when unset (no NAT-path watch).
    pub canaries: Vec<Target>,
    /// `CANARY_QUORUM`: canaries that must answer (with the path semantics) for a canary round to be good.
    pub canary_quorum: usize,
    pub status_policy: StatusPolicy,
    pub ipv4_only: bool,
    /// As given; its form is checked by the AWS adapter (`nat_watchdog_aws::arn`).
    pub state_machine_arn: Option<String>,
    pub availability_zone: String,
    pub subnet_id: String,
    pub namespace: String,
    pub flush_interval: Duration,
    /// `PER_TARGET_METRICS`: also write one EMF document per target (billed per target and AZ).
    pub per_target_metrics: bool,
    pub max_run: Duration,
    pub dedup_window: Duration,
    pub extra_ca_certs: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable}={value:?} is invalid: {reason}; expected {expected}")]
    Invalid { variable: &'static str, value: String, reason: String, expected: &'static str },
    #[error("{variable} is required {when}; expected {expected}")]
    Missing { variable: &'static str, when: &'static str, expected: &'static str },
}

impl ConfigError {
    /// The variable the operator has to fix.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Invalid { variable, .. } | ConfigError::Missing { variable, .. } => variable,
        }
    }
}

impl Config {
    /// Parses and validates a configuration from a map of variables (the binary passes the process
    /// environment, read once; tests pass a map, never `set_var`).
    pub fn from_map(vars: &HashMap<String, String>, mode: Mode) -> Result<Config, ConfigError> {
        let get = |setting: &Setting| setting.raw(vars);

        let targets = parse_targets(&set::CHECK_URLS, set::CHECK_URLS.raw_or_default(vars).unwrap_or(DEFAULT_CHECK_URLS))?;
        let interval = seconds(vars, &set::CONNECTIVITY_CHECK_INTERVAL)?;
        let timeout = seconds(vars, &set::REQUEST_TIMEOUT)?;
        let unhealthy_threshold = count(vars, &set::UNHEALTHY_THRESHOLD)?;
        let healthy_threshold = count(vars, &set::HEALTHY_THRESHOLD)?;
        let degraded = parse_degraded(get(&set::DEGRADED_WINDOW), get(&set::DEGRADED_THRESHOLD), unhealthy_threshold)?;
        let quorum = count(vars, &set::QUORUM)? as usize;
        if quorum > targets.len() {
            return Err(ConfigError::Invalid {
                variable: set::QUORUM.name,
                value: quorum.to_string(),
                reason: format!("only {} target(s) are configured in CHECK_URLS", targets.len()),
                expected: set::QUORUM.form,
            });
        }
        let canaries = match get(&set::CANARY_URLS) {
            Some(raw) => parse_targets(&set::CANARY_URLS, raw)?,
            None => Vec::new(),
        };
        let canary_quorum = count(vars, &set::CANARY_QUORUM)? as usize;
        // The default (1) with no canaries is fine: there is no canary watch. A quorum set on purpose
        // that no round could meet is a mistake either way.
        if canary_quorum > canaries.len() && (!canaries.is_empty() || get(&set::CANARY_QUORUM).is_some()) {
            return Err(ConfigError::Invalid {
                variable: set::CANARY_QUORUM.name,
                value: canary_quorum.to_string(),
                reason: format!("only {} canary URL(s) are configured in CANARY_URLS", canaries.len()),
                expected: set::CANARY_QUORUM.form,
            });
        }
        let status_policy = match get(&set::HTTP_STATUS_POLICY) {
            None => StatusPolicy::Below500,
            Some(v) => parse_policy(v)?,
        };
        let ipv4_only = boolean(vars, &set::IPV4_ONLY)?;
        let state_machine_arn = get(&set::FAILOVER_STATE_MACHINE_ARN).map(str::to_string);
        if mode == Mode::FailoverRequired && state_machine_arn.is_none() {
            return Err(ConfigError::Missing {
                variable: set::FAILOVER_STATE_MACHINE_ARN.name,
                when: "when running as a Lambda function",
                expected: ARN_FORM,
            });
        }
        let availability_zone = match get(&set::AVAILABILITY_ZONE) {
            Some(v) => identifier(v, "AVAILABILITY_ZONE", AZ_FORM, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')?,
            None if state_machine_arn.is_some() => {
                return Err(ConfigError::Missing {
                    variable: "AVAILABILITY_ZONE",
                    when: "when FAILOVER_STATE_MACHINE_ARN is set (the failover is scoped to one AZ)",
                    expected: AZ_FORM,
                })
            }
            None => "unknown".to_string(),
        };
        let subnet_id = match set::SUBNET_ID.raw_or_default(vars) {
            Some(v) => identifier(v, "SUBNET_ID", SUBNET_FORM, 64, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_')?,
            None => "unknown".to_string(),
        };
        let namespace = parse_namespace(set::METRICS_NAMESPACE.raw_or_default(vars).unwrap_or("NatEgressWatchdog"))?;
        let flush_interval = seconds(vars, &set::METRICS_FLUSH_INTERVAL)?;
        let per_target_metrics = boolean(vars, &set::PER_TARGET_METRICS)?;
        let max_run = seconds(vars, &set::MAX_RUN_SECONDS)?;
        let dedup_window = seconds(vars, &set::FAILOVER_DEDUP_WINDOW)?;
        let extra_ca_certs = get(&set::EXTRA_CA_CERTS).map(|v| {
            if v.contains('\0') {
                Err(invalid("EXTRA_CA_CERTS", v, "contains a NUL byte", PATH_FORM))
            } else {
                Ok(PathBuf::from(v))
            }
        });
        let extra_ca_certs = extra_ca_certs.transpose()?;

        if timeout + Duration::from_secs(1) >= max_run {
            return Err(ConfigError::Invalid {
                variable: "REQUEST_TIMEOUT",
                value: format!("{}", timeout.as_secs_f64()),
                reason: format!(
                    "a probe plus the 1 s shutdown reserve must fit in MAX_RUN_SECONDS ({} s)",
                    max_run.as_secs_f64()
                ),
                expected: "a timeout at least 1 s shorter than MAX_RUN_SECONDS",
            });
        }

        Ok(Config {
            targets,
            interval,
            timeout,
            unhealthy_threshold,
            healthy_threshold,
            degraded,
            quorum,
            canaries,
            canary_quorum,
            status_policy,
            ipv4_only,
            state_machine_arn,
            availability_zone,
            subnet_id,
            namespace,
            flush_interval,
            per_target_metrics,
            max_run,
            dedup_window,
            extra_ca_certs,
        })
    }
}

impl Config {
    /// Every setting's effective value, in the order of the settings table, as text in its accepted
    /// form: the value as set, else the default (derived ones computed), else `None`. Validates
    /// like [`Config::from_map`] (what `--print-config` prints).
    pub fn effective_values(
        vars: &HashMap<String, String>,
        mode: Mode,
    ) -> Result<Vec<(&'static str, Option<String>)>, ConfigError> {
        let config = Config::from_map(vars, mode)?;
        Ok(set::ALL
            .iter()
            .map(|s| {
                let value = match (s.raw_or_default(vars), s.default) {
                    (Some(v), _) => Some(v.to_string()),
                    (None, set::Default::Derived(_)) => config.derived(s.name),
                    (None, _) => None,
                };
                (s.name, value)
            })
            .collect())
    }

    /// The value a derived setting took.
    fn derived(&self, name: &str) -> Option<String> {
        match name {
            "DEGRADED_WINDOW" => Some(self.degraded.map_or(0, |w| w.window).to_string()),
            "DEGRADED_THRESHOLD" => self.degraded.map(|w| w.threshold.to_string()),
            _ => None,
        }
    }
}

fn invalid(variable: &'static str, value: &str, reason: impl Into<String>, expected: &'static str) -> ConfigError {
    ConfigError::Invalid { variable, value: value.to_string(), reason: reason.into(), expected }
}

/// A URL list setting (`CHECK_URLS`, `CANARY_URLS`): each entry once, at most 20.
fn parse_targets(setting: &Setting, raw: &str) -> Result<Vec<Target>, ConfigError> {
    let variable = setting.name;
    let form = if variable == set::CANARY_URLS.name { CANARY_URLS_FORM } else { URLS_FORM };
    let mut targets: Vec<Target> = Vec::new();
    for (index, entry) in raw.split(',').enumerate() {
        let entry = entry.trim();
        let target = Target::parse(entry).map_err(|e| {
            let reason = match e {
                TargetError::Empty => format!("entry {} is empty", index + 1),
                other => format!("entry {} ({}): {other}", index + 1, crate::target::redact(entry)),
            };
            invalid(variable, &crate::target::redact(raw), reason, form)
        })?;
        if targets.iter().any(|t| t.url() == target.url()) {
            return Err(invalid(
                variable,
                &crate::target::redact(raw),
                format!("{} is listed twice", target.label()),
                form,
            ));
        }
        targets.push(target);
    }
    if targets.len() > 20 {
        return Err(invalid(variable, &crate::target::redact(raw), "more than 20 URLs", form));
    }
    Ok(targets)
}

/// Reads a `Kind::Seconds` setting (its default through the same parser).
fn seconds(vars: &HashMap<String, String>, setting: &Setting) -> Result<Duration, ConfigError> {
    let (min, max) = match setting.kind {
        Kind::Seconds { min, max } => (min, max),
        _ => (0.0, f64::MAX),
    };
    let Some(raw) = setting.raw_or_default(vars) else { return Ok(Duration::ZERO) };
    let variable = setting.name;
    let value: f64 = raw
        .parse()
        .map_err(|_| invalid(variable, raw, "not a number", SECONDS_FORM))?;
    if !value.is_finite() {
        return Err(invalid(variable, raw, "not a finite number", SECONDS_FORM));
    }
    if value < min || value > max {
        return Err(invalid(variable, raw, format!("outside {min}..={max} seconds"), SECONDS_FORM));
    }
    Ok(Duration::from_secs_f64(value))
}

/// Reads a `Kind::Count` setting (its default through the same parser).
fn count(vars: &HashMap<String, String>, setting: &Setting) -> Result<u32, ConfigError> {
    let variable = setting.name;
    let Some(raw) = setting.raw_or_default(vars) else { return Ok(1) };
    let value: u32 = raw.parse().map_err(|_| invalid(variable, raw, "not a whole number", COUNT_FORM))?;
    if !(1..=1000).contains(&value) {
        return Err(invalid(variable, raw, "outside 1..=1000", COUNT_FORM));
    }
    Ok(value)
}

/// `DEGRADED_WINDOW` / `DEGRADED_THRESHOLD`. The defaults (6 of 30, a fifth of the rounds) grow with
/// `UNHEALTHY_THRESHOLD` so that raising it alone never lets the windowed rule fire on a shorter run
/// of bad rounds than the operator asked for: threshold max(6, 2 × UNHEALTHY_THRESHOLD), window
/// max(30, 5 × threshold) up to 1000 rounds (off by default above UNHEALTHY_THRESHOLD 500, where no
/// window fits). Explicit values must keep that promise too; `DEGRADED_WINDOW=0` turns the rule off.
fn parse_degraded(
    window: Option<&str>,
    threshold: Option<&str>,
    unhealthy_threshold: u32,
) -> Result<Option<WindowRule>, ConfigError> {
    let whole = |variable: &'static str, raw: &str, form: &'static str| -> Result<u32, ConfigError> {
        let value: u32 = raw.parse().map_err(|_| invalid(variable, raw, "not a whole number", form))?;
        if value > 1000 {
            return Err(invalid(variable, raw, "outside 0..=1000", form));
        }
        Ok(value)
    };
    let window = window.map(|raw| whole("DEGRADED_WINDOW", raw, DEGRADED_WINDOW_FORM)).transpose()?;
    let explicit = threshold
        .map(|raw| whole("DEGRADED_THRESHOLD", raw, DEGRADED_THRESHOLD_FORM).map(|t| (raw, t)))
        .transpose()?;
    if window == Some(0) {
        return Ok(None);
    }
    let threshold = match explicit {
        Some((raw, t)) if t <= unhealthy_threshold => {
            return Err(invalid(
                "DEGRADED_THRESHOLD",
                raw,
                format!(
                    "not above UNHEALTHY_THRESHOLD ({unhealthy_threshold}): scattered bad rounds would turn the verdict \
                     UNHEALTHY sooner than consecutive ones"
                ),
                DEGRADED_THRESHOLD_FORM,
            ))
        }
        Some((_, t)) => t,
        None => {
            let t = (2 * unhealthy_threshold).max(6);
            if t > 1000 && window.is_none() {
                return Ok(None);
            }
            t
        }
    };
    let window = window.unwrap_or_else(|| (5 * threshold).clamp(30, 1000));
    if threshold > window {
        return Err(invalid(
            "DEGRADED_WINDOW",
            &window.to_string(),
            format!("smaller than DEGRADED_THRESHOLD ({threshold}), so the rule could never fire"),
            DEGRADED_WINDOW_FORM,
        ));
    }
    Ok(Some(WindowRule { window, threshold }))
}

/// Reads a `Kind::Bool` setting (its default through the same parser).
fn boolean(vars: &HashMap<String, String>, setting: &Setting) -> Result<bool, ConfigError> {
    match setting.raw_or_default(vars).map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => Ok(true),
        Some(v) if matches!(v.as_str(), "false" | "0" | "no") => Ok(false),
        Some(v) => Err(invalid(setting.name, &v, "not a boolean", BOOL_FORM)),
    }
}

fn parse_policy(raw: &str) -> Result<StatusPolicy, ConfigError> {
    let named = match raw.to_ascii_lowercase().as_str() {
        "below-500" => Some(StatusPolicy::Below500),
        "any" => Some(StatusPolicy::Any),
        "2xx" => Some(StatusPolicy::Ranges(vec![(200, 299)])),
        "2xx-3xx" => Some(StatusPolicy::Ranges(vec![(200, 399)])),
        _ => None,
    };
    if let Some(policy) = named {
        return Ok(policy);
    }
    let code = |s: &str| -> Result<u16, ConfigError> {
        match s.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(invalid("HTTP_STATUS_POLICY", raw, format!("{:?} is not an HTTP status code (100-599)", s.trim()), POLICY_FORM)),
        }
    };
    let mut ranges = Vec::new();
    for part in raw.split(',') {
        let range = match part.split_once('-') {
            Some((lo, hi)) => (code(lo)?, code(hi)?),
            None => {
                let c = code(part)?;
                (c, c)
            }
        };
        if range.0 > range.1 {
            return Err(invalid("HTTP_STATUS_POLICY", raw, format!("range {}-{} is reversed", range.0, range.1), POLICY_FORM));
        }
        ranges.push(range);
    }
    Ok(StatusPolicy::Ranges(ranges))
}

fn identifier(
    raw: &str,
    variable: &'static str,
    expected: &'static str,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<String, ConfigError> {
    if raw.len() > max_len {
        return Err(invalid(variable, raw, format!("longer than {max_len} characters"), expected));
    }
    if let Some(c) = raw.chars().find(|&c| !allowed(c)) {
        return Err(invalid(variable, raw, format!("character {c:?} is not allowed"), expected));
    }
    Ok(raw.to_string())
}

fn parse_namespace(raw: &str) -> Result<String, ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " ._#:/-".contains(c);
    let ns = identifier(raw, "METRICS_NAMESPACE", NAMESPACE_FORM, 255, allowed)?;
    if ns.starts_with("AWS/") {
        return Err(invalid("METRICS_NAMESPACE", raw, "the AWS/ prefix is reserved for AWS services", NAMESPACE_FORM));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn cli(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(&vars(pairs), Mode::DetectOnlyAllowed)
    }

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:Failover";

    #[test]
    fn an_empty_or_blank_variable_counts_as_unset() {
        assert_eq!(cli(&[("CHECK_URLS", ""), ("REQUEST_TIMEOUT", "  ")]).unwrap(), cli(&[]).unwrap());
    }

    #[test]
    fn per_target_metrics_are_off_unless_asked_for() {
        assert!(!cli(&[]).unwrap().per_target_metrics);
        assert!(cli(&[("PER_TARGET_METRICS", "true")]).unwrap().per_target_metrics);
        assert!(!cli(&[("PER_TARGET_METRICS", "false")]).unwrap().per_target_metrics);
        let e = cli(&[("PER_TARGET_METRICS", "sometimes")]).unwrap_err();
        assert_eq!(e.variable(), "PER_TARGET_METRICS");
    }

    #[test]
    fn defaults_give_the_detection_target() {
        let c = cli(&[]).unwrap();
        assert_eq!(c.targets.len(), 3);
        assert_eq!(c.interval, Duration::from_millis(400));
        assert_eq!(c.timeout, Duration::from_millis(600));
        assert_eq!((c.unhealthy_threshold, c.healthy_threshold, c.quorum), (3, 3, 1));
        // Worst case for a hard failure: the first bad round starts up to one interval after the
        // injection, two more rounds follow, the last one times out. README "Detection arithmetic"
        // promises 1.8 s, which leaves the closed loop's 2 s egress-downtime goal room for the
        // Failover and the route.
        let worst = c.interval + c.interval * (c.unhealthy_threshold - 1) + c.timeout;
        assert!(worst <= Duration::from_millis(1800), "worst-case detection {worst:?}");
        assert_eq!(c.status_policy, StatusPolicy::Below500);
        assert!(c.ipv4_only);
        assert_eq!(c.state_machine_arn, None);
        assert_eq!(c.namespace, "NatEgressWatchdog");
    }

    #[test]
    fn original_names_are_accepted_with_fractions() {
        let c = cli(&[
            ("CHECK_URLS", " http://a.example/x , https://b.example "),
            ("CONNECTIVITY_CHECK_INTERVAL", "0.5"),
            ("REQUEST_TIMEOUT", "1.25"),
            ("UNHEALTHY_THRESHOLD", "4"),
            ("FAILOVER_STATE_MACHINE_ARN", ARN),
            ("AVAILABILITY_ZONE", "us-east-1a"),
            ("SUBNET_ID", "subnet-0abc"),
            ("QUORUM", "2"),
            ("HTTP_STATUS_POLICY", "200-299,404"),
            ("IPV4_ONLY", "false"),
        ])
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.timeout, Duration::from_millis(1250));
        assert_eq!(c.unhealthy_threshold, 4);
        assert_eq!(c.quorum, 2);
        assert_eq!(c.state_machine_arn.as_deref(), Some(ARN));
        assert!(c.status_policy.accepts(404) && c.status_policy.accepts(204) && !c.status_policy.accepts(403));
        assert!(!c.ipv4_only);
    }

    #[test]
    fn lambda_mode_requires_the_state_machine() {
        let e = Config::from_map(&vars(&[]), Mode::FailoverRequired).unwrap_err();
        assert_eq!(e.variable(), "FAILOVER_STATE_MACHINE_ARN");
    }

    #[test]
    fn failover_requires_an_availability_zone() {
        let e = cli(&[("FAILOVER_STATE_MACHINE_ARN", ARN)]).unwrap_err();
        assert_eq!(e.variable(), "AVAILABILITY_ZONE");
        assert!(e.to_string().contains("us-east-1a"), "{e}");
    }

    /// Each malformed value is rejected with a message naming the variable and the accepted form.
    #[test]
    fn malformed_values_name_the_variable_and_the_form() {
        let cases: &[(&str, &str, &str)] = &[
            ("CHECK_URLS", ",", "empty"),
            ("CHECK_URLS", "http://a.example,,http://b.example", "entry 2 is empty"),
            ("CHECK_URLS", "ftp://a.example", "scheme"),
            ("CHECK_URLS", "not a url", "entry 1"),
            ("CHECK_URLS", "http://a.example/,http://a.example/", "listed twice"),
            ("CHECK_URLS", "http://", "entry 1"),
            ("CONNECTIVITY_CHECK_INTERVAL", "0", "outside"),
            ("CONNECTIVITY_CHECK_INTERVAL", "-1", "outside"),
            ("CONNECTIVITY_CHECK_INTERVAL", "NaN", "finite"),
            ("CONNECTIVITY_CHECK_INTERVAL", "1s", "not a number"),
            ("REQUEST_TIMEOUT", "inf", "finite"),
            ("REQUEST_TIMEOUT", "0", "outside"),
            ("UNHEALTHY_THRESHOLD", "0", "outside"),
            ("HEALTHY_THRESHOLD", "-2", "not a whole number"),
            ("UNHEALTHY_THRESHOLD", "2.5", "not a whole number"),
            ("QUORUM", "4", "only 3 target"),
            ("HTTP_STATUS_POLICY", "sometimes", "not an HTTP status"),
            ("HTTP_STATUS_POLICY", "399-200", "reversed"),
            ("IPV4_ONLY", "maybe", "not a boolean"),
            ("METRICS_NAMESPACE", "AWS/NATGateway", "reserved"),
            ("METRICS_NAMESPACE", "bad{ns}", "not allowed"),
            ("SUBNET_ID", "subnet 1", "not allowed"),
            ("MAX_RUN_SECONDS", "0.5", "outside"),
            ("DEGRADED_WINDOW", "-1", "not a whole number"),
            ("DEGRADED_WINDOW", "1001", "outside"),
            ("DEGRADED_THRESHOLD", "six", "not a whole number"),
            ("CANARY_URLS", "https://162.159.36.1/,ftp://149.112.112.10/", "entry 2"),
            ("CANARY_URLS", "https://162.159.36.1/,https://162.159.36.1/", "listed twice"),
            ("CANARY_URLS", "not a url", "entry 1"),
            ("CANARY_QUORUM", "0", "outside"),
            ("CANARY_QUORUM", "2", "only 0 canary"),
        ];
        for &(variable, value, reason) in cases {
            let err = cli(&[(variable, value)]).expect_err(&format!("{variable}={value} must be rejected"));
            assert_eq!(err.variable(), variable, "{variable}={value}: {err}");
            let text = err.to_string();
            assert!(text.contains(reason), "{variable}={value}: {text:?} should mention {reason:?}");
            assert!(text.contains("expected"), "{text:?} must state the accepted form");
        }
    }

    #[test]
    fn canaries_are_off_unless_configured_and_their_quorum_must_be_reachable() {
        let c = cli(&[]).unwrap();
        assert!(c.canaries.is_empty());
        assert_eq!(c.canary_quorum, 1, "the default, harmless without canaries");
        let c = cli(&[("CANARY_URLS", " https://162.159.36.1/ , https://149.112.112.10/ "), ("CANARY_QUORUM", "2")]).unwrap();
        let labels: Vec<&str> = c.canaries.iter().map(|t| t.label()).collect();
        assert_eq!(labels, ["https://162.159.36.1/", "https://149.112.112.10/"]);
        assert_eq!(c.canary_quorum, 2);
        assert_eq!(c.targets.len(), 3, "canaries never join CHECK_URLS");
        let e = cli(&[("CANARY_URLS", "https://162.159.36.1/,https://149.112.112.10/"), ("CANARY_QUORUM", "3")]).unwrap_err();
        assert_eq!(e.variable(), "CANARY_QUORUM");
        assert!(e.to_string().contains("only 2 canary URL(s)") && e.to_string().contains("expected"), "{e}");
    }

    #[test]
    fn the_windowed_rule_defaults_to_six_of_thirty_and_scales_with_the_threshold() {
        assert_eq!(cli(&[]).unwrap().degraded, Some(WindowRule { window: 30, threshold: 6 }));
        let c = cli(&[("UNHEALTHY_THRESHOLD", "10")]).unwrap();
        assert_eq!(c.degraded, Some(WindowRule { window: 100, threshold: 20 }));
        let c = cli(&[("DEGRADED_THRESHOLD", "8")]).unwrap();
        assert_eq!(c.degraded, Some(WindowRule { window: 40, threshold: 8 }));
        let c = cli(&[("DEGRADED_WINDOW", "50"), ("DEGRADED_THRESHOLD", "10")]).unwrap();
        assert_eq!(c.degraded, Some(WindowRule { window: 50, threshold: 10 }));
        assert_eq!(cli(&[("DEGRADED_WINDOW", "0")]).unwrap().degraded, None);
        // Off when no window can hold the default threshold; and off wins over any threshold.
        assert_eq!(cli(&[("UNHEALTHY_THRESHOLD", "600")]).unwrap().degraded, None);
        assert_eq!(cli(&[("DEGRADED_WINDOW", "0"), ("DEGRADED_THRESHOLD", "2")]).unwrap().degraded, None);
    }

    #[test]
    fn a_windowed_rule_that_would_outrun_the_consecutive_one_is_rejected() {
        let e = cli(&[("UNHEALTHY_THRESHOLD", "4"), ("DEGRADED_THRESHOLD", "4")]).unwrap_err();
        assert_eq!(e.variable(), "DEGRADED_THRESHOLD");
        assert!(e.to_string().contains("UNHEALTHY_THRESHOLD (4)"), "{e}");
        let e = cli(&[("DEGRADED_WINDOW", "5")]).unwrap_err();
        assert_eq!(e.variable(), "DEGRADED_WINDOW");
        assert!(e.to_string().contains("DEGRADED_THRESHOLD (6)"), "{e}");
    }

    #[test]
    fn a_timeout_longer_than_the_run_is_rejected() {
        let e = cli(&[("REQUEST_TIMEOUT", "30"), ("MAX_RUN_SECONDS", "20")]).unwrap_err();
        assert_eq!(e.variable(), "REQUEST_TIMEOUT");
        assert!(e.to_string().contains("MAX_RUN_SECONDS"));
    }

    #[test]
    fn secrets_in_urls_never_reach_the_error_message() {
        let e = cli(&[("CHECK_URLS", "https://user:hunter2@a.example/?token=s3cret,ftp://x")]).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
    }

    #[test]
    fn effective_values_show_defaults_derived_values_and_what_was_set() {
        let values: HashMap<&str, Option<String>> = Config::effective_values(&vars(&[]), Mode::DetectOnlyAllowed).unwrap().into_iter().collect();
        assert_eq!(values.len(), set::ALL.len());
        assert_eq!(values["CONNECTIVITY_CHECK_INTERVAL"].as_deref(), Some("0.4"));
        assert_eq!(values["DEGRADED_THRESHOLD"].as_deref(), Some("6"));
        assert_eq!(values["DEGRADED_WINDOW"].as_deref(), Some("30"));
        assert_eq!(values["CHECK_URLS"].as_deref(), Some(DEFAULT_CHECK_URLS));
        assert_eq!(values["FAILOVER_STATE_MACHINE_ARN"], None);
        assert_eq!((values["CANARY_URLS"].as_deref(), values["CANARY_QUORUM"].as_deref()), (None, Some("1")));
        let values: HashMap<&str, Option<String>> =
            Config::effective_values(&vars(&[("UNHEALTHY_THRESHOLD", "10"), ("REQUEST_TIMEOUT", " 1.5 "), ("QUORUM", "")]), Mode::DetectOnlyAllowed)
                .unwrap()
                .into_iter()
                .collect();
        assert_eq!(values["DEGRADED_THRESHOLD"].as_deref(), Some("20"));
        assert_eq!(values["DEGRADED_WINDOW"].as_deref(), Some("100"));
        assert_eq!(values["REQUEST_TIMEOUT"].as_deref(), Some("1.5"));
        assert_eq!(values["QUORUM"].as_deref(), Some("1"), "blank counts as unset");
        let values: HashMap<&str, Option<String>> =
            Config::effective_values(&vars(&[("UNHEALTHY_THRESHOLD", "600")]), Mode::DetectOnlyAllowed).unwrap().into_iter().collect();
        assert_eq!((values["DEGRADED_WINDOW"].as_deref(), values["DEGRADED_THRESHOLD"].as_deref()), (Some("0"), None));
        assert_eq!(Config::effective_values(&vars(&[("QUORUM", "x")]), Mode::DetectOnlyAllowed).unwrap_err().variable(), "QUORUM");
    }

    #[test]
    fn named_status_policies() {
        let p = |v| parse_policy(v).unwrap();
        assert!(p("below-500").accepts(404) && !p("below-500").accepts(503));
        assert!(p("any").accepts(503));
        assert!(p("2xx").accepts(204) && !p("2xx").accepts(301));
        assert!(p("2xx-3xx").accepts(301) && !p("2xx-3xx").accepts(404));
    }
}
