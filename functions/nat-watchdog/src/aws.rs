//! The real adapters: one per port, each a thin translation between the SDK and `ports` types.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::DateTime;

use crate::error::{Error, SdkFailure};
use crate::ports::{
    Alarm, Alarms, Execution, Executions, ManagedTable, MetricQuery, MetricSeries, Metrics, NatGateway, NatInstance, NatInventory,
    RawRoute, Routes, StackOutputs,
};
use crate::times::epoch;
use crate::vocab::{DIMENSION_AZ, TAG_AZ, TAG_NAT_ENI_FOR, TAG_NAT_INSTANCE_FOR, TAG_STANDBY_FOR};

/// Shared SDK configuration: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL and credentials as usual;
/// bounded timeouts so that an endpoint that does not answer is reported instead of waited on.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await
}

fn sdk_err<E, R>(action: &'static str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            Error::from_sdk(
                action,
                SdkFailure::Service { code: e.code().unwrap_or("UnknownError").to_string(), message: e.message().unwrap_or("").to_string() },
            )
        }
        _ => Error::from_sdk(action, SdkFailure::Transport { detail: DisplayErrorContext(&err).to_string() }),
    }
}

fn time(t: &DateTime) -> SystemTime {
    SystemTime::try_from(*t).unwrap_or(SystemTime::UNIX_EPOCH)
}

fn filter(name: &str, values: &[&str]) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder().name(name).set_values(Some(values.iter().map(|v| v.to_string()).collect())).build()
}

fn with_vpc(mut filters: Vec<aws_sdk_ec2::types::Filter>, vpc: Option<&str>) -> Vec<aws_sdk_ec2::types::Filter> {
    if let Some(v) = vpc {
        filters.push(filter("vpc-id", &[v]));
    }
    filters
}

fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))).collect()
}

pub struct Ec2(pub aws_sdk_ec2::Client);

impl Routes for Ec2 {
    async fn managed_tables(&self, vpc: Option<&str>) -> Result<Vec<ManagedTable>, Error> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .0
                .describe_route_tables()
                .set_filters(Some(with_vpc(vec![filter("tag-key", &[TAG_AZ])], vpc)))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_err("ec2:DescribeRouteTables", e))?;
            for t in page.route_tables() {
                let tags = tag_map(t.tags());
                let default_route = t.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).map(|r| RawRoute {
                    nat_gateway_id: r.nat_gateway_id().map(str::to_string),
                    network_interface_id: r.network_interface_id().map(str::to_string),
                    instance_id: r.instance_id().map(str::to_string),
                    gateway_id: r.gateway_id().map(str::to_string),
                    state: r.state().map(|s| s.as_str().to_string()),
                });
                out.push(ManagedTable {
                    id: t.route_table_id().unwrap_or_default().to_string(),
                    az: tags.get(TAG_AZ).cloned().unwrap_or_default(),
                    tags,
                    default_route,
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| (&a.az, &a.id).cmp(&(&b.az, &b.id)));
        Ok(out)
    }

    async fn nat_inventory(&self, vpc: Option<&str>) -> Result<NatInventory, Error> {
        let mut inv = NatInventory::default();
        let instances = self
            .0
            .describe_instances()
            .set_filters(Some(with_vpc(vec![filter("tag-key", &[TAG_NAT_INSTANCE_FOR])], vpc)))
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeInstances", e))?;
        for i in instances.reservations().iter().flat_map(|r| r.instances()) {
            let tags = tag_map(i.tags());
            inv.instances.insert(
                i.instance_id().unwrap_or_default().to_string(),
                NatInstance {
                    az: tags.get(TAG_NAT_INSTANCE_FOR).cloned().unwrap_or_default(),
                    state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
                    enis: i.network_interfaces().iter().filter_map(|n| n.network_interface_id().map(str::to_string)).collect(),
                },
            );
        }
        let enis = self
            .0
            .describe_network_interfaces()
            .set_filters(Some(with_vpc(vec![filter("tag-key", &[TAG_NAT_ENI_FOR])], vpc)))
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeNetworkInterfaces", e))?;
        for n in enis.network_interfaces() {
            let tags = tag_map(n.tag_set());
            inv.enis.insert(n.network_interface_id().unwrap_or_default().to_string(), tags.get(TAG_NAT_ENI_FOR).cloned().unwrap_or_default());
        }
        let gateways = self
            .0
            .describe_nat_gateways()
            .set_filter(Some(with_vpc(vec![], vpc)))
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DescribeNatGateways", e))?;
        for g in gateways.nat_gateways() {
            let tags = tag_map(g.tags());
            inv.gateways.insert(
                g.nat_gateway_id().unwrap_or_default().to_string(),
                NatGateway { standby_for: tags.get(TAG_STANDBY_FOR).cloned(), state: g.state().map(|s| s.as_str().to_string()).unwrap_or_default() },
            );
        }
        Ok(inv)
    }

    async fn set_tags(&self, resources: &[String], tags: &[(String, String)]) -> Result<(), Error> {
        let tags = tags.iter().map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()).collect();
        self.0
            .create_tags()
            .set_resources(Some(resources.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_err("ec2:CreateTags", e))?;
        Ok(())
    }

    async fn remove_tags(&self, resources: &[String], keys: &[&str]) -> Result<(), Error> {
        let tags = keys.iter().map(|k| aws_sdk_ec2::types::Tag::builder().key(*k).build()).collect();
        self.0
            .delete_tags()
            .set_resources(Some(resources.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_err("ec2:DeleteTags", e))?;
        Ok(())
    }
}

