//! Scheduled headroom: replica floors for planned launches, applied ahead of time and
//! released gently afterwards. Times are Unix seconds; the plan expands the windows.

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
