//! How one line pidone writes looks: the RFC 3339 time of `timestamps`, and the JSON objects of
//! `format = "json"`, for the services' lines and pidone's own alike.
//!
//! Both are written by hand: a calendar conversion (Howard Hinnant's `civil_from_days`, integers
//! only) and a JSON string escape are a few lines each, where a crate would cost the static binary
//! more than they do.
//!
//! # JSON
//! One object per line: `{"time":"2026-11-29T20:36:03.123Z","service":"web","stream":"stdout",
//! "message":"..."}`, pidone's own messages with `"level"` in place of `"stream"`. The message is
//! the line without its newline; `"`, `\` and control characters are escaped as JSON requires, and
//! each byte that is not part of valid UTF-8 is written as the four characters `\xNN` (so the
//! object stays valid JSON and no byte is lost). An object never exceeds the line limit: a longer
//! message is cut (between characters) into several objects, each but the last marked
//! `"partial":true`, as Docker's json-file driver marks the parts of a long line.

use std::time::{SystemTime, UNIX_EPOCH};

/// The global look of every line pidone writes (`[log]`, `--log-timestamps`, `--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Each text line starts with the time it was read, `2026-11-29T20:36:03.123Z `.
    pub timestamps: bool,
    /// Each line is one JSON object (which always carries its time).
    pub json: bool,
}

/// The length of a time as [`stamp`] writes it: `2026-11-29T20:36:03.123Z`.
pub const STAMP_LEN: usize = 24;

/// `now` in RFC 3339, UTC, with milliseconds. A clock before 1970 reads as 1970; the year is
/// written with four digits (modulo 10000).
pub fn stamp(now: SystemTime) -> [u8; STAMP_LEN] {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let fields: [(u64, usize); 7] = [
        (year.rem_euclid(10_000) as u64, 4),
        (u64::from(month), 2),
        (u64::from(day), 2),
        (of_day / 3600, 2),
        (of_day / 60 % 60, 2),
        (of_day % 60, 2),
        (u64::from(since.subsec_millis()), 3),
    ];
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut end = 0;
    for (value, width) in fields {
        let mut v = value;
        for slot in out.iter_mut().skip(end).take(width).rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        end += width + 1;
    }
    out
}

/// The (year, month, day) of the proleptic Gregorian calendar `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The start of a JSON line up to the message's opening quote: time, `service`, then `kind`
/// (`stream` or `level`) with its value.
pub fn json_head(stamp: &[u8], service: &str, kind: &str, value: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(96 + service.len());
    head.extend_from_slice(b"{\"time\":\"");
    head.extend_from_slice(stamp);
    head.extend_from_slice(b"\",\"service\":\"");
    escape_within(&mut head, service.as_bytes(), usize::MAX);
    head.extend_from_slice(format!("\",\"{kind}\":\"{value}\",\"message\":\"").as_bytes());
    head
}

/// What closes a line: `"}` and the newline, or `","partial":true}` for a part.
fn tail(partial: bool) -> &'static [u8] {
    match partial {
        true => b"\",\"partial\":true}\n",
        false => b"\"}\n",
    }
}

/// Hands `emit` one JSON line per part of `text` (a line's bytes, without newline) after `head`,
/// each at most `max` bytes; every part but the last, and the last too when `partial` (the line
/// goes on in a later piece), is marked partial. `max` must leave room for the head, the
/// partial tail and one escape (24 bytes); less than that still ends, one character per part.
/// Each line is made in `line`, a buffer the caller keeps from line to line.
pub fn json_lines(
    head: &[u8],
    text: &[u8],
    partial: bool,
    max: usize,
    line: &mut Vec<u8>,
    emit: &mut dyn FnMut(&[u8]),
) {
    let mut rest = text;
    loop {
        line.clear();
        line.extend_from_slice(head);
        let budget = max.saturating_sub(tail(true).len());
        let taken = escape_within(line, rest, budget);
        rest = rest.get(taken..).unwrap_or_default();
        let more = !rest.is_empty();
        line.extend_from_slice(tail(more || partial));
        emit(line);
        if !more {
            return;
        }
    }
}

