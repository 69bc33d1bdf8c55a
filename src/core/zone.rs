//! Time zones for timers, as pure code: a zoneinfo file (TZif, RFC 8536, versions 2 and later
//! read through their 64-bit data and POSIX TZ footer; version 1 through its 32-bit data) parsed
//! into [`Zone`], which says the UTC offset in effect at a unix time and where it changes. The
//! reading of the file is the caller's; times are unix seconds.

/// A time zone: the offsets it has had and will have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The transitions of the file: when, and the offset (seconds east of UTC) from then on.
    changes: Vec<(i64, i32)>,
    /// The offset before the first transition.
    first: i32,
    /// After the last transition: the footer's rule, if any.
    rule: Option<Rule>,
}

/// A POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`): a standard offset, and maybe a summer one
/// with the local dates and times it starts and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    std: i32,
    dst: Option<(i32, Edge, Edge)>,
}

/// A day of the year and a local time of that day (seconds; may be negative or past 24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edge {
    day: Day,
    time: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Day {
    /// `Jn`: 1 to 365, February 29 never counted.
    NoLeap(i64),
    /// `n`: 0 to 365, February 29 counted.
    Leap(i64),
    /// `Mm.w.d`: weekday d (0 Sunday) of week w (5: the last) of month m.
    Week(i64, i64, i64),
}

/// A transition next to an instant: when, the offset before it and the offset after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub at: i64,
    pub before: i32,
    pub after: i32,
}

impl Zone {
    /// UTC: no offset, ever.
    pub fn utc() -> Zone {
        Zone {
            changes: Vec::new(),
            first: 0,
            rule: None,
        }
    }

    /// Parses a zoneinfo file's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Zone, String> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4) != Some(b"TZif".as_slice()) {
            return Err("not a zoneinfo file (no TZif header)".into());
        }
        let version = r.take(1).and_then(|v| v.first().copied()).unwrap_or(0);
        let counts = r.counts().ok_or(TRUNCATED)?;
        if version < b'2' {
            return r.data(&counts, 4, false);
        }
        // Version 2+: skip the 32-bit block, read the 64-bit one and the footer.
        r.skip(counts.len(4)).ok_or(TRUNCATED)?;
        r.take(4).filter(|m| *m == b"TZif").ok_or(TRUNCATED)?;
        r.take(1).ok_or(TRUNCATED)?;
        let counts = r.counts().ok_or(TRUNCATED)?;
        r.data(&counts, 8, true)
    }

    /// The transition at or before `u` and the first one after it (the rule's, past the file's).
    pub fn around(&self, u: i64) -> (Option<Change>, Option<Change>) {
        let i = self.changes.partition_point(|&(at, _)| at <= u);
        let change = |i: usize| {
            let &(at, after) = self.changes.get(i)?;
            let before = i
                .checked_sub(1)
                .and_then(|p| self.changes.get(p))
                .map_or(self.first, |&(_, o)| o);
            Some(Change { at, before, after })
        };
        let prev = i.checked_sub(1).and_then(change);
        if let Some(next) = change(i) {
            return (prev, Some(next));
        }
        let Some((std, Some((dst, start, end)))) = self.rule.as_ref().map(|r| (r.std, r.dst))
        else {
            return (prev, None);
        };
        let last = self.changes.last().map_or(i64::MIN, |&(at, _)| at);
        let year = civil(u.div_euclid(86_400)).0;
        // The rule's six changes around u, in order (an insertion sort: six items, no
        // allocation); those before the file's last transition do not count.
        let mut edges = [None::<Change>; 6];
        for (k, y) in (year - 1..=year + 1).enumerate() {
            let on = (start.at(y) - i64::from(std), std, dst);
            let off = (end.at(y) - i64::from(dst), dst, std);
            for (j, (at, before, after)) in [(2 * k, on), (2 * k + 1, off)] {
                let change = Some(Change { at, before, after }).filter(|c| c.at > last);
                if let Some(slot) = edges.get_mut(j) {
                    *slot = change;
                }
            }
        }
        let mut sorted: Vec<Change> = Vec::with_capacity(6);
        for c in edges.into_iter().flatten() {
            let at = sorted.partition_point(|e| e.at <= c.at);
            sorted.insert(at, c);
        }
        let k = sorted.partition_point(|c| c.at <= u);
        let rule_prev = k.checked_sub(1).and_then(|p| sorted.get(p)).copied();
        (rule_prev.or(prev), sorted.get(k).copied())
    }

    /// The offset in effect at `u`, in seconds east of UTC.
    pub fn offset(&self, u: i64) -> i32 {
        match self.around(u) {
            (Some(c), _) => c.after,
            (None, Some(next)) => next.before,
            (None, None) => self.rule.as_ref().map_or(self.first, |r| r.std),
        }
    }
}

const TRUNCATED: &str = "truncated zoneinfo file";

/// The six counts of a TZif header.
struct Counts {
    isut: usize,
    isstd: usize,
    leap: usize,
    time: usize,
    types: usize,
    chars: usize,
}

