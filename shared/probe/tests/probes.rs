//! The real prober against servers on 127.0.0.1 that behave well and badly: every probe ends within
//! its timeout and names the phase that failed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nat_watchdog_core::{Cause, StatusPolicy};
use nat_watchdog_probe::HttpProber;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::support::{pki, probe, prober, rand_suffix, read_request, respond, serve, serve_tls, TIMEOUT};

#[tokio::test]
async fn a_working_path_reports_status_and_phases() {
    let addr = serve(respond("204 No Content")).await;
    let r = probe(&prober(), &format!("http://{addr}/generate_204")).await;
    assert_eq!((r.cause, r.status), (None, Some(204)));
    assert!(r.dns.is_some() && r.connect.is_some() && r.tls.is_none());
}

#[tokio::test]
async fn the_status_policy_decides_what_counts() {
    let not_found = serve(respond("404 Not Found")).await;
    let unavailable = serve(respond("503 Service Unavailable")).await;
    let r = probe(&prober(), &format!("http://{not_found}/")).await;
    assert_eq!(r.cause, None, "a 4xx proves the path works");
    let r = probe(&prober(), &format!("http://{unavailable}/")).await;
    assert_eq!((r.cause, r.status), (Some(Cause::HttpStatus), Some(503)));
    let strict = HttpProber::new(TIMEOUT, StatusPolicy::Ranges(vec![(200, 299)]), true, None).unwrap();
    let r = probe(&strict, &format!("http://{not_found}/")).await;
    assert_eq!(r.cause, Some(Cause::HttpStatus));
}

#[tokio::test]
async fn a_closed_port_is_connect_refused() {
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!(r.cause, Some(Cause::ConnectRefused));
}

/// A listener that does not accept, with its queue filled: the kernel drops further SYNs. Keep the
/// returned connections alive as long as the queue must stay full.
async fn full_accept_queue() -> (std::net::SocketAddr, TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(0).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            fillers.push(s);
        }
    }
    (addr, listener, fillers)
}

#[tokio::test]
async fn a_full_accept_queue_drops_the_syn_and_is_connect_timeout() {
    // A listener that never accepts, with its queue filled: the kernel drops further SYNs, which is
    // what a blackholed NAT looks like from the subnet.
    let (addr, _listener, _fillers) = full_accept_queue().await;
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!(r.cause, Some(Cause::ConnectTimeout), "{r:?}");
}

#[tokio::test]
async fn one_lost_syn_is_repaired_by_the_hedged_second_attempt() {
    // Given a listener whose full accept queue drops the probe's first SYN (Linux would resend it
    // only after 1 s, past the 400 ms timeout), and that starts accepting 100 ms later,
    let (addr, listener, fillers) = full_accept_queue().await;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                read_request(&mut s).await;
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
            });
        }
    });
    // when probed, then the second attempt (at 40 % of the timeout) connects and the probe succeeds.
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!((r.cause, r.status), (None, Some(204)), "{r:?}");
    let connect = r.connect.expect("connected");
    assert!(connect >= TIMEOUT.mul_f64(0.4), "connected after {connect:?}: the first SYN was not the one that got through");
    drop(fillers);
}

