//! The checker binary, black-box: real processes, real loopback targets, moto as AWS.
//! One test binary (the AWS SDK links once); a module per area.

mod support;

mod e2e;
mod faults;
mod hostile;
mod security;
mod lambda;
mod print_config;
