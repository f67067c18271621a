//! Human logs on stderr through `tracing` (stdout is reserved for EMF): JSON lines when
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// The SDK and HTTP stack are chatty at debug level; a bare level applies to our own events only.
const QUIET_DEPENDENCIES: &str =
    "aws_smithy_runtime=warn,aws_smithy_runtime_api=warn,aws_smithy_http=warn,aws_config=warn,aws_sdk_sfn=warn,hyper=warn,hyper_util=warn,rustls=warn,h2=warn,lambda_runtime=info,lambda_runtime_api_client=info";

pub fn filter_directives(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    let level = |l: &str| match l.trim().to_ascii_lowercase().as_str() {
        "fatal" => "error".to_string(),
        other => other.to_string(),
    };
    let user = match (rust_log.map(str::trim).filter(|s| !s.is_empty()), lambda_level.map(str::trim).filter(|s| !s.is_empty())) {
        (Some(r), _) => r.to_string(),
        (None, Some(l)) => level(l),
        (None, None) => "info".to_string(),
    };
    let bare_level = matches!(user.to_ascii_lowercase().as_str(), "trace" | "debug" | "info" | "warn" | "error" | "off");
    if bare_level {
        format!("{},{QUIET_DEPENDENCIES}", user.to_ascii_lowercase())
    } else {
        user
    }
}

pub fn init() {
    let directives = filter_directives(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("RUST_LOG/AWS_LAMBDA_LOG_LEVEL {directives:?} is not a valid filter ({e}); using info");
        EnvFilter::new(format!("info,{QUIET_DEPENDENCIES}"))
    });
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).with_target(false);
    if json {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::filter_directives;

    #[test]
    fn lambda_level_is_used_when_rust_log_is_absent() {
        assert!(filter_directives(None, Some("DEBUG")).starts_with("debug,aws_smithy_runtime=warn"));
        assert!(filter_directives(None, Some("FATAL")).starts_with("error,"));
        assert!(filter_directives(None, None).starts_with("info,"));
    }

    #[test]
    fn rust_log_wins_and_explicit_directives_are_kept_verbatim() {
        assert!(filter_directives(Some("trace"), Some("ERROR")).starts_with("trace,"));
        assert_eq!(filter_directives(Some("debug,aws_config=trace"), None), "debug,aws_config=trace");
    }
}
