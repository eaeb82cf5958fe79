//! Scheduled headroom: replica floors for planned launches, applied ahead of time and
//! released gently afterwards. Times are Unix seconds; the plan expands the windows.

use crate::plan::Window;

/// The highest floor any window asks for at `now`.
pub fn floor_at(windows: &[Window], now: i64) -> Option<i32> {
    windows
        .iter()
        .filter_map(|w| {
            if now >= w.start.saturating_sub(w.lead_seconds) && now < w.end {
                Some(w.min_replicas)
            } else if now >= w.end
                && now < w.end.saturating_add(w.release_seconds)
                && w.release_seconds > 0
            {
                let left = (w.end.saturating_add(w.release_seconds) - now) as f64
                    / w.release_seconds as f64;
                Some((f64::from(w.min_replicas) * left).ceil() as i32)
            } else {
                None
            }
        })
        .max()
}

/// Raises the proposal to the scheduled floor in force at `now`.
pub fn apply(s: &mut super::step::Step, windows: &[Window], now: i64) {
    if let Some(floor) = floor_at(windows, now) {
        let floor = floor.min(s.max);
        s.raise_to(floor, crate::decision::Limit::ScheduledFloor, |n| {
            format!("scheduled headroom: floor of {n} replicas")
        });
        s.found(
            "ScheduledFloor",
            true,
            format!("a scheduled window holds at least {floor} replicas"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ScheduleEntry;
    use crate::plan::schedule::cron_window;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .unwrap_or(0)
    }

    #[test]
    fn cron_windows_apply_ahead_in_their_time_zone_and_fade_after() {
        let w = ScheduleEntry::resolve(&cron_window("0 9 * * 1-5", "Europe/Paris"), 0)
            .map_err(|e| format!("{e:?}"));
        let w = w.as_ref().map_err(String::as_str);
        assert!(w.is_ok(), "{w:?}");
        let Ok(w) = w else { return };
        // Monday 2026-11-23, 09:00 Paris = 08:00 UTC; the floor applies 5 minutes early.
        let floor = |now: &str| floor_at(&w.windows_at(at(now)), at(now));
        assert_eq!(floor("2026-11-23T07:50:00Z"), None);
        assert_eq!(floor("2026-11-23T07:56:00Z"), Some(10));
        assert_eq!(floor("2026-11-23T08:30:00Z"), Some(10));
        assert_eq!(floor("2026-11-23T09:05:00Z"), Some(5));
        assert_eq!(floor("2026-11-23T09:11:00Z"), None);
        // Saturday: no window.
        assert_eq!(floor("2026-11-28T08:30:00Z"), None);
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
