//! One probe = fresh DNS lookup + fresh TCP connection + full TLS handshake + one HTTP/1.1 request,
//! bounded by one timeout, reading the response head only (never the body).
//!
//! Each phase is done here rather than inside an HTTP client library so that a failure is classified
//! by the phase it happened in (a blackholed NAT shows as `connect_timeout`, a broken middlebox as
//! `tls`, a stalled server as `timeout`) and no connection pool, DNS cache or TLS session cache can
//! make a dead egress path look alive.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

pub use nat_watchdog_core::Cause;
use nat_watchdog_core::{StatusPolicy, Target};

/// What one probe saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// `None` when the path works.
    pub cause: Option<Cause>,
    /// HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// Start to response head (or to the failure).
    pub latency: Duration,
    /// Per phase, where reached.
    pub dns: Option<Duration>,
    pub connect: Option<Duration>,
    pub tls: Option<Duration>,
    /// A short human explanation of a failure (never contains the URL's secrets).
    pub detail: Option<String>,
}

impl ProbeReport {
    pub fn ok(&self) -> bool {
        self.cause.is_none()
    }
}

/// The capability to probe one target. The engine's loop is generic over it; tests script it.
pub trait Prober: Send + Sync {
    fn probe(&self, target: &Target) -> impl Future<Output = ProbeReport> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("EXTRA_CA_CERTS: cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("EXTRA_CA_CERTS: {path} holds no PEM certificate")]
    Empty { path: String },
    #[error("EXTRA_CA_CERTS: {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// When TCP has not connected after this fraction of the timeout, a second attempt races the first.
const HEDGE_FRACTION: f64 = 0.4;

/// Largest response head read; anything larger is not a probe answer we need.
const MAX_HEAD: usize = 16 * 1024;

/// The real prober: DNS via the system resolver, TCP, rustls, HTTP/1.1 — each fresh per probe.
pub struct HttpProber {
    timeout: Duration,
    policy: StatusPolicy,
    ipv4_only: bool,
    tls: TlsConnector,
    user_agent: String,
}

impl HttpProber {
    pub fn new(
        timeout: Duration,
        policy: StatusPolicy,
        ipv4_only: bool,
        extra_ca_certs: Option<&Path>,
    ) -> Result<HttpProber, TlsSetupError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_ca_certs {
            add_pem_file(&mut roots, path)?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Every probe must do a full handshake across the NAT: no session tickets, no resumption.
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpProber {
            timeout,
            policy,
            ipv4_only,
            tls: TlsConnector::from(Arc::new(config)),
            user_agent: format!("nat-egress-watchdog/{}", env!("CARGO_PKG_VERSION")),
        })
    }
}

fn add_pem_file(roots: &mut rustls::RootCertStore, path: &Path) -> Result<(), TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| TlsSetupError::Read { path: shown.clone(), source })?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| TlsSetupError::Invalid { path: shown.clone(), reason: e.to_string() })?;
        roots
            .add(cert)
            .map_err(|e| TlsSetupError::Invalid { path: shown.clone(), reason: e.to_string() })?;
        added += 1;
    }
    if added == 0 {
        return Err(TlsSetupError::Empty { path: shown });
    }
    Ok(())
}

/// Where a probe got to; decides the cause when the clock runs out.
#[derive(Default)]
struct Progress {
    dns: Option<Duration>,
    connect: Option<Duration>,
    tls: Option<Duration>,
    status: Option<u16>,
}

struct Failure {
    cause: Cause,
    detail: String,
}

fn fail(cause: Cause, detail: impl Into<String>) -> Failure {
    Failure { cause, detail: detail.into() }
}

impl Prober for HttpProber {
    async fn probe(&self, target: &Target) -> ProbeReport {
        let start = Instant::now();
        let mut progress = Progress::default();
        let outcome = tokio::time::timeout(self.timeout, self.attempt(target, start, &mut progress)).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(f),
            Err(_) => Some(match (&progress.dns, &progress.connect) {
                (None, _) => fail(Cause::Dns, "DNS lookup timed out"),
                (Some(_), None) => fail(Cause::ConnectTimeout, "TCP connection not established in time"),
                // A stalled handshake is a stalled path (loss, a dead NAT after connect), not a
                // certificate or protocol problem: `tls` is kept for those.
                _ if progress.tls.is_none() && target.is_tls() => fail(Cause::Timeout, "TLS handshake did not complete in time"),
                _ => fail(Cause::Timeout, "no complete response head in time"),
            }),
        };
        ProbeReport {
            cause: failure.as_ref().map(|f| f.cause),
            status: progress.status,
            latency: start.elapsed(),
            dns: progress.dns,
            connect: progress.connect,
            tls: progress.tls,
            detail: failure.map(|f| f.detail),
        }
    }
}

impl HttpProber {
    async fn attempt(&self, target: &Target, start: Instant, progress: &mut Progress) -> Result<(), Failure> {
        // DNS: a fresh system lookup every time (no in-process cache).
        let addrs = resolve(target.host(), target.port(), self.ipv4_only).await?;
        progress.dns = Some(start.elapsed());

        // TCP: try each address in turn; immediate errors move on, the shared timeout bounds it all.
        let mut last = fail(Cause::Other, "no address to connect to");
        let mut stream = None;
        let hedge_after = self.timeout.mul_f64(HEDGE_FRACTION);
        for addr in addrs {
            match connect_hedged(addr, hedge_after).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = classify_connect(&e),
            }
        }
        let stream = stream.ok_or(last)?;
        let _ = stream.set_nodelay(true);
        progress.connect = Some(start.elapsed());

