//! The Failover state machine's ARN, checked at start-up (`FAILOVER_STATE_MACHINE_ARN`): a typo
//! fails the deployment with one line naming the variable, not the first incident.

use nat_watchdog_core::settings::FAILOVER_STATE_MACHINE_ARN;
use nat_watchdog_core::ConfigError;

/// A syntactically valid Step Functions state machine ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateMachineArn(String);

impl StateMachineArn {
    /// Checks `raw` (as set in `FAILOVER_STATE_MACHINE_ARN`); the error names that variable.
    pub fn parse(raw: &str) -> Result<StateMachineArn, ConfigError> {
        let bad = |reason: &str| ConfigError::Invalid {
            variable: FAILOVER_STATE_MACHINE_ARN.name,
            value: raw.to_string(),
            reason: reason.to_string(),
            expected: FAILOVER_STATE_MACHINE_ARN.form,
        };
        let parts: Vec<&str> = raw.splitn(7, ':').collect();
        if parts.len() != 7 || parts[0] != "arn" {
            return Err(bad("not an ARN with 7 ':'-separated parts"));
        }
        if !parts[1].starts_with("aws") {
            return Err(bad("unknown partition"));
        }
        if parts[2] != "states" {
            return Err(bad("not a Step Functions (states) ARN"));
        }
        if parts[3].is_empty() || !parts[3].chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(bad("missing or malformed region"));
        }
        if parts[4].len() != 12 || !parts[4].chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("the account id is not 12 digits"));
        }
        if parts[5] != "stateMachine" {
            return Err(bad("not a stateMachine ARN (an execution or activity ARN?)"));
        }
        let name = parts[6];
        if name.is_empty() || name.len() > 80 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad("the state machine name must be 1-80 of [A-Za-z0-9_-]"));
        }
        Ok(StateMachineArn(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_machine_arn_is_accepted_as_given() {
        let arn = "arn:aws:states:us-east-1:123456789012:stateMachine:Failover";
        assert_eq!(StateMachineArn::parse(arn).unwrap().as_str(), arn);
        assert!(StateMachineArn::parse("arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:F_1").is_ok());
    }

    /// Each malformed value is rejected with a message naming the variable and the accepted form.
    #[test]
    fn malformed_arns_name_the_variable_and_the_form() {
        for (value, reason) in [
            ("arn:aws:states:us-east-1:123:stateMachine:x", "12 digits"),
            ("arn:aws:lambda:us-east-1:123456789012:function:x", "states"),
            ("Failover", "7"),
            ("arn:aws:states:us-east-1:123456789012:execution:Failover:x", "stateMachine"),
        ] {
            let err = StateMachineArn::parse(value).expect_err(value);
            assert_eq!(err.variable(), "FAILOVER_STATE_MACHINE_ARN", "{value}: {err}");
            let text = err.to_string();
            assert!(text.contains(reason), "{value}: {text:?} should mention {reason:?}");
            assert!(text.contains("expected"), "{text:?} must state the accepted form");
        }
    }
}
