//! Hostile or broken targets not covered by `probes`: slowloris, a redirect loop, an expired
//! certificate, a server that hangs up at once. Every probe ends within its timeout (checked by
//! `support::probe`) with the cause the on-call would expect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nat_watchdog_core::{Cause, StatusPolicy};
use nat_watchdog_probe::HttpProber;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{pki_valid_until, probe, prober, read_request, serve, serve_tls, TIMEOUT};

#[tokio::test]
async fn slowloris_headers_one_byte_per_second_are_a_timeout() {
    // The status line arrives at once, then the headers trickle in: a head is never complete in time,
    // and a status line alone is not taken for an answer.
    let addr = serve(|mut s: TcpStream| async move {
        read_request(&mut s).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
        for b in b"X-Slow: ".iter().cycle().take(120) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!((r.cause, r.status), (Some(Cause::Timeout), None), "{r:?}");
    assert!(r.latency >= TIMEOUT, "ended by the timeout, not by the server: {r:?}");
}

#[tokio::test]
async fn an_endless_redirect_loop_is_one_request_and_a_3xx_passes_below_500() {
    // Every answer is a redirect to itself. The prober never follows redirects: a 3xx crossed the NAT.
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let addr = serve(move |mut s: TcpStream| {
        let seen = seen.clone();
        async move {
            read_request(&mut s).await;
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = s
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    })
    .await;
    let url = format!("http://{addr}/loop");
    let r = probe(&prober(), &url).await;
    assert_eq!((r.cause, r.status), (None, Some(302)), "{r:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "the redirect was not followed");

    // Under a 2xx-only policy the same answer is an HTTP-status failure, still after one request.
    let strict = HttpProber::new(TIMEOUT, StatusPolicy::Ranges(vec![(200, 299)]), true, None).unwrap();
    let r = probe(&strict, &url).await;
    assert_eq!((r.cause, r.status), (Some(Cause::HttpStatus), Some(302)), "{r:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_expired_certificate_is_tls_even_from_a_trusted_ca() {
    let pki = pki_valid_until(&["localhost"], Some((2021, 1, 1)));
    let addr = serve_tls(pki.server.clone()).await;
    let p = HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, Some(&pki.ca_file)).unwrap();
    let r = probe(&p, &format!("https://localhost:{}/", addr.port())).await;
    assert_eq!((r.cause, r.status), (Some(Cause::Tls), None), "{r:?}");
    assert!(r.detail.as_deref().unwrap_or("").to_ascii_lowercase().contains("expired"), "{r:?}");

    // The control: the same CA and name, valid today, is accepted.
    let fresh = pki_valid_until(&["localhost"], None);
    let addr = serve_tls(fresh.server.clone()).await;
    let p = HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, Some(&fresh.ca_file)).unwrap();
    assert_eq!(probe(&p, &format!("https://localhost:{}/", addr.port())).await.cause, None);
}

#[tokio::test]
async fn a_server_that_accepts_and_closes_at_once_fails_fast_with_a_named_cause() {
    let addr = serve(|s: TcpStream| async move { drop(s) }).await;
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!(r.cause, Some(Cause::Other), "{r:?}");
    assert!(r.connect.is_some() && r.latency < TIMEOUT, "not a timeout: {r:?}");
    let r = probe(&prober(), &format!("https://localhost:{}/", addr.port())).await;
    assert_eq!(r.cause, Some(Cause::Tls), "a hang-up during the handshake: {r:?}");
    assert!(r.latency < TIMEOUT, "{r:?}");
}
