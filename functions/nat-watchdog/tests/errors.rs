//! Every failure is one line on stderr with its documented exit code, never a panic or a trace.

use crate::support::*;

fn one_line(stderr: &str) -> &str {
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.trim_end()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_stack_and_unknown_az_exit_2_naming_what_was_wrong() {
    let moto = Moto::start().await;
    let _world = build_world(&moto).await;
    let run = nat_watchdog(&moto.env(), &["--stack", "nope", "status"], "").await;
    assert_eq!(run.code, 2);
    assert_eq!(one_line(&run.stderr), r#"nat-watchdog: unknown stack "nope": no such CloudFormation stack in this account and region"#);
    let run = nat_watchdog(&moto.env(), &["--stack", STACK, "failover", "--az", "us-east-1z", "--yes"], "").await;
    assert_eq!(run.code, 2);
    let line = one_line(&run.stderr);
    assert!(line.starts_with(r#"nat-watchdog: unknown AZ "us-east-1z": no route table tagged nat-watchdog:az=us-east-1z in vpc-"#), "{line}");
    assert!(line.ends_with("managed AZs: us-east-1a, us-east-1b, us-east-1c"), "{line}");
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_exits_3() {
    // A port that was free a moment ago: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = nat_watchdog(&env_at(&format!("http://127.0.0.1:{port}")), &["--stack", STACK, "status"], "").await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let line = one_line(&run.stderr);
    assert!(line.starts_with("nat-watchdog: AWS endpoint not answering (cloudformation:DescribeStacks): "), "{line}");
}

#[tokio::test]
async fn no_credentials_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = vec![("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")), ("AWS_REGION", REGION.to_string())];
    let run = nat_watchdog(&env, &["--vpc", "vpc-1", "status"], "").await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(one_line(&run.stderr), "nat-watchdog: no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
}

#[tokio::test]
async fn usage_errors_exit_2_and_help_exits_0() {
    let run = nat_watchdog(&[], &["status", "--output", "yaml"], "").await;
    assert_eq!(run.code, 2);
    assert_eq!(one_line(&run.stderr), r#"nat-watchdog: --output "yaml": expected table or json (see nat-watchdog --help)"#);
    let help = nat_watchdog(&[], &["--help"], "").await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("EXIT CODES"));
}

#[tokio::test]
async fn no_region_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let env = vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ];
    let run = nat_watchdog(&env, &["--vpc", "vpc-1", "status"], "").await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(one_line(&run.stderr), "nat-watchdog: no AWS region: set AWS_REGION (or a region in the AWS_PROFILE)");
}

/// An endpoint that answers every request as EC2 does when the caller lacks a permission.
async fn denying_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Read the head and the Content-Length body, then answer.
                loop {
                    let Ok(n) = s.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen).to_string();
                    if let Some(head_end) = text.find("\r\n\r\n") {
                        let len = text[..head_end]
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= head_end + 4 + len {
                            break;
                        }
                    }
                }
                let body = "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>denied</RequestID></Response>";
                let reply = format!("HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn access_denied_names_the_action_and_exits_3() {
    let (url, task) = denying_endpoint().await;
    let run = nat_watchdog(&env_at(&url), &["--vpc", "vpc-1", "status"], "").await;
    task.abort();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        one_line(&run.stderr),
        "nat-watchdog: access denied: this identity may not call ec2:DescribeRouteTables (You are not authorized to perform this operation.)"
    );
}
