//! The settings table: every environment variable the checker reads, with its default, accepted
//! form, kind (which parser reads it) and one-line doc, in one place. [`Config`](crate::Config) reads
//! through these entries; `--help`, `--print-config`, the table in docs/CONTRACTS.md and the
//! property tests' list of names are generated from [`ALL`], and a drift test checks the infra
//! parameter list (infra/checker.yaml) against [`Setting::infra`].
//!
//! A variable set to an empty (or all-blank) string counts as unset: `CHECK_URLS=` runs the defaults.
//! This is how CloudFormation's optional parameters arrive, and it keeps `FOO=` in a shell harmless.

use std::collections::HashMap;

/// Where a variable's value comes from when it is unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// This value, in the accepted form (parsed by the same parser as a set value).
    Value(&'static str),
    /// Computed from other settings; the text says how.
    Derived(&'static str),
    /// No value: the feature is off, or the variable is required where the text says.
    Unset(&'static str),
}

/// How a value is read. `Config` parses each kind with one function, bounds from here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Seconds, fractions allowed, within `min..=max`.
    Seconds { min: f64, max: f64 },
    /// A whole number from 1 to 1000.
    Count,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// Anything else: a parser of its own in `config.rs` (or, for the ARN, in the AWS adapter).
    Text,
}

/// One environment variable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    pub name: &'static str,
    pub default: Default,
    pub kind: Kind,
    /// The accepted form, as error messages state it ("expected …").
    pub form: &'static str,
    /// One line: what it does.
    pub doc: &'static str,
    /// Whether infra/checker.yaml passes it to the function (a drift test keeps both sides equal).
    pub infra: bool,
}

impl Setting {
    /// The value as set, trimmed; `None` when unset or blank.
    pub fn raw<'a>(&self, vars: &'a HashMap<String, String>) -> Option<&'a str> {
        vars.get(self.name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// The value as set, or the default value when there is one.
    pub fn raw_or_default<'a>(&self, vars: &'a HashMap<String, String>) -> Option<&'a str> {
        match (self.raw(vars), self.default) {
            (Some(v), _) => Some(v),
            (None, Default::Value(d)) => Some(d),
            (None, _) => None,
        }
    }
}

impl Setting {
    const fn new(name: &'static str, default: Default, kind: Kind, form: &'static str, doc: &'static str) -> Setting {
        Setting { name, default, kind, form, doc, infra: false }
    }

    /// Marks the setting as passed by infra/checker.yaml.
    const fn infra(self) -> Setting {
        Setting { infra: true, ..self }
    }

    /// States a narrower accepted form than the kind's.
    const fn form(self, form: &'static str) -> Setting {
        Setting { form, ..self }
    }
}

const fn text(name: &'static str, default: Default, form: &'static str, doc: &'static str) -> Setting {
    Setting::new(name, default, Kind::Text, form, doc)
}

const fn seconds(name: &'static str, default: &'static str, min: f64, max: f64, doc: &'static str) -> Setting {
    Setting::new(name, Default::Value(default), Kind::Seconds { min, max }, SECONDS_FORM, doc)
}

const fn count(name: &'static str, default: &'static str, doc: &'static str) -> Setting {
    Setting::new(name, Default::Value(default), Kind::Count, COUNT_FORM, doc)
}

const fn boolean(name: &'static str, default: &'static str, doc: &'static str) -> Setting {
    Setting::new(name, Default::Value(default), Kind::Bool, BOOL_FORM, doc)
}

