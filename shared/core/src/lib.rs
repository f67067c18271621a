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

/// An enum of named things with `ALL` (complete by construction) and two `&'static str` facts per
/// variant, all from one table: one line per variant, so a new one is one line and no listing
/// can miss it.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])* pub enum $enum:ident;
        $(#[$first_doc:meta])* fn $first:ident;
        $(#[$second_doc:meta])* fn $second:ident;
        $( $(#[$doc:meta])* $variant:ident => $a:literal, $b:literal; )+
    ) => {
        $(#[$meta])*
        pub enum $enum {
            $( $(#[$doc])* $variant, )+
        }

        impl $enum {
            /// Every variant, in declaration order.
            pub const ALL: [$enum; [$($enum::$variant),+].len()] = [$($enum::$variant),+];

            $(#[$first_doc])*
            pub const fn $first(self) -> &'static str {
                match self { $( $enum::$variant => $a, )+ }
            }

            $(#[$second_doc])*
            pub const fn $second(self) -> &'static str {
                match self { $( $enum::$variant => $b, )+ }
            }

            /// The position in `ALL`.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

pub mod cause;
pub mod config;
pub mod incident;
pub mod metrics;
pub mod nat_path;
pub mod settings;
pub mod target;
pub mod timefmt;
pub mod verdict;
pub mod watch;

pub use cause::Cause;
pub use config::{Config, ConfigError, Mode, StatusPolicy};
pub use incident::{CheckerEvidence, FailedTarget, FailoverInput, Incident, Trigger};
pub use target::Target;
pub use verdict::{Health, Rule, Verdict, WindowRule};
pub use nat_path::PathProbe;
pub use watch::{RoundOutcome, Semantics, Watch, WatchEvent};
