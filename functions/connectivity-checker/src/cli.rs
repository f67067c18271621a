//! The command line: the same engine, detect-only unless a state machine is configured.

use std::time::Duration;

use nat_watchdog_core::settings;

/// `--help`: the options, then every variable of the settings table with its doc and default.
pub fn usage() -> String {
    format!(
        "\
connectivity-checker - NAT egress watchdog

USAGE:
    connectivity-checker [--duration SECONDS]
    connectivity-checker --print-config

Probes CHECK_URLS on a fixed cadence and reports egress health. Runs until SIGINT/SIGTERM, or for
SECONDS when --duration is given. stdout carries CloudWatch EMF documents only, one per line; logs
go to stderr.

OPTIONS:
    --duration SECONDS   stop after SECONDS (fractions allowed)
    --print-config       print every variable's effective value as one JSON object and exit
    -h, --help           print this help
    -V, --version        print the version

ENVIRONMENT (see docs/CONTRACTS.md; a variable set to an empty string counts as unset):
{}
EXIT CODES: 0 clean stop, 2 bad configuration or usage.",
        settings::help_text()
    )
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run { duration: Option<Duration> },
    PrintConfig,
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("--duration needs a value: a number of seconds such as 60 or 0.5")]
    MissingDuration,
    #[error("--duration {0:?} is invalid: expected a positive number of seconds (at most 31536000)")]
    BadDuration(String),
    #[error("unknown argument {0:?}; run with --help")]
    Unknown(String),
}

pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut duration = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--print-config" => return Ok(Command::PrintConfig),
            "--duration" => args.next().ok_or(UsageError::MissingDuration)?,
            other if other.starts_with("--duration=") => other["--duration=".len()..].to_string(),
            other => return Err(UsageError::Unknown(other.to_string())),
        };
        let secs: f64 = value.trim().parse().map_err(|_| UsageError::BadDuration(value.clone()))?;
        if !secs.is_finite() || secs <= 0.0 || secs > 31_536_000.0 {
            return Err(UsageError::BadDuration(value));
        }
        duration = Some(Duration::from_secs_f64(secs));
    }
    Ok(Command::Run { duration })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]), Ok(Command::Run { duration: None }));
        assert_eq!(parse(&["--duration", "1.5"]), Ok(Command::Run { duration: Some(Duration::from_millis(1500)) }));
        assert_eq!(parse(&["--duration=60"]), Ok(Command::Run { duration: Some(Duration::from_secs(60)) }));
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
        assert_eq!(parse(&["--print-config"]), Ok(Command::PrintConfig));
        assert_eq!(parse(&["--duration"]), Err(UsageError::MissingDuration));
        for bad in ["0", "-3", "NaN", "inf", "soon"] {
            assert_eq!(parse(&["--duration", bad]), Err(UsageError::BadDuration(bad.into())), "{bad}");
        }
        assert_eq!(parse(&["--verbose"]), Err(UsageError::Unknown("--verbose".into())));
    }

    #[test]
    fn help_lists_every_variable_of_the_settings_table() {
        let help = usage();
        for s in settings::ALL {
            assert!(help.contains(s.name), "--help lacks {}", s.name);
        }
        assert!(help.contains("DEGRADED_WINDOW") && help.contains("MAX_RUN_SECONDS"));
    }
}
