//! Time: an injectable [`Clock`] of microsecond timestamps, and the two date formats of the API
//! (RFC 2822 for 2010-04-01, ISO 8601 `YYYY-MM-DDTHH:MM:SSZ` for v1/v2).
//!
//! Everything in the service layer asks its `Clock` for the time, never the system directly,
//! so tests can run a ledger or a job at a chosen instant.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;
use time::macros::format_description;

/// One day in microseconds.
pub const DAY_US: i64 = 86_400 * 1_000_000;

/// A source of timestamps.
pub trait Clock: Send + Sync + core::fmt::Debug {
    /// Microseconds since the Unix epoch. Never repeats and never goes back within a process,
    /// so "most recently added" and newest-first paging are never ambiguous.
    fn now_us(&self) -> i64;
}

/// The system clock, made strictly increasing.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

static LAST: AtomicI64 = AtomicI64::new(0);

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        now_us()
    }
}

/// [`SystemClock`]'s time, for code that has no clock handed to it (ID minting, tests).
pub fn now_us() -> i64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = wall.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => prev = actual,
        }
    }
}

/// A clock that stands still until told to move, for tests. Each reading still advances by
/// one microsecond, like [`SystemClock`].
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock at `us`.
    pub fn at(us: i64) -> Self {
        Self(AtomicI64::new(us))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by_us: i64) {
        self.0.fetch_add(by_us, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> i64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

fn to_datetime(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `Fri, 14 Oct 2016 21:56:34 +0000`.
pub fn rfc2822(us: i64) -> String {
    to_datetime(us).format(&Rfc2822).unwrap_or_default()
}

/// `2015-07-31T04:00:00Z`, exactly as twilio-python parses it.
pub fn iso8601(us: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    to_datetime(us).format(&fmt).unwrap_or_default()
}

/// Parses the date filters clients send: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SSZ`, or RFC 2822.
/// Returns microseconds and whether only a day was given.
pub fn parse_date(text: &str) -> Option<(i64, bool)> {
    let text = text.trim();
    let day = format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(text, &day) {
        return Some((d.midnight().assume_utc().unix_timestamp() * 1_000_000, true));
    }
    let full = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    if let Ok(dt) = time::PrimitiveDateTime::parse(text, &full) {
        return Some((dt.assume_utc().unix_timestamp() * 1_000_000, false));
    }
    if let Ok(dt) = OffsetDateTime::parse(text, &Rfc2822) {
        return Some((dt.unix_timestamp() * 1_000_000, false));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let us = 1_476_482_194 * 1_000_000;
        assert_eq!(rfc2822(us), "Fri, 14 Oct 2016 21:56:34 +0000");
        assert_eq!(iso8601(us), "2016-10-14T21:56:34Z");
        assert_eq!(
            parse_date("2016-10-14"),
            Some((1_476_403_200 * 1_000_000, true))
        );
        assert_eq!(parse_date("2016-10-14T21:56:34Z"), Some((us, false)));
        assert!(parse_date("yesterday").is_none());
        let a = now_us();
        assert!(now_us() > a);
    }

    #[test]
    fn manual_clock() {
        let c = ManualClock::at(1000);
        let a = c.now_us();
        c.advance(5_000_000);
        assert!(c.now_us() >= a + 5_000_000);
    }
}
