//! In-memory ports for unit tests: one shared state behind every capability.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::SystemTime;

use crate::error::Error;
use crate::ports::*;
use crate::times::from_epoch;

#[derive(Default)]
pub struct State {
    pub tables: Vec<ManagedTable>,
    pub inventory: NatInventory,
    pub executions: Vec<(String, Execution)>,
    pub started: Vec<(String, String, String)>,
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
    pub alarms: Vec<Alarm>,
    pub series: Vec<MetricSeries>,
    pub now: i64,
    /// What a started execution ends as: (status, gateway its route moves to).
    pub start_result: Option<(String, String)>,
}

#[derive(Clone, Default)]
pub struct Fake(pub Rc<RefCell<State>>);

pub fn ports(f: &Fake) -> Ports<Fake, Fake, Fake, Fake, Fake, Fake> {
    Ports { routes: f.clone(), metrics: f.clone(), alarms: f.clone(), executions: f.clone(), stacks: f.clone(), clock: f.clone() }
}

impl Routes for Fake {
    async fn managed_tables(&self, _vpc: Option<&str>) -> Result<Vec<ManagedTable>, Error> {
        Ok(self.0.borrow().tables.clone())
    }
    async fn nat_inventory(&self, _vpc: Option<&str>) -> Result<NatInventory, Error> {
        Ok(self.0.borrow().inventory.clone())
    }
    async fn set_tags(&self, resources: &[String], tags: &[(String, String)]) -> Result<(), Error> {
        for t in self.0.borrow_mut().tables.iter_mut().filter(|t| resources.contains(&t.id)) {
            t.tags.extend(tags.iter().cloned());
        }
        Ok(())
    }
    async fn remove_tags(&self, resources: &[String], keys: &[&str]) -> Result<(), Error> {
        for t in self.0.borrow_mut().tables.iter_mut().filter(|t| resources.contains(&t.id)) {
            t.tags.retain(|k, _| !keys.contains(&k.as_str()));
        }
        Ok(())
    }
}

impl Metrics for Fake {
    async fn get_metric_data(&self, _ns: &str, queries: &[MetricQuery], _s: SystemTime, _e: SystemTime) -> Result<Vec<MetricSeries>, Error> {
        Ok(self.0.borrow().series.iter().filter(|s| queries.iter().any(|q| q.id == s.id)).cloned().collect())
    }
}

impl Alarms for Fake {
    async fn in_alarm(&self, prefix: Option<&str>) -> Result<Vec<Alarm>, Error> {
        Ok(self.0.borrow().alarms.iter().filter(|a| prefix.is_none_or(|p| a.name.starts_with(p))).cloned().collect())
    }
}

impl Executions for Fake {
    async fn executions(&self, sm: &str, _since: SystemTime) -> Result<Vec<Execution>, Error> {
        Ok(self.0.borrow().executions.iter().filter(|(m, _)| m == sm).map(|(_, e)| e.clone()).collect())
    }
    async fn describe(&self, arn: &str) -> Result<Execution, Error> {
        let s = self.0.borrow();
        s.executions
            .iter()
            .find(|(_, e)| e.arn == arn)
            .map(|(_, e)| e.clone())
            .ok_or_else(|| Error::Aws { action: "states:DescribeExecution", code: "ExecutionDoesNotExist".into(), message: arn.into() })
    }
    async fn start(&self, sm: &str, name: &str, input: &str) -> Result<String, Error> {
        let mut s = self.0.borrow_mut();
        s.started.push((sm.into(), name.into(), input.into()));
        let (status, gateway) = s.start_result.clone().unwrap_or(("SUCCEEDED".into(), "nat-1".into()));
        let az = crate::vocab::ExecutionInput::parse(Some(input)).availability_zone.unwrap_or_default();
        let mut moved = Vec::new();
        if status == "SUCCEEDED" {
            for t in s.tables.iter_mut().filter(|t| t.az == az) {
                t.default_route = Some(RawRoute { nat_gateway_id: Some(gateway.clone()), ..Default::default() });
                moved.push(format!(r#"{{"routeTableId":"{}","availabilityZone":"{az}","action":"replaced"}}"#, t.id));
            }
        }
        let arn = format!("{sm}:{name}");
        let now = s.now;
        s.executions.push((
            sm.into(),
            Execution {
                arn: arn.clone(),
                name: name.into(),
                status,
                start: from_epoch(now),
                stop: Some(from_epoch(now + 2)),
                input: Some(input.into()),
                output: Some(format!(r#"{{"routeTables":[{}]}}"#, moved.join(","))),
                error: None,
                cause: None,
            },
        ));
        Ok(arn)
    }
}

impl StackOutputs for Fake {
    async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, Error> {
        self.0.borrow().outputs.get(stack).cloned().ok_or_else(|| Error::UnknownStack { stack: stack.into() })
    }
}

impl Clock for Fake {
    fn now(&self) -> SystemTime {
        from_epoch(self.0.borrow().now)
    }
}
