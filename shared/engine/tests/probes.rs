//! The real prober against servers on 127.0.0.1 that behave well and badly: every probe ends within
//! its timeout and names the phase that failed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nat_watchdog_engine::{Cause, HttpProber, ProbeReport, Prober, StatusPolicy, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(400);
/// Scheduling slack on a loaded 2-core CI machine; a probe's own bound is TIMEOUT.
const SLACK: Duration = Duration::from_millis(600);

/// A loopback HTTP server that answers every connection with `behaviour`.
async fn serve<F, Fut>(behaviour: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let behaviour = Arc::new(behaviour);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behaviour(stream));
        }
    });
    addr
}

async fn read_request(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

fn respond(status: &'static str) -> impl Fn(TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync {
    move |mut s: TcpStream| {
        Box::pin(async move {
            read_request(&mut s).await;
            let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await;
        })
    }
}

fn prober() -> HttpProber {
    HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, None).unwrap()
}

async fn probe(p: &HttpProber, url: &str) -> ProbeReport {
    let started = std::time::Instant::now();
    let report = p.probe(&Target::parse(url).unwrap()).await;
    assert!(started.elapsed() <= TIMEOUT + SLACK, "{url}: probe took {:?}", started.elapsed());
    report
}

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

#[tokio::test]
async fn a_full_accept_queue_drops_the_syn_and_is_connect_timeout() {
    // A listener that never accepts, with its queue filled: the kernel drops further SYNs, which is
    // what a blackholed NAT looks like from the subnet.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let _listener = socket.listen(0).unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(addr)).await {
            fillers.push(s);
        }
    }
    let r = probe(&prober(), &format!("http://{addr}/")).await;
    assert_eq!(r.cause, Some(Cause::ConnectTimeout), "{r:?}");
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

/// A test CA and a server certificate for `names`, written as PEM files.
struct Pki {
    ca_file: PathBuf,
    server: Arc<tokio_rustls::rustls::ServerConfig>,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pki(names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let dir = std::env::temp_dir().join(format!("nwd-pki-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
        )
        .unwrap();
    Pki { ca_file, server: Arc::new(server), _dir: TempDir(dir) }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

async fn serve_tls(config: Arc<tokio_rustls::rustls::ServerConfig>) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    serve(move |s: TcpStream| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(s).await {
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n").await;
                let _ = tls.shutdown().await;
            }
        }
    })
    .await
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
async fn a_tls_handshake_that_never_completes_is_tls() {
    let addr = serve(|s: TcpStream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let r = probe(&prober(), &format!("https://localhost:{}/", addr.port())).await;
    assert_eq!(r.cause, Some(Cause::Tls), "{r:?}");
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
