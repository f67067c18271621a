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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub stack: Option<String>,
    pub vpc: Option<String>,
    pub failover_arn: Option<String>,
    pub fallback_arn: Option<String>,
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