        if target.is_tls() {
            let name = rustls::pki_types::ServerName::try_from(target.host().to_string())
                .map_err(|e| fail(Cause::Other, format!("invalid TLS server name: {e}")))?;
            let tls = self.tls.connect(name, stream).await.map_err(|e| classify_tls(&e))?;
            progress.tls = Some(start.elapsed());
            self.exchange(target, tls, progress).await
        } else {
            self.exchange(target, stream, progress).await
        }
    }

    async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        target: &Target,
        mut stream: S,
        progress: &mut Progress,
    ) -> Result<(), Failure> {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            target.request_target(),
            target.authority(),
            self.user_agent
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| fail(Cause::Other, format!("sending the request: {}", e.kind())))?;
        let status = read_status(&mut stream).await?;
        progress.status = Some(status);
        if self.policy.accepts(status) {
            Ok(())
        } else {
            Err(fail(Cause::HttpStatus, format!("HTTP status {status} is outside HTTP_STATUS_POLICY")))
        }
    }
}

async fn resolve(host: &str, port: u16, ipv4_only: bool) -> Result<Vec<SocketAddr>, Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ipv4_only && ip.is_ipv6() {
            return Err(fail(Cause::Dns, "IPv6 literal while IPV4_ONLY=true"));
        }
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(Cause::Dns, format!("lookup failed: {e}")))?;
    let mut addrs: Vec<SocketAddr> = found.filter(|a| !ipv4_only || a.is_ipv4()).collect();
    // IPv4 first: IPv6 egress does not cross a NAT instance at all.
    addrs.sort_by_key(|a| a.is_ipv6());
    addrs.dedup();
    if addrs.is_empty() {
        return Err(fail(Cause::Dns, if ipv4_only { "no IPv4 address (IPV4_ONLY=true)" } else { "no address" }));
    }
    Ok(addrs)
}

/// Linux retransmits a lost SYN (or answers a lost SYN-ACK) only after its 1 s initial RTO, later
/// than a sub-second probe timeout, so one lost packet would fail the probe. A second attempt started
/// at `hedge_after` races the first: one lost packet then costs `hedge_after`, not the probe. A dead
/// path still fails both attempts, in the same time, so detection is unchanged.
async fn connect_hedged(addr: SocketAddr, hedge_after: Duration) -> io::Result<TcpStream> {
    let first = TcpStream::connect(addr);
    tokio::pin!(first);
    tokio::select! {
        result = &mut first => return result,
        () = tokio::time::sleep(hedge_after) => {}
    }
    let second = TcpStream::connect(addr);
    tokio::pin!(second);
    // The first to connect wins; an error from one still waits for the other.
    tokio::select! {
        result = &mut first => match result {
            Ok(stream) => Ok(stream),
            Err(e) => second.await.or(Err(e)),
        },
        result = &mut second => match result {
            Ok(stream) => Ok(stream),
            Err(e) => first.await.or(Err(e)),
        },
    }
}

fn classify_connect(e: &io::Error) -> Failure {
    let cause = match e.kind() {
        io::ErrorKind::ConnectionRefused => Cause::ConnectRefused,
        io::ErrorKind::TimedOut => Cause::ConnectTimeout,
        _ => Cause::Other,
    };
    fail(cause, format!("connect: {e}"))
}

fn classify_tls(e: &io::Error) -> Failure {
    let is_rustls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    if is_rustls || e.kind() == io::ErrorKind::InvalidData {
        return fail(Cause::Tls, format!("TLS handshake: {e}"));
    }
    match e.kind() {
        // The peer hung up in the middle of the handshake: the handshake failed.
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            fail(Cause::Tls, format!("TLS handshake: connection closed ({})", e.kind()))
        }
        _ => fail(Cause::Other, format!("TLS handshake: {e}")),
    }
}

/// Reads until the response head is complete (bounded by MAX_HEAD) and returns the status code.
async fn read_status<S: AsyncRead + Unpin>(stream: &mut S) -> Result<u16, Failure> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(|e| fail(Cause::Other, format!("reading the response: {}", e.kind())))?;
        if n == 0 {
            return Err(fail(Cause::Other, "connection closed before a complete response head"));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                return response.code.ok_or_else(|| fail(Cause::Other, "response without a status code"));
            }
            Ok(httparse::Status::Partial) if filled < buf.len() => continue,
            Ok(httparse::Status::Partial) => {
                // A status line is enough to know the path works, even if the head is huge.
                return response.code.ok_or_else(|| fail(Cause::Other, "response head larger than 16 KiB"));
            }
            Err(httparse::Error::TooManyHeaders) => {
                return response.code.ok_or_else(|| fail(Cause::Other, "too many response headers"));
            }
            Err(e) => return Err(fail(Cause::Other, format!("malformed HTTP response: {e}"))),
        }
    }
}
