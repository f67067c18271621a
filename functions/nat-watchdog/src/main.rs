//! `nat-watchdog`: the on-call command. Thin: parse, build the SDK clients once, run, print one
//! line on error, exit with the documented code.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod actions;
mod app;
mod aws;
mod cli;
mod deployment;
mod error;
#[cfg(test)]
mod fake;
mod history;
mod incidents;
mod ports;
mod status;
mod times;
mod vocab;

use std::process::ExitCode;

fn main() -> ExitCode {
    let inv = match cli::parse(std::env::args().skip(1)) {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nat-watchdog: cannot start the async runtime: {e}");
            return ExitCode::from(error::exit::AWS);
        }
    };
    let result = runtime.block_on(async {
        let conf = aws::sdk_config().await;
        let ports = ports::Ports {
            routes: aws::Ec2(aws_sdk_ec2::Client::new(&conf)),
            metrics: aws::CloudWatch(aws_sdk_cloudwatch::Client::new(&conf)),
            alarms: aws::CloudWatch(aws_sdk_cloudwatch::Client::new(&conf)),
            executions: aws::StepFunctions(aws_sdk_sfn::Client::new(&conf)),
            stacks: aws::CloudFormation(aws_sdk_cloudformation::Client::new(&conf)),
            clock: ports::SystemClock,
        };
        let stdin = std::io::stdin();
        app::run(&inv, &ports, &mut std::io::stdout(), &mut std::io::stderr(), &mut stdin.lock()).await
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(&e),
    }
}

fn fail(e: &error::Error) -> ExitCode {
    eprintln!("nat-watchdog: {e}");
    ExitCode::from(e.exit_code())
}
