//! The NAT egress watchdog's engine: configuration, probes, verdict, metrics and the failover
//! trigger, behind small traits. It knows nothing of AWS: the Step Functions adapter and the Lambda
//! runtime live in `functions/connectivity-checker`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod emf;
pub mod failover;
pub mod ports;
pub mod probe;
pub mod runner;
pub mod target;
pub mod timefmt;
pub mod verdict;

pub use config::{Config, ConfigError, Mode, StatusPolicy};
pub use failover::{FailoverRequest, FailoverStarter, StartError, StartOutcome, TriggerOutcome};
pub use ports::{AnchoredClock, Clock, LineWriter, MemorySink, MetricSink};
pub use probe::{Cause, HttpProber, ProbeReport, Prober, TlsSetupError};
pub use runner::{budget_from_deadline, run, BudgetSource, Ports, RunLimits, RunSummary};
pub use target::Target;
pub use verdict::{Health, Verdict};