#[tokio::test]
async fn a_response_lost_on_the_first_connection_is_repaired_by_the_hedged_second_attempt() {
    // Given a server whose first connection is accepted and never answered (the response lost, as a
    // dropped data segment leaves it until a retransmission at least 200 ms later) and which answers
    // every later connection at once,
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let addr = serve(move |mut s: TcpStream| {
        let nth = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            read_request(&mut s).await;
            if nth == 0 {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            let _ = s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
        }
    })
    .await;
    // when probed, then a second, fresh attempt at 40 % of the timeout gets the answer in time.
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!((r.cause, r.status), (None, Some(204)), "{r:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 2, "exactly one hedged attempt");
    assert!(r.latency >= TIMEOUT.mul_f64(0.4), "answered after {:?}: not by the second attempt", r.latency);
}

#[tokio::test]
async fn a_server_that_accepts_and_never_speaks_is_a_timeout() {
    let addr = serve(|s: TcpStream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!(r.cause, Some(Cause::Timeout));
    assert!(r.connect.is_some());
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout_and_a_fast_one_is_not() {
    let slow = serve(|mut s: TcpStream| async move {
        read_request(&mut s).await;
        tokio::time::sleep(TIMEOUT * 3).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
    })
    .await;
    let quick = serve(|mut s: TcpStream| async move {
        read_request(&mut s).await;
        tokio::time::sleep(TIMEOUT / 8).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
    })
    .await;
    assert_eq!(probe(&prober(), &format!("http://{slow}/")).await.cause, Some(Cause::Timeout));
    assert_eq!(probe(&prober(), &format!("http://{quick}/")).await.cause, None);
}

#[tokio::test]
async fn a_connection_closed_mid_response_is_other() {
    let addr = serve(|mut s: TcpStream| async move {
        read_request(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 O").await;
    })
    .await;
    assert_eq!(probe(&prober(), &format!("http://{addr}/")).await.cause, Some(Cause::Other));
}

#[tokio::test]
async fn a_huge_body_is_never_read() {
    let addr = serve(|mut s: TcpStream| async move {
        read_request(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n").await;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..16_384 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    })
    .await;
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!((r.cause, r.status), (None, Some(200)));
}

#[tokio::test]
async fn an_unresolvable_name_is_dns() {
    let r = probe(&prober(), "http://no-such-host.invalid/").await;
    assert_eq!(r.cause, Some(Cause::Dns), "{r:?}");
}

#[tokio::test]
async fn https_with_an_extra_trusted_ca_works_and_does_a_full_handshake() {
    let pki = pki(&["localhost"]);
    let addr = serve_tls(pki.server.clone()).await;
    let p = HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, Some(&pki.ca_file)).unwrap();
    let url = format!("https://localhost:{}/", addr.port());
    for _ in 0..2 {
        let r = probe(&p, &url).await;
        assert_eq!((r.cause, r.status), (None, Some(204)), "{r:?}");
        assert!(r.tls.is_some());
    }
}

#[tokio::test]
async fn an_untrusted_or_wrong_host_certificate_is_tls() {
    let pki_ok = pki(&["localhost"]);
    let addr = serve_tls(pki_ok.server.clone()).await;
    // Verification is never turned off: without the lab CA the same server is refused.
    let r = probe(&prober(), &format!("https://localhost:{}/", addr.port())).await;
    assert_eq!(r.cause, Some(Cause::Tls), "{r:?}");
    let wrong = pki(&["other.example"]);
    let addr = serve_tls(wrong.server.clone()).await;
    let p = HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, Some(&wrong.ca_file)).unwrap();
    let r = probe(&p, &format!("https://localhost:{}/", addr.port())).await;
    assert_eq!(r.cause, Some(Cause::Tls), "{r:?}");
}

#[tokio::test]
async fn a_tls_handshake_that_never_completes_is_a_timeout_not_a_tls_error() {
    let addr = serve(|s: TcpStream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let r = probe(&prober(), &format!("https://localhost:{}/", addr.port())).await;
    assert_eq!(r.cause, Some(Cause::Timeout), "{r:?}");
    assert_eq!(r.detail.as_deref(), Some("TLS handshake did not complete in time"));
    assert!(r.connect.is_some() && r.tls.is_none());
}

#[test]
fn an_unreadable_or_empty_ca_file_is_a_clear_error() {
    let missing = HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, Some(std::path::Path::new("/nonexistent/ca.pem")));
    let text = missing.err().expect("must fail").to_string();
    assert!(text.starts_with("EXTRA_CA_CERTS: cannot read /nonexistent/ca.pem"), "{text}");
    let dir = std::env::temp_dir().join(format!("nwd-empty-{}", rand_suffix()));
    std::fs::write(&dir, "not a certificate").unwrap();
    let text = HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, Some(&dir)).err().expect("must fail").to_string();
    let _ = std::fs::remove_file(&dir);
    assert!(text.contains("no PEM certificate"), "{text}");
}