impl Counts {
    /// The length of the data block with `t`-byte times.
    fn len(&self, t: usize) -> usize {
        self.time * (t + 1)
            + self.types * 6
            + self.chars
            + self.leap * (t + 4)
            + self.isstd
            + self.isut
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn int(&mut self, n: usize) -> Option<i64> {
        let b = self.take(n)?;
        Some(match n {
            8 => i64::from_be_bytes(b.try_into().ok()?),
            _ => i64::from(i32::from_be_bytes(b.try_into().ok()?)),
        })
    }

    fn counts(&mut self) -> Option<Counts> {
        self.skip(15)?;
        let mut n = || usize::try_from(self.int(4)?).ok();
        Some(Counts {
            isut: n()?,
            isstd: n()?,
            leap: n()?,
            time: n()?,
            types: n()?,
            chars: n()?,
        })
    }

    /// The data block after `counts`, with `t`-byte times, then the footer if `footer`.
    fn data(&mut self, counts: &Counts, t: usize, footer: bool) -> Result<Zone, String> {
        let mut times = Vec::new();
        for _ in 0..counts.time {
            times.push(self.int(t).ok_or(TRUNCATED)?);
        }
        let kinds = self.take(counts.time).ok_or(TRUNCATED)?;
        let mut offsets = Vec::new();
        for _ in 0..counts.types {
            let off = self.int(4).ok_or(TRUNCATED)?;
            self.skip(2).ok_or(TRUNCATED)?;
            offsets.push(i32::try_from(off).map_err(|_| "offset out of range")?);
        }
        let rest = counts.chars + counts.leap * (t + 4) + counts.isstd + counts.isut;
        self.skip(rest).ok_or(TRUNCATED)?;
        let mut changes = Vec::new();
        for (at, &k) in times.into_iter().zip(kinds) {
            let off = offsets.get(usize::from(k)).ok_or("bad local time type")?;
            changes.push((at, *off));
        }
        let rule = match footer {
            true => {
                let text = self.bytes.get(self.at..).unwrap_or_default();
                let text = String::from_utf8_lossy(text);
                let text = text.trim_matches('\n');
                (!text.is_empty())
                    .then(|| parse_rule(text).ok_or(format!("bad TZ rule {text:?}")))
                    .transpose()?
            }
            false => None,
        };
        Ok(Zone {
            changes,
            first: offsets.first().copied().unwrap_or(0),
            rule,
        })
    }
}

/// Parses a POSIX TZ string (the footer of a zoneinfo file).
fn parse_rule(text: &str) -> Option<Rule> {
    let mut s = Scan(text.as_bytes());
    s.name()?;
    let std = -s.hms()?;
    if s.0.is_empty() {
        return Some(Rule {
            std: i32::try_from(std).ok()?,
            dst: None,
        });
    }
    s.name()?;
    let dst = match s.0.first() {
        Some(b',') => std + 3600,
        _ => -s.hms()?,
    };
    let start = s.edge()?;
    let end = s.edge()?;
    let dst = (i32::try_from(dst).ok()?, start, end);
    Some(Rule {
        std: i32::try_from(std).ok()?,
        dst: Some(dst),
    })
}

/// A cursor over a POSIX TZ string.
struct Scan<'a>(&'a [u8]);

impl Scan<'_> {
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.0.first() == Some(&c);
        if hit {
            self.0 = self.0.get(1..).unwrap_or_default();
        }
        hit
    }

    /// A zone abbreviation: letters, or anything between `<` and `>`.
    fn name(&mut self) -> Option<()> {
        let n = if self.eat(b'<') {
            let n = self.0.iter().position(|&c| c == b'>')?;
            n + 1
        } else {
            self.0
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count()
        };
        self.0 = self.0.get(n..)?;
        (n > 0).then_some(())
    }

    fn number(&mut self) -> Option<i64> {
        let n = self.0.iter().take_while(|c| c.is_ascii_digit()).count();
        let text = std::str::from_utf8(self.0.get(..n)?).ok()?;
        self.0 = self.0.get(n..)?;
        text.parse().ok()
    }

    /// `[+-]h[:m[:s]]` in seconds.
    fn hms(&mut self) -> Option<i64> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        // At most 167 hours (RFC 8536): nothing here can overflow.
        let mut secs = self.number().filter(|h| *h <= 167)? * 3600;
        for unit in [60, 1] {
            if !self.eat(b':') {
                break;
            }
            secs += self.number().filter(|n| *n < 60)? * unit;
        }
        Some(sign * secs)
    }

    /// `,date[/time]`.
    fn edge(&mut self) -> Option<Edge> {
        if !self.eat(b',') {
            return None;
        }
        let day = if self.eat(b'M') {
            let m = self.number()?;
            self.eat(b'.').then_some(())?;
            let w = self.number()?;
            self.eat(b'.').then_some(())?;
            let d = self.number()?;
            let ok = (1..=12).contains(&m) && (1..=5).contains(&w) && (0..=6).contains(&d);
            ok.then_some(Day::Week(m, w, d))?
        } else if self.eat(b'J') {
            Day::NoLeap(self.number().filter(|n| (1..=365).contains(n))?)
        } else {
            Day::Leap(self.number().filter(|n| (0..=365).contains(n))?)
        };
        let time = if self.eat(b'/') { self.hms()? } else { 7200 };
        Some(Edge { day, time })
    }
}

