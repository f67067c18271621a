//! Which deployment the command speaks of: a stack's outputs, overridden by flags.

use serde::Serialize;

use crate::cli::{DeploymentFlags, Machine};
use crate::error::Error;
use crate::ports::StackOutputs;
use crate::vocab::DEFAULT_NAMESPACE;

/// Output names of infra/template.yaml.
pub const OUT_FAILOVER: &str = "FailoverStateMachineArn";
pub const OUT_FALLBACK: &str = "FallbackStateMachineArn";
pub const OUT_VPC: &str = "VpcId";
pub const OUT_NAMESPACE: &str = "MetricsNamespace";
/// Only when the recovery (automatic fallback and repair) is deployed.
pub const OUT_RECOVERY: &str = "RecoveryStateMachineArn";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub stack: Option<String>,
    pub vpc: Option<String>,
    pub failover_arn: Option<String>,
    pub fallback_arn: Option<String>,
    /// The recovery state machine (stack output only; absent when the recovery is not deployed).
    pub recovery_arn: Option<String>,
    pub namespace: String,
}

impl Deployment {
    pub async fn resolve(flags: &DeploymentFlags, stacks: &impl StackOutputs) -> Result<Deployment, Error> {
        let outputs = match &flags.stack {
            Some(stack) => stacks.outputs(stack).await?,
            None => Default::default(),
        };
        let pick = |flag: &Option<String>, key: &str| flag.clone().or_else(|| outputs.get(key).filter(|v| !v.is_empty()).cloned());
        Ok(Deployment {
            stack: flags.stack.clone(),
            vpc: pick(&flags.vpc, OUT_VPC),
            failover_arn: pick(&flags.failover_arn, OUT_FAILOVER),
            fallback_arn: pick(&flags.fallback_arn, OUT_FALLBACK),
            recovery_arn: pick(&None, OUT_RECOVERY),
            namespace: pick(&flags.namespace, OUT_NAMESPACE).unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
        })
    }

    pub fn machine_arn(&self, machine: Machine) -> Option<&str> {
        match machine {
            Machine::Failover => self.failover_arn.as_deref(),
            Machine::Fallback => self.fallback_arn.as_deref(),
        }
    }

    /// The ARN, or an error saying where it should have come from.
    pub fn require_arn(&self, machine: Machine) -> Result<&str, Error> {
        let (output, flag) = match machine {
            Machine::Failover => (OUT_FAILOVER, "--failover-arn"),
            Machine::Fallback => (OUT_FALLBACK, "--fallback-arn"),
        };
        match (self.machine_arn(machine), &self.stack) {
            (Some(arn), _) => Ok(arn),
            (None, Some(stack)) => Err(Error::MissingOutput { stack: stack.clone(), output, flag }),
            (None, None) => Err(Error::NoDeployment { flag }),
        }
    }

    /// Alarms of this deployment are named `<stack>-…`.
    pub fn alarm_prefix(&self) -> Option<String> {
        self.stack.as_ref().map(|s| format!("{s}-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;

    #[tokio::test]
    async fn the_recovery_machine_comes_from_its_optional_stack_output() {
        let fake = Fake::default();
        let base = [(OUT_FAILOVER, "arn:f"), (OUT_FALLBACK, "arn:b")];
        let with = base.iter().chain([(OUT_RECOVERY, "arn:r")].iter()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let without = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        fake.0.borrow_mut().outputs.insert("with".into(), with);
        fake.0.borrow_mut().outputs.insert("without".into(), without);
        let flags = |stack: &str| DeploymentFlags { stack: Some(stack.into()), ..Default::default() };
        assert_eq!(Deployment::resolve(&flags("with"), &fake).await.unwrap().recovery_arn.as_deref(), Some("arn:r"));
        assert_eq!(Deployment::resolve(&flags("without"), &fake).await.unwrap().recovery_arn, None);
    }
}
