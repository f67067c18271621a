//! The NAT egress watchdog's AWS adapters: the Step Functions failover backend ([`sfn`]: execution
//! naming, the already-exists rule, the SDK client) and its ARN check ([`arn`]), the CloudWatch
//! embedded-metric-format writer ([`emf`]) and the observer that feeds it ([`metrics`]), and the
//! Lambda invocation's time budget ([`lambda`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod arn;
pub mod emf;
pub mod lambda;
pub mod metrics;
pub mod sfn;

pub use arn::StateMachineArn;
pub use lambda::{budget_from_deadline, BudgetSource};
pub use metrics::EmfMetrics;
pub use sfn::{execution_name, ExecutionStarter, ExistingExecution, SfnStarter, StartExecutionRequest, StepFunctions};
