//! Schedule windows resolved once: times parsed, cron expressions compiled, time zones
//! looked up. Expanding them around "now" is pure; the engine only applies the floor.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::FieldError;
use super::cron::Cron;
use super::defaults;
use crate::api::ScheduledWindow;

/// One concrete window, in Unix seconds.
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

/// When a window recurs.
#[derive(Clone, Debug, PartialEq)]
enum When {
    Once {
        start: i64,
        end: i64,
    },
    Recurring {
        cron: Cron,
        tz: TimeZone,
        length: i64,
    },
}

/// One `spec.guardrails.schedule` entry, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleEntry {
    when: When,
    min_replicas: i32,
    lead_seconds: i64,
    release_seconds: i64,
}

/// Parses an RFC 3339 time with offset; the error names `field`.
pub fn parse_time(s: &str, field: &str) -> Result<i64, FieldError> {
    s.parse::<Timestamp>().map(|t| t.as_second()).map_err(|e| {
        FieldError::new(
            field,
            format!("{s:?} is not an RFC 3339 time with offset ({e})"),
        )
    })
}

impl ScheduleEntry {
    /// Resolves entry `i`; every problem is reported with its field.
    pub fn resolve(w: &ScheduledWindow, i: usize) -> Result<Self, Vec<FieldError>> {
        let field = |f: &str| format!("spec.guardrails.schedule[{i}].{f}");
        let secs = |d: Option<crate::api::PromDuration>, default: u64| {
            d.map_or(default as i64, |d| {
                d.as_duration().as_secs().min(i64::MAX as u64) as i64
            })
        };
        let lead_seconds = secs(w.lead_time, defaults::SCHEDULE_LEAD_SECONDS);
        let release_seconds = secs(w.release_time, defaults::SCHEDULE_RELEASE_SECONDS);
        let mut errors = vec![];
        if w.min_replicas < 0 {
            errors.push(FieldError::new(
                field("minReplicas"),
                "must not be negative",
            ));
        }
        let when = match (&w.start, &w.end, &w.cron, w.duration) {
            (Some(start), Some(end), None, None) => {
                match (
                    parse_time(start, &field("start")),
                    parse_time(end, &field("end")),
                ) {
                    (Ok(start), Ok(end)) if end > start => Some(When::Once { start, end }),
                    (Ok(_), Ok(_)) => {
                        errors.push(FieldError::new(field("end"), "must be after start"));
                        None
                    }
                    (s, e) => {
                        errors.extend(s.err());
                        errors.extend(e.err());
                        None
                    }
                }
            }
            (None, None, Some(expr), Some(duration)) => {
                let cron = Cron::parse(expr).map_err(|e| FieldError::new(field("cron"), e));
                let tz = w
                    .time_zone
                    .as_deref()
                    .map(TimeZone::get)
                    .transpose()
                    .map(|tz| tz.unwrap_or(TimeZone::UTC))
                    .map_err(|e| FieldError::new(field("timeZone"), e.to_string()));
                let length = duration.as_duration().as_secs();
                if length == 0 {
                    errors.push(FieldError::new(field("duration"), "must be at least 1s"));
                }
                match (cron, tz) {
                    (Ok(cron), Ok(tz)) => Some(When::Recurring {
                        cron,
                        tz,
                        length: length.min(i64::MAX as u64) as i64,
                    }),
                    (c, t) => {
                        errors.extend(c.err());
                        errors.extend(t.err());
                        None
                    }
                }
            }
            _ => {
                errors.push(FieldError::new(
                    field("").trim_end_matches('.'),
                    "set start and end, or cron and duration",
                ));
                None
            }
        };
        match when {
            Some(when) if errors.is_empty() => Ok(Self {
                when,
                min_replicas: w.min_replicas,
                lead_seconds,
                release_seconds,
            }),
            _ => Err(errors),
        }
    }

    /// The concrete windows that could set a floor at `now`.
    pub fn windows_at(&self, now: i64) -> Vec<Window> {
        let make = |start: i64, end: i64| Window {
            start,
            end,
            min_replicas: self.min_replicas,
            lead_seconds: self.lead_seconds,
            release_seconds: self.release_seconds,
        };
        match &self.when {
            When::Once { start, end } => vec![make(*start, *end)],
            // Starts that could make a floor apply now: from a window still fading out, up to
            // one whose lead time has begun.
            When::Recurring { cron, tz, length } => cron
                .starts_between(
                    tz,
                    now.saturating_sub(*length)
                        .saturating_sub(self.release_seconds),
                    now.saturating_add(self.lead_seconds),
                )
                .into_iter()
                .map(|s| make(s, s.saturating_add(*length)))
                .collect(),
        }
    }

    /// The first dated start, for placing a scenario on a launch window.
    pub fn fixed_start(&self) -> Option<i64> {
        match self.when {
            When::Once { start, .. } => Some(start),
            When::Recurring { .. } => None,
        }
    }
}

/// A one-hour window of 10 replicas recurring at `expr` in `tz`, for tests.
#[cfg(test)]
pub(crate) fn cron_window(expr: &str, tz: &str) -> ScheduledWindow {
    ScheduledWindow {
        start: None,
        end: None,
        cron: Some(expr.into()),
        duration: Some(crate::api::PromDuration::from_secs(3600)),
        time_zone: Some(tz.into()),
        min_replicas: 10,
        lead_time: None,
        release_time: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(w: &ScheduledWindow, i: usize) -> String {
        match ScheduleEntry::resolve(w, i) {
            Ok(_) => "accepted".into(),
            Err(e) => e.first().map(ToString::to_string).unwrap_or_default(),
        }
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let e = first_error(&cron_window("0 25 * * *", "UTC"), 2);
        assert!(
            e.starts_with("spec.guardrails.schedule[2].cron: hour"),
            "{e}"
        );
        let e = first_error(&cron_window("0 9 * * *", "Mars/Olympus"), 3);
        assert!(e.starts_with("spec.guardrails.schedule[3].timeZone"), "{e}");
        let backwards = ScheduledWindow {
            start: Some("2026-12-01T11:00:00Z".into()),
            end: Some("2026-12-01T09:00:00Z".into()),
            cron: None,
            duration: None,
            time_zone: None,
            min_replicas: 4,
            lead_time: None,
            release_time: None,
        };
        assert_eq!(
            first_error(&backwards, 0),
            "spec.guardrails.schedule[0].end: must be after start"
        );
    }
}
