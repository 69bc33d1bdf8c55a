//! Durations as people write them, in the configuration and on the command line: `500ms`, `10s`,
//! `2m`, `1h`, and sums like `1m30s`. Here rather than in the configuration's parser so that the
//! init-only build (no configuration at all) reads `--grace` exactly as the full build does, and
//! sets its deadlines with the same [`later`].

use std::time::{Duration, Instant};

/// `at + d`, or a century later when `d` is too large for the clock (a configuration may say
/// `stop_timeout = "100000000h"`): a deadline so far away is never, without overflowing.
pub fn later(at: Instant, d: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(d.min(CENTURY)).unwrap_or(at)
}

/// Parses `"500ms"`, `"10s"`, `"2m"`, `"1h"`, and sums like `"1m30s"`. A bare `"0"` is zero;
/// any other number needs a unit, since `"10"` could mean seconds or milliseconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let (number, after) = rest.split_at_checked(digits)?;
        let n: u64 = number.parse().ok()?;
        rest = after;
        let (part, tail) = if let Some(t) = rest.strip_prefix("ms") {
            (Duration::from_millis(n), t)
        } else if let Some(t) = rest.strip_prefix('s') {
            (Duration::from_secs(n), t)
        } else if let Some(t) = rest.strip_prefix('m') {
            (Duration::from_secs(n.checked_mul(60)?), t)
        } else if let Some(t) = rest.strip_prefix('h') {
            (Duration::from_secs(n.checked_mul(3600)?), t)
        } else {
            return None;
        };
        total = total.checked_add(part)?;
        rest = tail;
    }
    Some(total)
}
