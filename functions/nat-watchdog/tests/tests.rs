//! The `nat-watchdog` binary, black-box, against moto: one test binary (the SDKs link once), a
//! module per area. `MOTO_SERVER_BIN=$PWD/.venv/bin/moto_server cargo test -p nat-watchdog`.

mod support;

mod actions;
mod errors;
mod runbook;
mod screens;
