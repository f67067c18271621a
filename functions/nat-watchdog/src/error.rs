//! Every way the command can fail, each printed as one line, each with its exit code.

/// Exit codes (documented in `--help` and the README).
pub mod exit {
    /// `status`: every AZ egresses through its NAT instance, checkers alive, no alarm, no pause.
    /// Other commands: done.
    pub const OK: u8 = 0;
    /// `status`: an AZ needs attention (degraded, on a NAT gateway, paused, checker silent, alarm).
    /// `failover`/`fallback`: the execution did not succeed.
    pub const ATTENTION: u8 = 1;
    /// The command line is wrong, or names a stack or AZ that does not exist.
    pub const USAGE: u8 = 2;
    /// AWS could not be asked: no credentials, access denied, endpoint not answering, API error.
    pub const AWS: u8 = 3;
    /// `failover`/`fallback`/`pause` not confirmed at the prompt: nothing was changed.
    pub const NOT_CONFIRMED: u8 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0} (see nat-watchdog --help)")]
    Usage(String),
    #[error("unknown stack {stack:?}: no such CloudFormation stack in this account and region")]
    UnknownStack { stack: String },
    #[error("stack {stack:?} has no output {output}; pass {flag}")]
    MissingOutput { stack: String, output: &'static str, flag: &'static str },
    #[error("no deployment given: pass --stack NAME (or {flag})")]
    NoDeployment { flag: &'static str },
    #[error("unknown AZ {az:?}: no route table tagged nat-watchdog:az={az}{scope}; managed AZs: {known}")]
    UnknownAz { az: String, scope: String, known: String },
    #[error("no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    NoCredentials,
    #[error("no AWS region: set AWS_REGION (or a region in the AWS_PROFILE)")]
    NoRegion,
    #[error("access denied: this identity may not call {action} ({message})")]
    AccessDenied { action: &'static str, message: String },
    #[error("AWS endpoint not answering ({action}): {detail}")]
    Unreachable { action: &'static str, detail: String },
    #[error("{action} failed: {code}: {message}")]
    Aws { action: &'static str, code: String, message: String },
    #[error("execution {name} did not end within {waited_secs} s; it is still running: {arn}")]
    StillRunning { name: String, arn: String, waited_secs: u64 },
    #[error("not confirmed: nothing was changed")]
    NotConfirmed,
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::UnknownStack { .. } | Error::MissingOutput { .. } | Error::NoDeployment { .. } | Error::UnknownAz { .. } => {
                exit::USAGE
            }
            Error::NoCredentials
            | Error::NoRegion
            | Error::AccessDenied { .. }
            | Error::Unreachable { .. }
            | Error::Aws { .. }
            | Error::StillRunning { .. } => exit::AWS,
            Error::NotConfirmed => exit::NOT_CONFIRMED,
        }
    }

    /// Classifies what an SDK call returned into one of the lines above. `code`/`message` come
    /// from the service's error metadata; `detail` is the full error chain for transport failures.
    pub fn from_sdk(action: &'static str, kind: SdkFailure) -> Error {
        match kind {
            SdkFailure::Service { code, message } => {
                let message = if message.is_empty() { "no message".to_string() } else { message };
                if matches!(
                    code.as_str(),
                    "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess" | "AuthorizationError"
                ) {
                    Error::AccessDenied { action, message }
                } else if matches!(
                    code.as_str(),
                    "InvalidClientTokenId" | "UnrecognizedClientException" | "ExpiredToken" | "ExpiredTokenException" | "AuthFailure"
                ) {
                    Error::Aws { action, code, message: format!("{message} (check the credentials of AWS_PROFILE)") }
                } else {
                    Error::Aws { action, code, message }
                }
            }
            SdkFailure::Transport { detail } => {
                let lower = detail.to_ascii_lowercase();
                if lower.contains("credential") {
                    Error::NoCredentials
                } else if lower.contains("missing signing region") || lower.contains("no region") {
                    Error::NoRegion
                } else {
                    Error::Unreachable { action, detail: first_line(&detail) }
                }
            }
        }
    }
}

/// The two shapes an SDK failure takes once stripped of SDK types.
#[derive(Debug, Clone, PartialEq)]
pub enum SdkFailure {
    /// The service answered with an error.
    Service { code: String, message: String },
    /// No answer: connection refused, timeout, no credentials, no region.
    Transport { detail: String },
}

fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    if line.len() > 300 {
        let cut = (0..=300).rev().find(|i| line.is_char_boundary(*i)).unwrap_or(0);
        format!("{}…", &line[..cut])
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_the_action_and_exits_3() {
        let e = Error::from_sdk(
            "ec2:DescribeRouteTables",
            SdkFailure::Service { code: "UnauthorizedOperation".into(), message: "You are not authorized".into() },
        );
        assert_eq!(e.to_string(), "access denied: this identity may not call ec2:DescribeRouteTables (You are not authorized)");
        assert_eq!(e.exit_code(), exit::AWS);
    }

    #[test]
    fn missing_credentials_and_dead_endpoints_are_told_apart() {
        let creds = Error::from_sdk("x", SdkFailure::Transport { detail: "dispatch failure: no credentials in the provider chain".into() });
        assert!(matches!(creds, Error::NoCredentials));
        let dead = Error::from_sdk("cloudformation:DescribeStacks", SdkFailure::Transport { detail: "io error: Connection refused\nmore".into() });
        assert_eq!(dead.to_string(), "AWS endpoint not answering (cloudformation:DescribeStacks): io error: Connection refused");
    }

    #[test]
    fn a_missing_region_is_named() {
        let detail = "dispatch failure: other: missing signing region (DispatchFailure(DispatchFailure { source: ConnectorError { kind: Other(None), source: MissingSigningRegion, connection: Unknown } }))";
        let e = Error::from_sdk("ec2:DescribeRouteTables", SdkFailure::Transport { detail: detail.into() });
        assert!(matches!(e, Error::NoRegion), "{e}");
    }

    #[test]
    fn every_message_is_one_line() {
        let e = Error::from_sdk("x", SdkFailure::Transport { detail: "a\nb\nc".into() });
        assert!(!e.to_string().contains('\n'));
    }
}
