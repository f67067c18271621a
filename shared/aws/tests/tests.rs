//! One integration test binary for the AWS adapters and the whole run loop wired to them; a module
//! per area. The moto test needs moto_server (`MOTO_SERVER_BIN`, default: the project venv).

mod metric_names;
mod moto;
mod naming;
mod properties;
mod scenarios;
