//! Entry points. With `AWS_LAMBDA_RUNTIME_API` set this is the Lambda function serving EventBridge
//! scheduled events; without it, the same engine runs as a command-line tool. Both stay thin: they
//! read the config once, build the adapters once, and hand them to `nat_watchdog_runtime::run`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod init_error;
mod logging;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::SystemTime;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use nat_watchdog_aws::{budget_from_deadline, BudgetSource, EmfMetrics, SfnStarter, StateMachineArn, StepFunctions};
use nat_watchdog_core::{Config, ConfigError, Mode};
use nat_watchdog_probe::{HttpProber, TlsSetupError};
use nat_watchdog_runtime::{run, AnchoredClock, LineWriter, Ports, RunLimits, RunSummary};
use tokio::time::Instant;

/// What one process builds once and every invocation reuses.
struct App {
    config: Config,
    prober: HttpProber,
    failover: Option<StepFunctions<SfnStarter>>,
}

#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
}

/// The process environment, read once.
fn environment() -> HashMap<String, String> {
    std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect()
}

/// The configuration from the environment, with the failover backend's own check of its ARN.
fn read_config(mode: Mode) -> Result<(Config, Option<StateMachineArn>), ConfigError> {
    let config = Config::from_map(&environment(), mode)?;
    let arn = config.state_machine_arn.as_deref().map(StateMachineArn::parse).transpose()?;
    Ok((config, arn))
}

impl App {
    async fn build(mode: Mode) -> Result<App, StartupError> {
        let (config, arn) = read_config(mode)?;
        let prober = HttpProber::new(
            config.timeout,
            config.status_policy.clone(),
            config.ipv4_only,
            config.extra_ca_certs.as_deref(),
        )?;
        let failover = match arn {
            Some(arn) => Some(StepFunctions::new(SfnStarter::from_env().await, arn, config.dedup_window)),
            None => None,
        };
        tracing::info!(
            event = "config", targets = config.targets.len(), interval_ms = config.interval.as_millis() as u64,
            timeout_ms = config.timeout.as_millis() as u64, unhealthy_threshold = config.unhealthy_threshold,
            healthy_threshold = config.healthy_threshold, quorum = config.quorum,
            canaries = config.canaries.len(), canary_quorum = config.canary_quorum,
            availability_zone = %config.availability_zone, subnet_id = %config.subnet_id,
            failover = config.state_machine_arn.is_some(), "configuration loaded"
        );
        Ok(App { config, prober, failover })
    }

    async fn run(&self, limits: RunLimits, shutdown: impl std::future::Future<Output = ()>) -> RunSummary {
        let mut sink = LineWriter::new(std::io::stdout());
        let clock = AnchoredClock::new();
        let mut metrics = EmfMetrics::new(&self.config, &mut sink, &clock);
        let ports = Ports { prober: &self.prober, failover: self.failover.as_ref(), clock: &clock, observers: vec![&mut metrics] };
        run(&self.config, ports, limits, shutdown).await
    }
}

fn main() -> ExitCode {
    logging::init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // getaddrinfo runs on blocking threads; a hung resolver must not grow them without bound.
        .max_blocking_threads(64)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        runtime.block_on(lambda_main())
    } else {
        runtime.block_on(cli_main())
    }
}

async fn lambda_main() -> ExitCode {
    let app = match App::build(Mode::FailoverRequired).await {
        Ok(app) => app,
        Err(e) => {
            // Fails the init phase: Lambda shows the error on the invocation, and the next schedule
            // tick tries a fresh environment.
            tracing::error!(event = "config_error", error = %e, "invalid configuration");
            let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
            if let Err(report) = init_error::report(&api, "Runtime.ConfigError", &e.to_string()).await {
                tracing::error!(event = "init_error_report_failed", error = %report, "could not report the init error");
            }
            return ExitCode::from(2);
        }
    };
    let app = &app;
    let served = lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<RunSummary, lambda_runtime::Error>(handle(app, event).await)
    }))
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(event = "runtime_error", error = %e, "Lambda runtime loop ended");
            ExitCode::from(1)
        }
    }
}

/// One scheduled invocation: probe until the deadline minus the reserve, then return the summary.
async fn handle(app: &App, event: LambdaEvent<serde_json::Value>) -> RunSummary {
    let (payload, context) = event.into_parts();
    match serde_json::from_value::<EventBridgeEvent<serde_json::Value>>(payload) {
        Ok(e) => tracing::info!(event = "invocation", request_id = %context.request_id, source = %e.source, detail_type = %e.detail_type, time = ?e.time, "scheduled invocation"),
        Err(_) => tracing::info!(event = "invocation", request_id = %context.request_id, "invocation with a non-EventBridge payload"),
    }
    let (budget, source) = budget_from_deadline(context.deadline, SystemTime::now(), app.config.max_run);
    if source != BudgetSource::Deadline {
        tracing::warn!(event = "deadline_fallback", reason = ?source, deadline_ms = context.deadline, budget_s = budget.as_secs_f64(), "invocation deadline unusable, running for MAX_RUN_SECONDS");
    }
    let limits = RunLimits::for_budget(Instant::now(), budget);
    app.run(limits, std::future::pending()).await
}

async fn cli_main() -> ExitCode {
    let command = match cli::parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connectivity-checker: {e}");
            return ExitCode::from(2);
        }
    };
    let duration = match command {
        cli::Command::Help => {
            println!("{}", cli::usage());
            return ExitCode::SUCCESS;
        }
        cli::Command::PrintConfig => return print_config(),
        cli::Command::Version => {
            println!("connectivity-checker {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        cli::Command::Run { duration } => duration,
    };
    let app = match App::build(Mode::DetectOnlyAllowed).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("connectivity-checker: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let limits = match duration {
        Some(d) => RunLimits::for_duration(&app.config, Instant::now(), d),
        None => RunLimits::unbounded(),
    };
    let summary = app.run(limits, shutdown_signal()).await;
    tracing::info!(event = "summary", summary = %serde_json::to_string(&summary).unwrap_or_default(), "summary");
    ExitCode::SUCCESS
}

/// `--print-config`: every variable's effective value (CLI mode) as one JSON object; exit 2 on a
/// bad value. Needs no AWS and never probes.
fn print_config() -> ExitCode {
    let values = Config::effective_values(&environment(), Mode::DetectOnlyAllowed).and_then(|values| {
        let arn = values.iter().find(|(name, _)| *name == "FAILOVER_STATE_MACHINE_ARN").and_then(|(_, v)| v.as_deref());
        arn.map(StateMachineArn::parse).transpose()?;
        Ok(values)
    });
    match values {
        Ok(values) => {
            let object: serde_json::Map<String, serde_json::Value> = values
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.map_or(serde_json::Value::Null, serde_json::Value::String)))
                .collect();
            println!("{}", serde_json::Value::Object(object));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("connectivity-checker: configuration error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            tracing::warn!(event = "signals_unavailable", "cannot install signal handlers; stop with --duration");
            std::future::pending::<()>().await;
        }
    }
}
