//! One integration test binary for the prober (the heavy crates link once); a module per area.

mod support;

mod hostile;
mod probes;