pub struct CloudWatch(pub aws_sdk_cloudwatch::Client);

impl Metrics for CloudWatch {
    async fn get_metric_data(&self, namespace: &str, queries: &[MetricQuery], start: SystemTime, end: SystemTime) -> Result<Vec<MetricSeries>, Error> {
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        let built: Vec<MetricDataQuery> = queries
            .iter()
            .map(|q| {
                let metric = Metric::builder()
                    .namespace(namespace)
                    .metric_name(&q.metric)
                    .dimensions(Dimension::builder().name(DIMENSION_AZ).value(&q.az).build())
                    .build();
                MetricDataQuery::builder()
                    .id(&q.id)
                    .metric_stat(MetricStat::builder().metric(metric).period(q.period_secs).stat(&q.stat).build())
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut by_id: BTreeMap<String, MetricSeries> = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .0
                .get_metric_data()
                .set_metric_data_queries(Some(built.clone()))
                .start_time(DateTime::from(start))
                .end_time(DateTime::from(end))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_err("cloudwatch:GetMetricData", e))?;
            for r in page.metric_data_results() {
                let id = r.id().unwrap_or_default().to_string();
                let s = by_id.entry(id.clone()).or_insert_with(|| MetricSeries { id, points: BTreeMap::new() });
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    *s.points.entry(epoch(time(t))).or_insert(0.0) += v;
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(by_id.into_values().collect())
    }
}

impl Alarms for CloudWatch {
    async fn in_alarm(&self, prefix: Option<&str>) -> Result<Vec<Alarm>, Error> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .0
                .describe_alarms()
                .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                .set_alarm_name_prefix(prefix.map(str::to_string))
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_err("cloudwatch:DescribeAlarms", e))?;
            // Filtered again here: an endpoint may apply only one of the two filters (moto does).
            for a in page.metric_alarms().iter().filter(|a| a.state_value() == Some(&aws_sdk_cloudwatch::types::StateValue::Alarm)) {
                out.push(Alarm {
                    name: a.alarm_name().unwrap_or_default().to_string(),
                    description: a.alarm_description().unwrap_or_default().to_string(),
                    reason: a.state_reason().unwrap_or_default().to_string(),
                    since: a.state_updated_timestamp().map(time),
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

pub struct StepFunctions(pub aws_sdk_sfn::Client);

/// At most this many executions are described per state machine (newest first).
const MAX_DESCRIBED: usize = 50;

impl Executions for StepFunctions {
    async fn executions(&self, state_machine: &str, since: SystemTime) -> Result<Vec<Execution>, Error> {
        let mut arns = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = self
                .0
                .list_executions()
                .state_machine_arn(state_machine)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_err("states:ListExecutions", e))?;
            for e in page.executions() {
                let running = e.status().as_str() == "RUNNING";
                if running || time(e.start_date()) >= since {
                    arns.push(e.execution_arn().to_string());
                }
                if arns.len() >= MAX_DESCRIBED {
                    break 'pages;
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for arn in arns {
            out.push(self.describe(&arn).await?);
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.start));
        Ok(out)
    }

    async fn describe(&self, execution_arn: &str) -> Result<Execution, Error> {
        let d = self.0.describe_execution().execution_arn(execution_arn).send().await.map_err(|e| sdk_err("states:DescribeExecution", e))?;
        Ok(Execution {
            arn: d.execution_arn().to_string(),
            name: d.name().unwrap_or_default().to_string(),
            status: d.status().as_str().to_string(),
            start: time(d.start_date()),
            stop: d.stop_date().map(time),
            input: d.input().map(str::to_string),
            output: d.output().map(str::to_string),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
        })
    }

    async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<String, Error> {
        let out = self
            .0
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| sdk_err("states:StartExecution", e))?;
        Ok(out.execution_arn().to_string())
    }
}

pub struct CloudFormation(pub aws_sdk_cloudformation::Client);

impl StackOutputs for CloudFormation {
    async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, Error> {
        let out = match self.0.describe_stacks().stack_name(stack).send().await {
            Ok(o) => o,
            Err(SdkError::ServiceError(se)) if se.err().code() == Some("ValidationError") && se.err().message().is_some_and(|m| m.contains("does not exist")) => {
                return Err(Error::UnknownStack { stack: stack.to_string() })
            }
            Err(e) => return Err(sdk_err("cloudformation:DescribeStacks", e)),
        };
        let Some(s) = out.stacks().first() else { return Err(Error::UnknownStack { stack: stack.to_string() }) };
        Ok(s.outputs().iter().filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string()))).collect())
    }
}
