//! The run loop's outside capabilities that need no AWS, one small trait each, with their real
//! adapters: the wall clock and where metric documents go. (The prober is `nat_watchdog_probe::Prober`,
//! the failover port is [`crate::failover::FailoverPort`]; their AWS and network adapters live in
//! their own crates.)

use std::io::{self, Write};
use std::time::SystemTime;

use tokio::time::Instant;

/// Wall-clock time for timestamps. Cadence and deadlines use tokio's monotonic clock instead.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// Wall time read once and advanced by the monotonic clock: never jumps backwards mid-run, and
/// follows tokio's paused clock in tests.
#[derive(Debug, Clone, Copy)]
pub struct AnchoredClock {
    wall: SystemTime,
    mono: Instant,
}

impl AnchoredClock {
    pub fn new() -> Self {
        AnchoredClock { wall: SystemTime::now(), mono: Instant::now() }
    }
    /// A clock that reads `wall` now (tests pin the calendar this way).
    pub fn starting_at(wall: SystemTime) -> Self {
        AnchoredClock { wall, mono: Instant::now() }
    }
}

impl Default for AnchoredClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for AnchoredClock {
    fn now(&self) -> SystemTime {
        self.wall + self.mono.elapsed()
    }
}

/// Where EMF documents go: one complete JSON document per call.
pub trait MetricSink: Send {
    fn emit(&mut self, document: &str) -> io::Result<()>;
}

/// Writes each document as one line with a single write, so documents never interleave or tear.
pub struct LineWriter<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> LineWriter<W> {
    pub fn new(out: W) -> Self {
        LineWriter { out }
    }
}

impl<W: Write + Send> MetricSink for LineWriter<W> {
    fn emit(&mut self, document: &str) -> io::Result<()> {
        let mut line = Vec::with_capacity(document.len() + 1);
        line.extend_from_slice(document.as_bytes());
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

/// Collects documents in memory (tests, and callers that post-process).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    pub documents: Vec<String>,
}

impl MetricSink for MemorySink {
    fn emit(&mut self, document: &str) -> io::Result<()> {
        self.documents.push(document.to_string());
        Ok(())
    }
}
