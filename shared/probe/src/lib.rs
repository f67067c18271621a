//! One probe = fresh DNS lookup + fresh TCP connection + full TLS handshake + one HTTP/1.1 request,
//! bounded by one timeout, reading the response head only (never the body). A probe not finished after
//! 40 % (and 70 %) of its timeout races another, equally fresh attempt, so one lost packet does not
//! fail it.
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
use std::task::Poll;
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

/// A probe still running at these fractions of its timeout starts another fresh attempt racing the
/// ones before (see `staggered`): at 0.24 s and 0.42 s of the default 0.6 s.
const HEDGE_FRACTIONS: [f64; 2] = [0.4, 0.7];

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

impl Progress {
    /// How far the attempt got: DNS, connect, TLS, response head.
    fn reach(&self) -> usize {
        [self.dns.is_some(), self.connect.is_some(), self.tls.is_some(), self.status.is_some()]
            .iter()
            .filter(|&&reached| reached)
            .count()
    }
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
        let mut progress: [Progress; 1 + HEDGE_FRACTIONS.len()] = Default::default();
        let offsets = HEDGE_FRACTIONS.map(|f| self.timeout.mul_f64(f));
        let attempts = progress.each_mut().map(|p| self.attempt(target, start, p));
        let outcome = tokio::time::timeout(self.timeout, staggered(&offsets, attempts)).await;
        // The report is the winner's; a failure is the first attempt's to fail definitively; when the
        // clock ran out, the phase is the one the furthest attempt was stuck in.
        let (progress, failure) = match outcome {
            Ok((i, result)) => {
                let progress = std::mem::take(&mut progress[i]);
                (progress, result.err())
            }
            Err(_) => {
                let furthest = progress.iter_mut().rev().max_by_key(|p| p.reach());
                let progress = furthest.map(std::mem::take).unwrap_or_default();
                let failure = Self::timed_out(target, &progress);
                (progress, Some(failure))
            }
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
    /// The cause of a probe whose clock ran out, from the phase it was stuck in.
    fn timed_out(target: &Target, progress: &Progress) -> Failure {
        match (&progress.dns, &progress.connect) {
            (None, _) => fail(Cause::Dns, "DNS lookup timed out"),
            (Some(_), None) => fail(Cause::ConnectTimeout, "TCP connection not established in time"),
            // A stalled handshake is a stalled path (loss, a dead NAT after connect), not a
            // certificate or protocol problem: `tls` is kept for those.
            _ if progress.tls.is_none() && target.is_tls() => fail(Cause::Timeout, "TLS handshake did not complete in time"),
            _ => fail(Cause::Timeout, "no complete response head in time"),
        }
    }

    async fn attempt(&self, target: &Target, start: Instant, progress: &mut Progress) -> Result<(), Failure> {
        // DNS: a fresh system lookup every time (no in-process cache).
        let addrs = resolve(target.host(), target.port(), self.ipv4_only).await?;
        progress.dns = Some(start.elapsed());

        // TCP: try each address in turn; immediate errors move on, the shared timeout bounds it all.
        let mut last = fail(Cause::Other, "no address to connect to");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
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

/// A probe in staggered attempts. One lost packet costs a sub-second probe: Linux resends a lost
/// SYN (or answers a lost SYN-ACK) after its 1 s initial RTO, a lost data segment after at least
/// 200 ms, and glibc re-sends a lost DNS query after 5 s. So attempt `i + 1` (its own DNS query,
/// connection and handshake) starts at `offsets[i]` unless the probe has ended by then, racing the
/// ones before: one lost packet anywhere then costs an offset, not the probe. With 20 % loss each
/// way a SYN exchange fails 36 % of the time; three of them all fail 5 % of the time, two 13 %.
///
/// - The first success wins.
/// - When every attempt started so far has failed, the probe fails with the failure of the earliest
///   of them and no further attempt starts: a refused connection (a reset path) fails at once.
/// - A dead path fails every attempt within the same timeout, so detection is unchanged.
///
/// Returns the index of the attempt whose outcome it is. The attempts are created up front but not
/// polled before their start (a future does nothing until polled).
async fn staggered<T, E, F, const N: usize>(offsets: &[Duration], attempts: [F; N]) -> (usize, Result<T, E>)
where
    F: Future<Output = Result<T, E>>,
{
    let t0 = Instant::now();
    let mut attempts = attempts.map(Box::pin);
    let mut done = [false; N];
    let mut started = if offsets.is_empty() { N } else { 1 };
    let mut first_failure: Option<(usize, E)> = None;
    let mut timer = Box::pin(tokio::time::sleep_until(t0 + offsets.first().copied().unwrap_or_default()));
    std::future::poll_fn(|cx| {
        while started < N && timer.as_mut().poll(cx).is_ready() {
            started += 1;
            if let Some(&next) = offsets.get(started - 1) {
                timer.as_mut().reset(t0 + next);
            }
        }
        for i in 0..started {
            if done[i] {
                continue;
            }
            if let Poll::Ready(result) = attempts[i].as_mut().poll(cx) {
                done[i] = true;
                match result {
                    Ok(v) => return Poll::Ready((i, Ok(v))),
                    Err(e) => {
                        if first_failure.as_ref().is_none_or(|(j, _)| i < *j) {
                            first_failure = Some((i, e));
                        }
                    }
                }
            }
        }
        if done[..started].iter().all(|&d| d) {
            if let Some((i, e)) = first_failure.take() {
                return Poll::Ready((i, Err(e)));
            }
        }
        Poll::Pending
    })
    .await
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

#[cfg(test)]
mod tests {
    //! `staggered` under paused time: which attempt's outcome a probe reports, and when.
    use super::*;
    use std::cell::Cell;
    use tokio::time::sleep;

    const OFFSETS: [Duration; 2] = [Duration::from_millis(240), Duration::from_millis(420)];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    type Outcome = Result<&'static str, &'static str>;

    /// An attempt that counts its start in `polled` and ends `after` it with `outcome`.
    async fn attempt(polled: &Cell<u32>, after: Duration, outcome: Outcome) -> Outcome {
        polled.set(polled.get() + 1);
        sleep(after).await;
        outcome
    }

    /// Three attempts, the i-th ending `plan[i].0` ms after its start with `plan[i].1`, each counting
    /// its start in `started[i]`.
    fn three(started: &[Cell<u32>; 3], plan: [(u64, Outcome); 3]) -> [impl Future<Output = Outcome> + '_; 3] {
        std::array::from_fn(|i| attempt(&started[i], ms(plan[i].0), plan[i].1))
    }

    fn starts(started: &[Cell<u32>; 3]) -> [u32; 3] {
        started.each_ref().map(Cell::get)
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_done_before_the_first_offset_is_the_outcome_and_no_other_starts() {
        let started = Default::default();
        let t0 = Instant::now();
        let attempts = three(&started, [(30, Ok("a")), (0, Ok("b")), (0, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (0, Ok("a")));
        assert_eq!(t0.elapsed(), ms(30));
        assert_eq!(starts(&started), [1, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_failure_is_reported_at_once_like_a_reset_path() {
        let started = Default::default();
        let t0 = Instant::now();
        let attempts = three(&started, [(2, Err("refused")), (0, Ok("b")), (0, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (0, Err("refused")));
        assert_eq!(t0.elapsed(), ms(2));
        assert_eq!(starts(&started), [1, 0, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_attempt_is_overtaken_by_the_next_one_at_its_offset() {
        // A lost packet stalls the first attempt for a retransmission timeout; the second, started at
        // 240 ms, answers 30 ms later; the third never starts.
        let started = Default::default();
        let t0 = Instant::now();
        let attempts = three(&started, [(1000, Ok("a")), (30, Ok("b")), (0, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (1, Ok("b")));
        assert_eq!(t0.elapsed(), ms(270));
        assert_eq!(starts(&started), [1, 1, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn when_two_attempts_stall_the_third_answers() {
        let started = Default::default();
        let t0 = Instant::now();
        let attempts = three(&started, [(1000, Ok("a")), (1000, Ok("b")), (20, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (2, Ok("c")));
        assert_eq!(t0.elapsed(), ms(440));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_while_another_attempt_runs_waits_for_it() {
        let started = Default::default();
        // The first fails at 300 ms, the second (240 + 100 ms) still answers.
        let attempts = three(&started, [(300, Err("reset")), (100, Ok("b")), (500, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (1, Ok("b")));
        // The second fails at 250 ms, the first still answers at 350 ms, before the third would start.
        let attempts = three(&started, [(350, Ok("a")), (10, Err("refused")), (0, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (0, Ok("a")));
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_started_attempt_failed_the_earliest_ones_failure_is_reported_and_none_starts() {
        let started = Default::default();
        let t0 = Instant::now();
        // Both started attempts fail (at 300 and 250 ms) before the third's offset (420 ms).
        let attempts = three(&started, [(300, Err("a")), (10, Err("b")), (0, Ok("c"))]);
        assert_eq!(staggered(&OFFSETS, attempts).await, (0, Err("a")));
        assert_eq!(t0.elapsed(), ms(300));
        assert_eq!(starts(&started), [1, 1, 0]);
    }

    #[tokio::test(start_paused = true)]
    async fn without_offsets_there_is_one_attempt() {
        let none = Cell::new(0);
        assert_eq!(staggered(&[], [attempt(&none, ms(700), Ok("a"))]).await, (0, Ok("a")));
    }

    #[test]
    fn a_timeout_is_named_after_the_phase_the_attempt_was_stuck_in() {
        let target = Target::parse("https://example.com/").unwrap();
        let nothing = Progress::default();
        let resolved = Progress { dns: Some(Duration::ZERO), ..Progress::default() };
        let connected = Progress { dns: Some(Duration::ZERO), connect: Some(Duration::ZERO), ..Progress::default() };
        assert!(nothing.reach() < resolved.reach() && resolved.reach() < connected.reach());
        assert_eq!(HttpProber::timed_out(&target, &nothing).cause, Cause::Dns);
        assert_eq!(HttpProber::timed_out(&target, &resolved).cause, Cause::ConnectTimeout);
        assert_eq!(HttpProber::timed_out(&target, &connected).cause, Cause::Timeout);
    }
}