/// `NAME: constructor(default, …, doc) [.form(…)] [.infra()];` — one line per variable; the
/// variable's name is the constant's.
macro_rules! settings {
    ($( $(#[$meta:meta])* $ident:ident: $ctor:ident($($arg:expr),* $(,)?) $(.$modifier:ident($($marg:expr),*))*; )+) => {
        $( $(#[$meta])* pub const $ident: Setting = $ctor(stringify!($ident), $($arg),*)$(.$modifier($($marg),*))*; )+
        /// Every setting, in the order of `--help` and docs/CONTRACTS.md.
        pub const ALL: &[Setting] = &[$($ident),+];
    };
}

pub const SECONDS_FORM: &str = "a number of seconds (fractions allowed, e.g. 0.5)";
pub const COUNT_FORM: &str = "a whole number from 1 to 1000";
pub const BOOL_FORM: &str = "true or false";

/// Public, diverse, CDN-fronted endpoints that answer a tiny response quickly.
pub const DEFAULT_CHECK_URLS: &str =
    "https://www.google.com/generate_204,https://cloudflare.com/cdn-cgi/trace,https://aws.amazon.com/favicon.ico";

settings! {
    CHECK_URLS: text(Default::Value(DEFAULT_CHECK_URLS), "comma-separated http:// or https:// URLs, each listed once", "URLs to probe each round (at most 20)").infra();
    CONNECTIVITY_CHECK_INTERVAL: seconds("0.4", 0.05, 300.0, "seconds between round starts").infra();
    REQUEST_TIMEOUT: seconds("0.6", 0.05, 60.0, "seconds one probe may take: DNS + TCP + TLS + the response head (the body is never read)").infra();
    UNHEALTHY_THRESHOLD: count("3", "consecutive bad rounds before UNHEALTHY (and the failover trigger)").infra();
    HEALTHY_THRESHOLD: count("3", "consecutive good rounds before HEALTHY again").infra();
    DEGRADED_WINDOW: text(Default::Derived("30, or 5 × DEGRADED_THRESHOLD when larger, at most 1000"), "a number of rounds from 0 (rule off) to 1000, at least DEGRADED_THRESHOLD", "rounds the intermittent-failure rule looks back over (counted since the verdict last turned HEALTHY); 0 turns the rule off").infra();
    DEGRADED_THRESHOLD: text(Default::Derived("6, or 2 × UNHEALTHY_THRESHOLD when larger"), "a whole number of bad rounds above UNHEALTHY_THRESHOLD and at most DEGRADED_WINDOW", "bad rounds among the last DEGRADED_WINDOW that also make UNHEALTHY").infra();
    QUORUM: count("1", "targets that must succeed for a round to be good").form("a whole number from 1 to the number of CHECK_URLS").infra();
    CANARY_URLS: text(Default::Unset("(none): no NAT-instance path watch"), "comma-separated http:// or https:// URLs, each listed once", "canaries probed each round over the NAT instance's own path (/32 routes): their verdict is the NatPathUnhealthy metric, never a failover; a canary that answers at all (TLS error, any HTTP status) proves the path (at most 20)").infra();
    CANARY_QUORUM: count("1", "canaries that must answer for a canary round to be good").form("a whole number from 1 to the number of CANARY_URLS");
    HTTP_STATUS_POLICY: text(Default::Value("below-500"), "below-500, any, 2xx, 2xx-3xx, or a comma-separated list of codes and ranges such as 200-299,404", "HTTP statuses that prove the path works (a 404 still crossed the NAT)");
    IPV4_ONLY: boolean("true", "probe only the A records (IPv6 egress does not cross a NAT instance)");
    /// Its form is checked by the failover backend's adapter (`nat_watchdog_aws::arn`), not here.
    FAILOVER_STATE_MACHINE_ARN: text(Default::Unset("(none): required in Lambda mode, optional in CLI mode (detect-only)"), "arn:<partition>:states:<region>:<12-digit account>:stateMachine:<name>", "the Failover state machine to start when the verdict turns UNHEALTHY").infra();
    AVAILABILITY_ZONE: text(Default::Unset("(none): required whenever FAILOVER_STATE_MACHINE_ARN is set"), "an availability zone name or id such as us-east-1a or use1-az1", "the AZ this checker speaks for").infra();
    SUBNET_ID: text(Default::Value("unknown"), "a subnet id such as subnet-0123456789abcdef0 (letters, digits, '-', '_')", "the subnet this checker speaks for").infra();
    METRICS_NAMESPACE: text(Default::Value("NatEgressWatchdog"), "1-255 characters of [a-zA-Z0-9 ._#:/-], not starting with AWS/", "CloudWatch namespace of the EMF metrics").infra();
    METRICS_FLUSH_INTERVAL: seconds("5", 1.0, 60.0, "seconds between EMF flushes (also flushed on every verdict change and at the end)").infra();
    PER_TARGET_METRICS: boolean("false", "also write one EMF document per target ([AvailabilityZone, Target]; each target adds billed custom metrics, see docs/COST.md)");
    MAX_RUN_SECONDS: seconds("60", 1.0, 900.0, "Lambda: run time when the invocation deadline is missing or nonsensical");
    FAILOVER_DEDUP_WINDOW: seconds("60", 1.0, 86_400.0, "outage starts of one AZ within one window share one base execution name (a name already used by an earlier incident gets a -2, -3 … suffix)");
    EXTRA_CA_CERTS: text(Default::Unset("(none)"), "the path of a PEM file with one or more certificates", "PEM file of CAs trusted in addition to the built-in roots");
}

/// Looks a setting up by its variable name.
pub fn by_name(name: &str) -> Option<&'static Setting> {
    ALL.iter().find(|s| s.name == name)
}

fn default_text(s: &Setting) -> String {
    match s.default {
        Default::Value(v) => format!("`{v}`"),
        Default::Derived(how) => how.to_string(),
        Default::Unset(how) => how.to_string(),
    }
}

fn form_text(s: &Setting) -> String {
    match s.kind {
        Kind::Seconds { min, max } => format!("{}, {min}–{max}", s.form),
        _ => s.form.to_string(),
    }
}

/// The Markdown table docs/CONTRACTS.md carries (a drift test compares them).
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | accepted form | meaning |\n|---|---|---|---|\n");
    for s in ALL {
        out.push_str(&format!("| `{}` | {} | {} | {} |\n", s.name, default_text(s), form_text(s), s.doc));
    }
    out
}

/// The variables part of `--help`.
pub fn help_text() -> String {
    let width = ALL.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for s in ALL {
        let default = match s.default {
            Default::Value(v) if v.len() > 24 => "default: three public URLs".to_string(),
            Default::Value(v) => format!("default: {v}"),
            Default::Derived(how) | Default::Unset(how) => format!("default: {how}"),
        };
        out.push_str(&format!("    {:width$}  {} ({default})\n", s.name, s.doc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_upper_snake_case() {
        for (i, s) in ALL.iter().enumerate() {
            assert!(s.name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'), "{}", s.name);
            assert!(ALL[i + 1..].iter().all(|o| o.name != s.name), "{} twice", s.name);
            assert_eq!(by_name(s.name), Some(s));
        }
    }

    #[test]
    fn blank_counts_as_unset() {
        let vars: HashMap<String, String> =
            [("CHECK_URLS", ""), ("QUORUM", "  "), ("UNHEALTHY_THRESHOLD", " 4 ")].map(|(k, v)| (k.into(), v.into())).into();
        assert_eq!(CHECK_URLS.raw(&vars), None);
        assert_eq!(CHECK_URLS.raw_or_default(&vars), Some(DEFAULT_CHECK_URLS));
        assert_eq!(QUORUM.raw_or_default(&vars), Some("1"));
        assert_eq!(UNHEALTHY_THRESHOLD.raw(&vars), Some("4"));
        assert_eq!(EXTRA_CA_CERTS.raw_or_default(&vars), None);
    }

    #[test]
    fn every_variable_is_in_help_and_the_table() {
        let (help, table) = (help_text(), markdown_table());
        for s in ALL {
            assert!(help.contains(s.name) && table.contains(&format!("`{}`", s.name)), "{}", s.name);
        }
        assert!(table.contains("the body is never read"), "REQUEST_TIMEOUT: the probe reads the head only");
    }
}
