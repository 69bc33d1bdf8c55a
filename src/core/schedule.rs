//! Timers' schedules, as pure code: five-field cron expressions (lists, ranges, steps, names of
//! months and days) and their shorthands (`@hourly` … `@yearly`), and the next time one is due
//! after a given instant in a [`Zone`]. Times are unix seconds; no clock is read here.
//!
//! Daylight saving time is handled as cron (Vixie cron, cronie) does. A *wildcard* job (minute
//! or hour field starting with `*`) runs at every local time that exists: none in the hour
//! skipped in spring, twice in the hour repeated in autumn. A *fixed-time* job runs once: in
//! spring, a time in the skipped hour runs at the change; in autumn, only the first of the two
//! times runs.

use super::zone::{Zone, civil, days_from_civil, weekday};

/// A cron expression: the values each field allows, as bit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day of month or day of week written with `*`: both must match (else either may).
    star_day: bool,
    /// Minute or hour written with `*`: cron's wildcard job (see the module's comment).
    wildcard: bool,
}

/// One field of a cron expression: its name for errors, its range, the names it takes.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    },
];

/// How many steps [`Cron::next`] takes at most: enough for eight years of the sparsest
/// schedule (February 29 at a fixed time), so that a schedule that never matches ends.
const MAX_STEPS: usize = 20_000;

impl Cron {
    /// Parses five fields, or a shorthand (`@daily`). The error says which field is wrong.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let text = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            t if t.starts_with('@') => {
                return Err(format!(
                    "unknown {t}: use @hourly, @daily, @weekly, @monthly, @yearly or @every DURATION"
                ));
            }
            t => t,
        };
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, _, weekday] = parts[..] else {
            return Err(format!(
                "{} fields: a cron expression has 5 (minute hour day-of-month month day-of-week)",
                parts.len()
            ));
        };
        let mut sets = [0u64; 5];
        for ((set, field), part) in sets.iter_mut().zip(&FIELDS).zip(&parts) {
            *set = field.parse(part)?;
        }
        let [minutes, hours, days, months, weekdays] = sets;
        let star = |f: &str| f.starts_with('*');
        let cron = Cron {
            minutes,
            hours,
            days,
            months,
            // 7 is Sunday too.
            weekdays: (weekdays | weekdays >> 7) & 0x7f,
            star_day: star(day) || star(weekday),
            wildcard: star(minute) || star(hour),
        };
        if !cron.possible() {
            return Err(format!("{text:?} is never due: no month has that day"));
        }
        Ok(cron)
    }

    /// False when no month has any of the days of month asked (`0 0 30 2 *`) and the day of
    /// week does not widen it.
    fn possible(&self) -> bool {
        if !self.star_day {
            return true;
        }
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32)
            .zip(LONGEST)
            .any(|(m, last)| bit(self.months, m) && (1..=last).any(|d| bit(self.days, d)))
    }

    /// The first time strictly after `after` when this schedule is due in `zone`; None if there
    /// is none within eight years or so.
    pub fn next(&self, after: i64, zone: &Zone) -> Option<i64> {
        // Far beyond any real clock, the calendar arithmetic could overflow.
        const LAST: i64 = 253_402_300_799; // 9999-12-31 23:59:59
        let mut u = after.div_euclid(60).checked_add(1)?.checked_mul(60)?;
        for _ in 0..MAX_STEPS {
            if u > LAST {
                return None;
            }
            let (prev, next) = zone.around(u);
            let offset = prev.map_or_else(|| zone.offset(u), |c| c.after);
            // A spring change at u: a fixed time in the local hour it skipped runs now.
            if let Some(c) = prev.filter(|c| c.at == u && c.before < c.after && !self.wildcard) {
                let skipped = (i64::from(c.before)..i64::from(c.after)).step_by(60);
                if skipped.into_iter().any(|s| self.skip(u + s) == 0) {
                    return Some(u);
                }
            }
            let mut step = self.skip(u + i64::from(offset));
            if step == 0 {
                // An autumn change before u: a local time seen already runs again only for a
                // wildcard job.
                let again = prev.is_some_and(|c| {
                    c.before > c.after && u < c.at + i64::from(c.before - c.after)
                });
                if self.wildcard || !again {
                    return Some(u);
                }
                step = 60;
            }
            u = match next {
                Some(c) if c.at < u + step => c.at,
                _ => u + step,
            };
        }
        None
    }

    /// 0 when local time `l` (whole minutes) matches, else the seconds to the next local time
    /// that may: the next month, day, hour or minute.
    fn skip(&self, l: i64) -> i64 {
        let day = l.div_euclid(86_400);
        let sod = l.rem_euclid(86_400);
        let (y, m, d) = civil(day);
        if !bit(self.months, m as u32) {
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            return (days_from_civil(y, m, 1) - day) * 86_400 - sod;
        }
        let dom = bit(self.days, d as u32);
        let dow = bit(self.weekdays, weekday(day) as u32);
        let on = if self.star_day {
            dom && dow
        } else {
            dom || dow
        };
        if !on {
            return 86_400 - sod;
        }
        if !bit(self.hours, (sod / 3600) as u32) {
            return 3600 - sod % 3600;
        }
        if !bit(self.minutes, (sod % 3600 / 60) as u32) {
            return 60 - sod % 60;
        }
        0
    }
}

