//! Five-field cron expressions (minute hour day-of-month month day-of-week) for scheduled
//! headroom, evaluated in a time zone. Pure: "now" is an argument.

use jiff::{Timestamp, tz::TimeZone};

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Cron {
    minute: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    month: Vec<bool>,
    dow: Vec<bool>,
    dom_any: bool,
    dow_any: bool,
}

fn field(text: &str, min: u32, max: u32, what: &str) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (max + 1) as usize];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what}: bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a
                .parse::<u32>()
                .map_err(|_| format!("{what}: {a:?} is not a number"))?;
            let b = b
                .parse::<u32>()
                .map_err(|_| format!("{what}: {b:?} is not a number"))?;
            (a, b)
        } else {
            let v = range
                .parse::<u32>()
                .map_err(|_| format!("{what}: {range:?} is not a number"))?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{what}: {part:?} is outside {min}-{max}"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            set[v as usize] = true;
        }
    }
    Ok(set)
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        let [m, h, dom, mon, dow] = f.as_slice() else {
            return Err(format!(
                "{expr:?}: expected 5 fields (minute hour day-of-month month day-of-week)"
            ));
        };
        let mut dow_set = field(dow, 0, 7, "day-of-week")?;
        if dow_set[7] {
            dow_set[0] = true; // 7 is Sunday too
        }
        Ok(Cron {
            minute: field(m, 0, 59, "minute")?,
            hour: field(h, 0, 23, "hour")?,
            dom: field(dom, 1, 31, "day-of-month")?,
            month: field(mon, 1, 12, "month")?,
            dow: dow_set,
            dom_any: *dom == "*",
            dow_any: *dow == "*",
        })
    }

    fn matches(&self, t: &jiff::Zoned) -> bool {
        let dom = self.dom[t.day() as usize];
        let dow = self.dow[t.weekday().to_sunday_zero_offset() as usize];
        // Classic cron: when both day fields are restricted, either may match.
        let day = match (self.dom_any, self.dow_any) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        };
        self.minute[t.minute() as usize]
            && self.hour[t.hour() as usize]
            && self.month[t.month() as usize]
            && day
    }

    /// Start times (Unix seconds) in `[from, to]`, at most a week apart, in `tz`.
    pub fn starts_between(&self, tz: &TimeZone, from: i64, to: i64) -> Vec<i64> {
        let mut out = vec![];
        let first = from - from.rem_euclid(60);
        let last = to.min(first + 7 * 86_400);
        let mut t = first;
        while t <= last {
            if let Ok(ts) = Timestamp::from_second(t)
                && self.matches(&ts.to_zoned(tz.clone()))
            {
                out.push(t);
            }
            t += 60;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn weekday_mornings_in_a_time_zone() {
        let c = Cron::parse("0 9 * * 1-5").unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // Monday 2026-11-23: 09:00 in Paris is 08:00 UTC.
        let starts = c.starts_between(
            &paris,
            at("2026-11-23T00:00:00Z"),
            at("2026-11-24T00:00:00Z"),
        );
        assert_eq!(starts, vec![at("2026-11-23T08:00:00Z")]);
        // Saturday: nothing.
        assert!(
            c.starts_between(
                &paris,
                at("2026-11-28T00:00:00Z"),
                at("2026-11-29T00:00:00Z")
            )
            .is_empty()
        );
    }

    #[test]
    fn lists_steps_and_sunday_as_7() {
        let c = Cron::parse("*/30 8,20 * * 7").unwrap();
        let utc = TimeZone::UTC;
        // Sunday 2026-11-29.
        let s = c.starts_between(&utc, at("2026-11-29T00:00:00Z"), at("2026-11-29T23:59:00Z"));
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn bad_expressions_say_which_field() {
        assert!(
            Cron::parse("0 9 * *")
                .unwrap_err()
                .contains("expected 5 fields")
        );
        assert!(Cron::parse("61 9 * * *").unwrap_err().starts_with("minute"));
        assert!(
            Cron::parse("0 9 * * mon")
                .unwrap_err()
                .starts_with("day-of-week")
        );
    }
}
