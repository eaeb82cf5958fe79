//! Scheduled headroom: replica floors for planned launches, applied ahead of time and
//! released gently afterwards. Times are Unix seconds; the caller supplies "now".

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::Cron;
use crate::api::{PromDuration, ScheduledWindow};

/// One planned window.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
    pub min_replicas: i32,
    /// How early the floor applies (default 300s).
    pub lead_seconds: i64,
    /// Over how long the floor fades out after `end` (default 600s).
    pub release_seconds: i64,
}

/// The highest floor any window asks for at `now`.
pub fn floor_at(windows: &[Window], now: i64) -> Option<i32> {
    windows
        .iter()
        .filter_map(|w| {
            if now >= w.start - w.lead_seconds && now < w.end {
                Some(w.min_replicas)
            } else if now >= w.end && now < w.end + w.release_seconds && w.release_seconds > 0 {
                let left = (w.end + w.release_seconds - now) as f64 / w.release_seconds as f64;
                Some((f64::from(w.min_replicas) * left).ceil() as i32)
            } else {
                None
            }
        })
        .max()
}

pub fn parse_time(s: &str, field: &str, errors: &mut Vec<String>) -> Option<i64> {
    match s.parse::<Timestamp>() {
        Ok(t) => Some(t.as_second()),
        Err(e) => {
            errors.push(format!(
                "{field}: {s:?} is not an RFC 3339 time with offset ({e})"
            ));
            None
        }
    }
}

/// The concrete windows of one schedule entry around `now`; errors name the field.
pub fn windows(w: &ScheduledWindow, i: usize, now: i64, errors: &mut Vec<String>) -> Vec<Window> {
    let lead = w
        .lead_time
        .unwrap_or(PromDuration::from_secs(300))
        .as_secs_f64() as i64;
    let release = w
        .release_time
        .unwrap_or(PromDuration::from_secs(600))
        .as_secs_f64() as i64;
    let make = |start: i64, end: i64| Window {
        start,
        end,
        min_replicas: w.min_replicas,
        lead_seconds: lead,
        release_seconds: release,
    };
    let field = |f: &str| format!("spec.guardrails.schedule[{i}].{f}");
    if let (Some(start), Some(end)) = (&w.start, &w.end) {
        let start = parse_time(start, &field("start"), errors);
        let end = parse_time(end, &field("end"), errors);
        return match (start, end) {
            (Some(s), Some(e)) => vec![make(s, e)],
            _ => vec![],
        };
    }
    let (Some(expr), Some(duration)) = (&w.cron, w.duration) else {
        errors.push(format!(
            "{}: set start and end, or cron and duration",
            field("")
        ));
        return vec![];
    };
    let cron = match Cron::parse(expr) {
        Ok(c) => c,
        Err(e) => {
            errors.push(format!("{}: {e}", field("cron")));
            return vec![];
        }
    };
    let tz = match w.time_zone.as_deref().map(TimeZone::get).transpose() {
        Ok(tz) => tz.unwrap_or(TimeZone::UTC),
        Err(e) => {
            errors.push(format!("{}: {e}", field("timeZone")));
            return vec![];
        }
    };
    let length = duration.as_secs_f64() as i64;
    // Starts that could make a floor apply now: from a window still fading out, up to one
    // whose lead time has begun.
    cron.starts_between(&tz, now - length - release, now + lead)
        .into_iter()
        .map(|s| make(s, s + length))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().map(|t| t.as_second()).unwrap_or(0)
    }

    fn cron_window(expr: &str, tz: &str) -> ScheduledWindow {
        ScheduledWindow {
            start: None,
            end: None,
            cron: Some(expr.into()),
            duration: Some(PromDuration::from_secs(3600)),
            time_zone: Some(tz.into()),
            min_replicas: 10,
            lead_time: None,
            release_time: None,
        }
    }

    #[test]
    fn cron_windows_apply_ahead_in_their_time_zone_and_fade_after() {
        let w = cron_window("0 9 * * 1-5", "Europe/Paris");
        // Monday 2026-11-23, 09:00 Paris = 08:00 UTC; the floor applies 5 minutes early.
        let floor = |now: &str| {
            let mut errors = vec![];
            let ws = windows(&w, 0, at(now), &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            floor_at(&ws, at(now))
        };
        assert_eq!(floor("2026-11-23T07:50:00Z"), None);
        assert_eq!(floor("2026-11-23T07:56:00Z"), Some(10));
        assert_eq!(floor("2026-11-23T08:30:00Z"), Some(10));
        assert_eq!(floor("2026-11-23T09:05:00Z"), Some(5));
        assert_eq!(floor("2026-11-23T09:11:00Z"), None);
        // Saturday: no window.
        assert_eq!(floor("2026-11-28T08:30:00Z"), None);
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let mut errors = vec![];
        windows(&cron_window("0 25 * * *", "UTC"), 2, 0, &mut errors);
        windows(&cron_window("0 9 * * *", "Mars/Olympus"), 3, 0, &mut errors);
        assert!(
            errors[0].starts_with("spec.guardrails.schedule[2].cron: hour"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("spec.guardrails.schedule[3].timeZone"),
            "{errors:?}"
        );
    }

    #[test]
    fn applies_early_holds_and_releases_gently() {
        let w = [Window {
            start: 1000,
            end: 2000,
            min_replicas: 10,
            lead_seconds: 300,
            release_seconds: 600,
        }];
        assert_eq!(floor_at(&w, 600), None);
        assert_eq!(floor_at(&w, 700), Some(10));
        assert_eq!(floor_at(&w, 1999), Some(10));
        assert_eq!(floor_at(&w, 2000), Some(10));
        assert_eq!(floor_at(&w, 2300), Some(5));
        assert_eq!(floor_at(&w, 2599), Some(1));
        assert_eq!(floor_at(&w, 2600), None);
    }

    #[test]
    fn overlapping_windows_take_the_highest_floor() {
        let w = [
            Window {
                start: 0,
                end: 100,
                min_replicas: 4,
                lead_seconds: 0,
                release_seconds: 0,
            },
            Window {
                start: 50,
                end: 80,
                min_replicas: 9,
                lead_seconds: 0,
                release_seconds: 0,
            },
        ];
        assert_eq!(floor_at(&w, 60), Some(9));
        assert_eq!(floor_at(&w, 90), Some(4));
    }
}
