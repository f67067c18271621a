//! Loopback servers, probes and a test PKI shared by the prober tests (`probes`, `hostile`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nat_watchdog_core::{StatusPolicy, Target};
use nat_watchdog_probe::{HttpProber, ProbeReport, Prober};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const TIMEOUT: Duration = Duration::from_millis(400);
/// Scheduling slack on a loaded 2-core CI machine; a probe's own bound is TIMEOUT.
pub const SLACK: Duration = Duration::from_millis(600);

/// A loopback HTTP server that answers every connection with `behaviour`.
pub async fn serve<F, Fut>(behaviour: F) -> SocketAddr
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

pub async fn read_request(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

pub fn respond(status: &'static str) -> impl Fn(TcpStream) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync {
    move |mut s: TcpStream| {
        Box::pin(async move {
            read_request(&mut s).await;
            let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await;
        })
    }
}

pub fn prober() -> HttpProber {
    HttpProber::new(TIMEOUT, StatusPolicy::Below500, true, None).unwrap()
}

pub async fn probe(p: &HttpProber, url: &str) -> ProbeReport {
    let started = std::time::Instant::now();
    let report = p.probe(&Target::parse(url).unwrap()).await;
    assert!(started.elapsed() <= TIMEOUT + SLACK, "{url}: probe took {:?}", started.elapsed());
    report
}

/// A test CA and a server certificate for `names`, written as PEM files.
pub struct Pki {
    pub ca_file: PathBuf,
    pub server: Arc<tokio_rustls::rustls::ServerConfig>,
    _dir: TempDir,
}

pub struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pki(names: &[&str]) -> Pki {
    pki_valid_until(names, None)
}

/// Like [`pki`]; the server certificate's `not_after` is `(year, month, day)` when given.
pub fn pki_valid_until(names: &[&str], not_after: Option<(i32, u8, u8)>) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if let Some((y, m, d)) = not_after {
        leaf_params.not_before = rcgen::date_time_ymd(y - 1, m, d);
        leaf_params.not_after = rcgen::date_time_ymd(y, m, d);
    }
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

pub fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

pub async fn serve_tls(config: Arc<tokio_rustls::rustls::ServerConfig>) -> SocketAddr {
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

