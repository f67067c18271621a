//! One integration test binary for the engine (the heavy crates link once); a module per area.

mod support;

mod hostile;
mod probes;
mod properties;
mod scenarios;