impl Edge {
    /// The local time (seconds since the epoch, as if local were UTC) of this edge in `year`.
    fn at(self, year: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        let day = match self.day {
            Day::NoLeap(n) => jan1 + n - 1 + i64::from(is_leap(year) && n >= 60),
            Day::Leap(n) => jan1 + n,
            Day::Week(m, w, d) => {
                let first = days_from_civil(year, m, 1);
                let mut day = first + (d - weekday(first)).rem_euclid(7) + (w - 1) * 7;
                let next_month = days_from_civil(year + m / 12, m % 12 + 1, 1);
                while day >= next_month {
                    day -= 7;
                }
                day
            }
        };
        day * 86_400 + self.time
    }
}

pub fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// 0 for Sunday, for a count of days since 1970-01-01 (a Thursday).
pub fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// Days since 1970-01-01 of a date (proleptic Gregorian; H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1-12, day 1-31) of a count of days since 1970-01-01.
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Paris from its rule alone, as a slim zoneinfo file has it.
    pub(crate) fn paris() -> Zone {
        Zone {
            changes: Vec::new(),
            first: 3600,
            rule: parse_rule("CET-1CEST,M3.5.0,M10.5.0/3"),
        }
    }

    fn utc(y: i64, m: i64, d: i64, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 59, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(weekday(days_from_civil(2026, 11, 29)), 0, "a Sunday");
    }

    #[test]
    fn the_rule_gives_european_summer_time() {
        let z = paris();
        // 2026: CEST from March 29 01:00 UTC to October 25 01:00 UTC.
        assert_eq!(z.offset(utc(2026, 3, 29, 0, 59)), 3600);
        assert_eq!(z.offset(utc(2026, 3, 29, 1, 0)), 7200);
        assert_eq!(z.offset(utc(2026, 10, 25, 0, 59)), 7200);
        assert_eq!(z.offset(utc(2026, 10, 25, 1, 0)), 3600);
        let (prev, next) = z.around(utc(2026, 6, 1, 0, 0));
        assert_eq!(prev.map(|c| c.at), Some(utc(2026, 3, 29, 1, 0)));
        assert_eq!(
            next.map(|c| (c.at, c.before, c.after)),
            Some((utc(2026, 10, 25, 1, 0), 7200, 3600))
        );
    }

    #[test]
    fn a_southern_rule_and_julian_days() {
        // Sydney: summer (+11) from the first Sunday of October to the first Sunday of April.
        let z = Zone {
            changes: Vec::new(),
            first: 36_000,
            rule: parse_rule("AEST-10AEDT,M10.1.0,M4.1.0/3"),
        };
        assert_eq!(z.offset(utc(2026, 1, 15, 0, 0)), 39_600);
        assert_eq!(z.offset(utc(2026, 6, 15, 0, 0)), 36_000);
        let j = parse_rule("<+03>-3<+04>,J60/1,J300").map(|r| r.dst.map(|d| d.1));
        let edge = j.flatten().map(|e| e.at(2024));
        assert_eq!(
            edge,
            Some(utc(2024, 3, 1, 1, 0)),
            "J60 is March 1, leap year or not"
        );
    }

    /// A version 2 file built by hand: one transition, then the rule of its footer.
    #[test]
    fn a_zoneinfo_file_is_read_through_its_64_bit_data_and_footer() {
        fn header(out: &mut Vec<u8>, time: u32, types: u32, chars: u32) {
            out.extend(b"TZif2");
            out.extend([0; 15]);
            for n in [0, 0, 0, time, types, chars] {
                out.extend(u32::to_be_bytes(n));
            }
        }
        let mut f = Vec::new();
        header(&mut f, 1, 2, 8);
        f.extend(0i32.to_be_bytes());
        f.push(1);
        f.extend([0, 0, 0x0e, 0x10, 0, 0, 0, 0, 0x1c, 0x20, 1, 4]);
        f.extend(b"CET\0CEST");
        header(&mut f, 1, 2, 8);
        f.extend(100i64.to_be_bytes());
        f.push(1);
        f.extend([0, 0, 0x0e, 0x10, 0, 0, 0, 0, 0x1c, 0x20, 1, 4]);
        f.extend(b"CET\0CEST");
        f.extend(b"\nCET-1CEST,M3.5.0,M10.5.0/3\n");
        let z = Zone::parse(&f).expect("a valid file");
        assert_eq!(z.offset(0), 3600, "type 0 before the first transition");
        assert_eq!(z.offset(200), 7200);
        assert_eq!(z.offset(utc(2026, 1, 1, 0, 0)), 3600, "the footer's rule");
        assert_eq!(z.offset(utc(2026, 7, 1, 0, 0)), 7200);
        assert!(Zone::parse(b"TZif2").is_err());
        assert!(Zone::parse(&f[..60]).is_err());
        assert!(Zone::parse(b"not a zone file at all, but long enough to be read").is_err());
    }
}
