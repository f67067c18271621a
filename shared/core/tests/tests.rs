//! One integration test binary for the core; a module per area.

mod drift;
mod properties;
