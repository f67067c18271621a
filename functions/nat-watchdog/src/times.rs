//! RFC 3339 instants and short durations, as the command prints and reads them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::date_time::{DateTime, Format};

/// `2026-11-23T12:00:05Z` (whole seconds, UTC).
pub fn fmt_time(t: SystemTime) -> String {
    DateTime::from_secs(epoch(t)).fmt(Format::DateTime).unwrap_or_else(|_| "?".to_string())
}

/// Any RFC 3339 instant (fractions and offsets allowed).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    let dt = DateTime::from_str(s, Format::DateTime).ok()?;
    SystemTime::try_from(dt).ok()
}

pub fn epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

pub fn from_epoch(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `45s`, `3m05s`, `2h07m`, `3d04h`; a negative span (clocks disagree) prints as `-` + span.
pub fn fmt_span(from: SystemTime, to: SystemTime) -> String {
    match to.duration_since(from) {
        Ok(d) => fmt_duration(d),
        Err(e) => format!("-{}", fmt_duration(e.duration())),
    }
}

pub fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_fractions() {
        let t = parse_time("2026-11-23T15:00:00Z").unwrap();
        assert_eq!(fmt_time(t), "2026-11-23T15:00:00Z");
        assert_eq!(fmt_time(parse_time("2026-11-23T15:00:00.987Z").unwrap()), "2026-11-23T15:00:00Z");
        assert_eq!(parse_time("tomorrow"), None);
    }

    #[test]
    fn spans() {
        let t = from_epoch(1_000_000);
        assert_eq!(fmt_span(t, t + Duration::from_secs(45)), "45s");
        assert_eq!(fmt_span(t, t + Duration::from_secs(185)), "3m05s");
        assert_eq!(fmt_span(t, t + Duration::from_secs(7620)), "2h07m");
        assert_eq!(fmt_span(t + Duration::from_secs(5), t), "-5s");
    }
}
