//! One integration test binary for the AWS adapters and the whole run loop wired to them; a module
//! per area.

mod metric_names;
mod properties;
mod scenarios;
