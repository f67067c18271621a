//! One small trait per outside capability. The command logic is generic over these; `aws.rs` holds
//! the SDK adapters and `fake.rs` (tests) in-memory ones. No SDK type crosses this boundary.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::error::Error;

/// A route table tagged `nat-watchdog:az`, with its 0.0.0.0/0 route as EC2 reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManagedTable {
    pub id: String,
    pub az: String,
    pub tags: BTreeMap<String, String>,
    /// `None`: the table has no 0.0.0.0/0 route.
    pub default_route: Option<RawRoute>,
}

/// The target fields of one route (EC2 sets `instance_id` and `network_interface_id` together
/// when the target ENI is attached to an instance).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawRoute {
    pub nat_gateway_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub instance_id: Option<String>,
    pub gateway_id: Option<String>,
    /// `active` or `blackhole`.
    pub state: Option<String>,
}

/// What the NAT layer consists of, from the tag contract.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NatInventory {
    /// Instance id → AZ (`nat-watchdog:nat-instance-for`), with its ENIs.
    pub instances: BTreeMap<String, NatInstance>,
    /// Managed stable ENI id → AZ (`nat-watchdog:nat-eni-for`).
    pub enis: BTreeMap<String, String>,
    /// NAT gateway id → (`nat-watchdog:standby-for` value or None, state).
    pub gateways: BTreeMap<String, NatGateway>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NatInstance {
    pub az: String,
    pub state: String,
    pub enis: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NatGateway {
    pub standby_for: Option<String>,
    pub state: String,
}

#[allow(async_fn_in_trait)]
pub trait Routes {
    /// Route tables tagged `nat-watchdog:az` (in `vpc` when given).
    async fn managed_tables(&self, vpc: Option<&str>) -> Result<Vec<ManagedTable>, Error>;
    async fn nat_inventory(&self, vpc: Option<&str>) -> Result<NatInventory, Error>;
    async fn set_tags(&self, resources: &[String], tags: &[(String, String)]) -> Result<(), Error>;
    async fn remove_tags(&self, resources: &[String], keys: &[&str]) -> Result<(), Error>;
}

/// One GetMetricData query on a health metric of one AZ.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub id: String,
    pub metric: String,
    pub az: String,
    /// `Sum`, `p50`, `p99`, ...
    pub stat: String,
    pub period_secs: i32,
}

/// Values by period start (epoch seconds). Missing periods are absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSeries {
    pub id: String,
    pub points: BTreeMap<i64, f64>,
}

#[allow(async_fn_in_trait)]
pub trait Metrics {
    async fn get_metric_data(
        &self,
        namespace: &str,
        queries: &[MetricQuery],
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<MetricSeries>, Error>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub name: String,
    pub description: String,
    pub reason: String,
    pub since: Option<SystemTime>,
}

#[allow(async_fn_in_trait)]
pub trait Alarms {
    /// Alarms in state ALARM whose name starts with `prefix` (every alarm when None).
    async fn in_alarm(&self, prefix: Option<&str>) -> Result<Vec<Alarm>, Error>;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub arn: String,
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, ...
    pub status: String,
    pub start: SystemTime,
    pub stop: Option<SystemTime>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[allow(async_fn_in_trait)]
pub trait Executions {
    /// Executions of `state_machine` started at or after `since`, and any still running; newest first.
    async fn executions(&self, state_machine: &str, since: SystemTime) -> Result<Vec<Execution>, Error>;
    async fn describe(&self, execution_arn: &str) -> Result<Execution, Error>;
    /// Returns the execution ARN.
    async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<String, Error>;
}

#[allow(async_fn_in_trait)]
pub trait StackOutputs {
    /// Output key → value; `Error::UnknownStack` when there is no such stack.
    async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, Error>;
}

pub trait Clock {
    fn now(&self) -> SystemTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Every capability the commands use.
pub struct Ports<R, M, A, E, S, C> {
    pub routes: R,
    pub metrics: M,
    pub alarms: A,
    pub executions: E,
    pub stacks: S,
    pub clock: C,
}
