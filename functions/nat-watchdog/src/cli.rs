//! The command line, parsed by hand into a typed [`Invocation`]; bad input is an `Error::Usage`
//! naming what was wrong.

use std::time::Duration;

use crate::error::Error;

pub const HELP: &str = "\
nat-watchdog: on-call command of the NAT egress watchdog

USAGE
  nat-watchdog [DEPLOYMENT] [--output table|json] COMMAND [ARGS]

COMMANDS
  status                                    where each AZ's 0.0.0.0/0 goes, probes (15 min), checkers,
                                            NAT-instance path, recovery, executions, alarms in ALARM,
                                            pauses, and what to do next per AZ
  incidents [--since 24h]                   one line per Failover: outage, detection, route change, fallback
  failover --az AZ [--yes] [--reason TEXT]  start the Failover state machine for AZ, wait, print the result
  fallback --az AZ [--yes] [--reason TEXT]  start the Fallback state machine for AZ, wait, print the result
  pause --az AZ --for DURATION [--reason TEXT] [--yes]
                                            automatic failover/fallback/replacement leave AZ alone until then
  resume --az AZ                            lift the pause

DEPLOYMENT (flags override the stack's outputs)
  --stack NAME          CloudFormation stack: outputs FailoverStateMachineArn, FallbackStateMachineArn,
                        VpcId, MetricsNamespace (and RecoveryStateMachineArn when deployed); alarms NAME-*
  --vpc VPC_ID          only route tables of this VPC
  --failover-arn ARN    --fallback-arn ARN    --namespace NAMESPACE (default NatEgressWatchdog)
  AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL are honoured.

DURATION  30s, 90m, 2h, 1d, 1h30m

EXIT CODES
  0  status: every AZ on its NAT instance, checkers alive, no alarm, no pause; other commands: done
  1  status: an AZ needs attention (degraded, on a NAT gateway, paused, checker silent, NAT-instance
     path unhealthy, automatic fallback suspended, alarm in ALARM);
     failover/fallback: the execution did not succeed
  2  usage error, unknown stack, unknown AZ
  3  AWS error: no credentials, access denied, endpoint not answering, API error
  4  not confirmed at the prompt: nothing changed
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentFlags {
    pub stack: Option<String>,
    pub vpc: Option<String>,
    pub failover_arn: Option<String>,
    pub fallback_arn: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    Failover,
    Fallback,
}

impl Machine {
    pub fn as_str(self) -> &'static str {
        match self {
            Machine::Failover => "Failover",
            Machine::Fallback => "Fallback",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Status,
    Incidents { since: Duration },
    Start { machine: Machine, az: String, yes: bool, reason: Option<String> },
    Pause { az: String, duration: Duration, reason: Option<String>, yes: bool },
    Resume { az: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub deployment: DeploymentFlags,
    pub output: Output,
    pub command: Command,
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, Error> {
    let mut deployment = DeploymentFlags::default();
    let mut output = Output::Table;
    let mut command: Option<String> = None;
    let (mut az, mut since, mut duration, mut reason, mut yes) = (None, None, None, None, false);
    let mut help = false;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, Error> {
            match inline.clone().or_else(|| it.next()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(Error::Usage(format!("{name} needs a value"))),
            }
        };
        match flag.as_str() {
            "-h" | "--help" | "help" => help = true,
            "--stack" => deployment.stack = Some(value("--stack")?),
            "--vpc" => deployment.vpc = Some(value("--vpc")?),
            "--failover-arn" => deployment.failover_arn = Some(value("--failover-arn")?),
            "--fallback-arn" => deployment.fallback_arn = Some(value("--fallback-arn")?),
            "--namespace" => deployment.namespace = Some(value("--namespace")?),
            "--output" | "-o" => {
                output = match value("--output")?.as_str() {
                    "table" => Output::Table,
                    "json" => Output::Json,
                    other => return Err(Error::Usage(format!("--output {other:?}: expected table or json"))),
                }
            }
            "--az" => az = Some(value("--az")?),
            "--since" => since = Some(duration_arg("--since", &value("--since")?)?),
            "--for" => duration = Some(duration_arg("--for", &value("--for")?)?),
            "--reason" => reason = Some(value("--reason")?),
            "--yes" | "-y" => yes = true,
            s if s.starts_with('-') => return Err(Error::Usage(format!("unknown flag {s}"))),
            s => {
                if let Some(c) = &command {
                    return Err(Error::Usage(format!("unexpected argument {s:?} after command {c}")));
                }
                command = Some(s.to_string());
            }
        }
    }
    if help {
        return Ok(Invocation { deployment, output, command: Command::Help });
    }
    let name = command.ok_or_else(|| Error::Usage("no command given: status, incidents, failover, fallback, pause or resume".into()))?;
    let need_az = |az: Option<String>| az.ok_or_else(|| Error::Usage(format!("{name} needs --az AZ")));
    let only = |allowed: &[&str]| -> Result<(), Error> {
        let given = [
            ("--az", az.is_some()),
            ("--since", since.is_some()),
            ("--for", duration.is_some()),
            ("--reason", reason.is_some()),
            ("--yes", yes),
        ];
        match given.iter().find(|(f, set)| *set && !allowed.contains(f)) {
            Some((f, _)) => Err(Error::Usage(format!("{f} does not apply to {name}"))),
            None => Ok(()),
        }
    };
    let command = match name.as_str() {
        "status" => {
            only(&[])?;
            Command::Status
        }
        "incidents" => {
            only(&["--since"])?;
            Command::Incidents { since: since.unwrap_or(Duration::from_secs(24 * 3600)) }
        }
        "failover" | "fallback" => {
            only(&["--az", "--yes", "--reason"])?;
            let machine = if name == "failover" { Machine::Failover } else { Machine::Fallback };
            Command::Start { machine, az: need_az(az)?, yes, reason }
        }
        "pause" => {
            only(&["--az", "--for", "--reason", "--yes"])?;
            let duration = duration.ok_or_else(|| Error::Usage("pause needs --for DURATION (e.g. 2h)".into()))?;
            Command::Pause { az: need_az(az)?, duration, reason, yes }
        }
        "resume" => {
            only(&["--az"])?;
            Command::Resume { az: need_az(az)? }
        }
        other => return Err(Error::Usage(format!("unknown command {other:?}"))),
    };
    Ok(Invocation { deployment, output, command })
}

fn duration_arg(flag: &str, raw: &str) -> Result<Duration, Error> {
    parse_duration(raw).ok_or_else(|| Error::Usage(format!("{flag} {raw:?}: expected a duration such as 30s, 90m, 2h, 1d or 1h30m")))
}

/// `30s`, `90m`, `2h`, `1d`, `1h30m`: positive, at most 366 days.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in raw.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    if !digits.is_empty() || total == 0 || total > 366 * 86_400 {
        return None;
    }
    Some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Invocation, Error> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn status_with_a_stack_and_json_output() {
        let i = p("--stack demo status --output json").unwrap();
        assert_eq!(i.command, Command::Status);
        assert_eq!(i.output, Output::Json);
        assert_eq!(i.deployment.stack.as_deref(), Some("demo"));
    }

    #[test]
    fn incidents_default_to_a_day_and_take_since() {
        assert_eq!(p("incidents").unwrap().command, Command::Incidents { since: Duration::from_secs(86_400) });
        assert_eq!(p("incidents --since=90m").unwrap().command, Command::Incidents { since: Duration::from_secs(5400) });
    }

    #[test]
    fn failover_needs_an_az_and_takes_yes() {
        assert!(matches!(p("failover"), Err(Error::Usage(m)) if m == "failover needs --az AZ"));
        assert_eq!(
            p("fallback --az us-east-1a -y").unwrap().command,
            Command::Start { machine: Machine::Fallback, az: "us-east-1a".into(), yes: true, reason: None }
        );
    }

    #[test]
    fn pause_needs_a_duration() {
        assert!(matches!(p("pause --az a"), Err(Error::Usage(m)) if m.contains("--for")));
        assert!(matches!(p("pause --az a --for 5x"), Err(Error::Usage(m)) if m.contains("\"5x\"")));
        let c = p("pause --az a --for 1h30m --reason patching").unwrap().command;
        assert_eq!(c, Command::Pause { az: "a".into(), duration: Duration::from_secs(5400), reason: Some("patching".into()), yes: false });
    }

    #[test]
    fn wrong_input_is_named() {
        assert!(matches!(p("status --since 1h"), Err(Error::Usage(m)) if m == "--since does not apply to status"));
        assert!(matches!(p("stats"), Err(Error::Usage(m)) if m.contains("\"stats\"")));
        assert!(matches!(p("status --output yaml"), Err(Error::Usage(m)) if m.contains("yaml")));
        assert!(matches!(p("status --bogus"), Err(Error::Usage(m)) if m.contains("--bogus")));
        assert!(matches!(p(""), Err(Error::Usage(_))));
        assert!(matches!(p("status --stack"), Err(Error::Usage(m)) if m == "--stack needs a value"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1d2h"), Some(Duration::from_secs(93_600)));
        for bad in ["", "0s", "h", "10", "-1h", "400d", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