fn bit(set: u64, n: u32) -> bool {
    n < 64 && set & (1 << n) != 0
}

impl Field {
    /// A comma-separated list of `*`, `N`, `A-B`, each maybe with `/STEP`.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let name = self.name;
        let mut set = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, s)) => {
                    let n = s.parse::<u32>().ok().filter(|n| (1..=self.max).contains(n));
                    (r, Some(n.ok_or_else(|| format!("{name}: bad step {s:?}"))?))
                }
                None => (item, None),
            };
            let (lo, hi) = match range.split_once('-') {
                _ if range == "*" => (self.min, self.max),
                Some((a, b)) => (self.value(a)?, self.value(b)?),
                // `N/STEP` is `N-max/STEP`, as in cronie.
                None if step.is_some() => (self.value(range)?, self.max),
                None => (self.value(range)?, self.value(range)?),
            };
            if lo > hi {
                return Err(format!("{name}: {range} goes backwards"));
            }
            for v in (lo..=hi).step_by(step.unwrap_or(1) as usize) {
                set |= 1 << v;
            }
        }
        Ok(set)
    }

    fn value(&self, text: &str) -> Result<u32, String> {
        let (name, min, max) = (self.name, self.min, self.max);
        let lower = text.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            return Ok(i as u32 + min);
        }
        match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(n) => Err(format!("{name} {n} is out of range {min}-{max}")),
            Err(_) => Err(format!(
                "{name}: {text:?} is not a number{}",
                match self.names {
                    [] => "",
                    _ => " or a name",
                }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: i64, d: i64, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600 + min * 60
    }

    fn next(expr: &str, after: i64, zone: &Zone) -> i64 {
        let cron = Cron::parse(expr).expect("a valid expression");
        cron.next(after, zone).expect("due some time")
    }

    fn utc(expr: &str, after: i64) -> i64 {
        next(expr, after, &Zone::utc())
    }

    fn paris() -> Zone {
        crate::core::zone::tests::paris()
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let t = at(2026, 11, 29, 20, 46);
        assert_eq!(utc("*/5 * * * *", t), at(2026, 11, 29, 20, 50));
        assert_eq!(
            utc("*/5 * * * *", at(2026, 11, 29, 20, 50)),
            at(2026, 11, 29, 20, 55)
        );
        assert_eq!(utc("0,30 9-17 * * mon-fri", t), at(2026, 11, 30, 9, 0));
        assert_eq!(utc("15 10-20/5 * * *", t), at(2026, 11, 30, 10, 15));
        assert_eq!(utc("0 0 * JAN,jul *", t), at(2027, 1, 1, 0, 0));
        assert_eq!(utc("0 12 * * 7", t), at(2026, 12, 6, 12, 0), "7 is Sunday");
        assert_eq!(utc("10/20 * * * *", t), at(2026, 11, 29, 20, 50));
    }

    #[test]
    fn day_of_month_and_day_of_week_either_match_when_both_are_given() {
        let t = at(2026, 11, 29, 20, 46); // a Sunday
        assert_eq!(
            utc("0 0 1 * mon", t),
            at(2026, 11, 30, 0, 0),
            "Monday first"
        );
        assert_eq!(utc("0 0 1 * *", t), at(2026, 12, 1, 0, 0));
        assert_eq!(utc("0 0 * * 3", t), at(2026, 12, 2, 0, 0));
    }

    #[test]
    fn shorthands() {
        let t = at(2026, 11, 29, 20, 46);
        assert_eq!(utc("@hourly", t), at(2026, 11, 29, 21, 0));
        assert_eq!(utc("@daily", t), at(2026, 11, 30, 0, 0));
        assert_eq!(utc("@weekly", t), at(2026, 12, 6, 0, 0));
        assert_eq!(utc("@monthly", t), at(2026, 12, 1, 0, 0));
        assert_eq!(utc("@yearly", t), at(2027, 1, 1, 0, 0));
    }

    #[test]
    fn month_ends_and_leap_days() {
        let t = at(2026, 1, 31, 12, 0);
        assert_eq!(
            utc("0 0 31 * *", t),
            at(2026, 3, 31, 0, 0),
            "no 31st in February"
        );
        assert_eq!(utc("0 0 30 * *", t), at(2026, 3, 30, 0, 0));
        assert_eq!(
            utc("0 0 29 2 *", t),
            at(2028, 2, 29, 0, 0),
            "the next leap day"
        );
        assert_eq!(
            utc("0 0 29 2 *", at(2028, 2, 29, 0, 0)),
            at(2032, 2, 29, 0, 0)
        );
        assert_eq!(
            utc("59 23 31 12 *", at(2026, 12, 31, 23, 59)),
            at(2027, 12, 31, 23, 59)
        );
        assert_eq!(
            utc("0 0 1 3 *", at(2100, 2, 28, 0, 0)),
            at(2100, 3, 1, 0, 0)
        );
        assert_eq!(
            utc("0 0 29 2 *", at(2096, 3, 1, 0, 0)),
            at(2104, 2, 29, 0, 0),
            "2100 is no leap year"
        );
    }

    #[test]
    fn spring_forward_runs_a_fixed_time_at_the_change_and_skips_wildcard_times() {
        // Paris, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let z = paris();
        let change = at(2026, 3, 29, 1, 0);
        let before = at(2026, 3, 28, 12, 0);
        assert_eq!(
            next("30 2 * * *", before, &z),
            change,
            "02:30 does not exist: at 03:00"
        );
        assert_eq!(
            next("30 2 * * *", change, &z),
            at(2026, 3, 30, 0, 30),
            "then 02:30 CEST"
        );
        assert_eq!(
            next("0 3 * * *", before, &z),
            change,
            "03:00 CEST is the change itself"
        );
        assert_eq!(next("30 1 * * *", before, &z), at(2026, 3, 29, 0, 30));
        // Wildcard: 01:45 CET, then 03:00 CEST; nothing in between.
        assert_eq!(
            next("*/15 * * * *", at(2026, 3, 29, 0, 30), &z),
            at(2026, 3, 29, 0, 45)
        );
        assert_eq!(next("*/15 * * * *", at(2026, 3, 29, 0, 45), &z), change);
        assert_eq!(
            next("30 * * * *", at(2026, 3, 29, 0, 30), &z),
            at(2026, 3, 29, 1, 30)
        );
    }

    #[test]
    fn fall_back_runs_a_fixed_time_once_and_wildcard_times_twice() {
        // Paris, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:xx happens twice.
        let z = paris();
        let before = at(2026, 10, 24, 12, 0);
        let first = at(2026, 10, 25, 0, 30); // 02:30 CEST
        assert_eq!(next("30 2 * * *", before, &z), first);
        assert_eq!(
            next("30 2 * * *", first, &z),
            at(2026, 10, 26, 1, 30),
            "not again at 02:30 CET"
        );
        assert_eq!(
            next("30 * * * *", first, &z),
            at(2026, 10, 25, 1, 30),
            "02:30 CET"
        );
        assert_eq!(
            next("0 12 * * *", before, &z),
            at(2026, 10, 25, 11, 0),
            "noon CET"
        );
    }

    #[test]
    fn bad_expressions_say_which_field() {
        let err = |e: &str| Cron::parse(e).expect_err(e);
        assert_eq!(err("61 * * * *"), "minute 61 is out of range 0-59");
        assert_eq!(err("* 24 * * *"), "hour 24 is out of range 0-23");
        assert_eq!(err("* * 0 * *"), "day of month 0 is out of range 1-31");
        assert_eq!(
            err("* * * foo *"),
            "month: \"foo\" is not a number or a name"
        );
        assert_eq!(err("* * * * 8"), "day of week 8 is out of range 0-7");
        assert_eq!(err("*/0 * * * *"), "minute: bad step \"0\"");
        assert_eq!(err("5-1 * * * *"), "minute: 5-1 goes backwards");
        assert!(err("* * * *").starts_with("4 fields"));
        assert!(err("@often").starts_with("unknown @often"));
        assert!(err("0 0 30 2 *").contains("never due"));
        assert!(Cron::parse("0 0 30 2 mon").is_ok(), "Mondays in February");
    }

    #[test]
    fn a_clock_beyond_the_calendar_has_no_next_time() {
        let cron = Cron::parse("* * * * *").expect("valid");
        assert_eq!(cron.next(i64::MAX, &Zone::utc()), None);
        assert_eq!(cron.next(253_402_300_799, &Zone::utc()), None, "after 9999");
    }
}
