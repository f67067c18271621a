//! The NAT egress watchdog's pure core: what is probed ([`Target`]), why a probe failed ([`Cause`]),
//! the round verdict ([`Verdict`]) and the [`Watch`] that turns finished rounds into events (round
//! done, became unhealthy with the incident's evidence, became healthy), the settings table
//! ([`settings`]) and [`Config`] built from it, and the vocabulary the binaries share: metric names
//! ([`metrics`]) and the Failover execution input ([`FailoverInput`]).
//!
//! No I/O, no timers, no AWS: rounds come in with their timestamps, events go out. The run loop
//! (`nat-watchdog-runtime`), the prober (`nat-watchdog-probe`) and the AWS adapters
//! (`nat-watchdog-aws`) are built around it.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cause;
pub mod config;
pub mod incident;
pub mod metrics;
pub mod settings;
pub mod target;
pub mod timefmt;
pub mod verdict;
pub mod watch;

pub use cause::Cause;
pub use config::{Config, ConfigError, Mode, StatusPolicy};
pub use incident::{FailedTarget, FailoverInput, Incident, Trigger};
pub use target::Target;
pub use verdict::{Health, Rule, Verdict, WindowRule};
pub use watch::{RoundOutcome, Watch, WatchEvent};