/// Appends `text` escaped as the inside of a JSON string while `out` stays within `limit`
/// bytes; returns how many bytes of `text` it took (at least one character, so that a caller's
/// loop always advances). Runs of printable ASCII are copied whole: most log lines are nothing
/// else.
pub fn escape_within(out: &mut Vec<u8>, text: &[u8], limit: usize) -> usize {
    let plain = |b: &u8| (0x20..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    let mut taken = 0;
    while let Some(rest) = text.get(taken..).filter(|r| !r.is_empty()) {
        let run = rest.iter().position(|b| !plain(b)).unwrap_or(rest.len());
        if run > 0 {
            let room = limit.saturating_sub(out.len());
            let n = if taken == 0 {
                run.min(room.max(1))
            } else {
                run.min(room)
            };
            out.extend_from_slice(rest.get(..n).unwrap_or_default());
            taken += n;
            if n < run {
                return taken;
            }
            continue;
        }
        let (mut control, mut invalid) = (*b"\\u0000", *b"\\\\x00");
        let (piece, used): (&[u8], usize) = match rest.first().copied().unwrap_or(0) {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            b @ (0..0x20 | 0x7f) => {
                hex(control.get_mut(4..).unwrap_or_default(), b);
                (&control, 1)
            }
            b => match utf8_char(rest) {
                Some(w) => (rest.get(..w).unwrap_or_default(), w),
                None => {
                    hex(invalid.get_mut(3..).unwrap_or_default(), b);
                    (&invalid, 1)
                }
            },
        };
        if taken > 0 && out.len() + piece.len() > limit {
            return taken;
        }
        out.extend_from_slice(piece);
        taken += used;
    }
    taken
}

/// The length of the valid UTF-8 character `bytes` starts with (a non-ASCII one), if it is one.
fn utf8_char(bytes: &[u8]) -> Option<usize> {
    let width = match bytes.first()? {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    std::str::from_utf8(bytes.get(..width)?).ok().map(|_| width)
}

/// Writes `b` as two hex digits into the first two bytes of `into`.
fn hex(into: &mut [u8], b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (slot, nibble) in into.iter_mut().zip([b >> 4, b & 15]) {
        *slot = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, ms: u64) -> String {
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms);
        String::from_utf8(stamp(t).to_vec()).expect("ASCII")
    }

    #[test]
    fn stamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_709_164_799, 999), "2024-02-28T23:59:59.999Z");
        assert_eq!(at(1_709_251_200, 0), "2024-03-01T00:00:00.000Z");
        assert_eq!(at(4_102_444_799, 120), "2099-12-31T23:59:59.120Z");
        assert_eq!(at(1_796_013_363, 5), "2026-11-30T04:36:03.005Z");
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        let mut prev = civil_from_days(-1);
        for d in 0..146_097 {
            let (y, m, day) = civil_from_days(d);
            let next_day = (y, m, day) == (prev.0, prev.1, prev.2 + 1);
            let next_month =
                day == 1 && ((y, m) == (prev.0, prev.1 + 1) || (m == 1 && y == prev.0 + 1));
            assert!(next_day || next_month, "{prev:?} then {:?}", (y, m, day));
            prev = (y, m, day);
        }
    }

    fn parts(text: &[u8], partial: bool, max: usize) -> Vec<serde_json::Value> {
        let head = json_head(b"T", "web", "stream", "stdout");
        let mut out = Vec::new();
        json_lines(&head, text, partial, max, &mut Vec::new(), &mut |l| {
            assert!(l.len() <= max, "{} bytes", l.len());
            assert_eq!(l.last(), Some(&b'\n'));
            out.push(serde_json::from_slice(l).expect("valid JSON"));
        });
        out
    }

    #[test]
    fn json_keeps_valid_utf8_and_escapes_every_invalid_byte() {
        // An emoji, an overlong NUL, a UTF-16 surrogate, a sequence cut short at the end.
        let v = parts(
            b"\xf0\x9f\x98\x80 \xc0\x80 \xed\xa0\x80 \xe2\x82",
            false,
            4096,
        );
        assert_eq!(
            v[0]["message"],
            "\u{1f600} \\xc0\\x80 \\xed\\xa0\\x80 \\xe2\\x82"
        );
    }

    #[test]
    fn json_escapes_quotes_controls_and_invalid_utf8() {
        let v = parts(b"a \"q\" \\ \t\x01\x7f \xff\xfe \xc3\xa9", false, 4096);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0]["message"], "a \"q\" \\ \t\u{1}\u{7f} \\xff\\xfe é");
        assert_eq!(v[0]["service"], "web");
        assert_eq!(v[0].get("partial"), None);
    }

    #[test]
    fn a_long_json_message_is_cut_into_partial_parts() {
        let text = "é\"\x00".repeat(1000);
        let v = parts(text.as_bytes(), false, 200);
        assert!(v.len() > 10);
        let joined: String = v
            .iter()
            .map(|o| o["message"].as_str().expect("a string"))
            .collect();
        assert_eq!(joined, text);
        let marks: Vec<bool> = v.iter().map(|o| o.get("partial").is_some()).collect();
        assert!(marks[..marks.len() - 1].iter().all(|&m| m));
        assert!(!marks[marks.len() - 1]);
        let last = parts(b"x", true, 200);
        assert_eq!(last[0]["partial"], true, "a piece of a longer line");
    }
}
