use super::*;
use crate::rng::Rng;

const STEP: u32 = 300;
const DAY: usize = 288;

/// `days` of history at five-minute steps ending at Unix `DAY * STEP * days`, with noise.
fn history(days: usize, seed: u64, load: impl Fn(usize) -> f64) -> History {
    let mut rng = Rng::new(seed);
    let mut h = History::new(STEP, DAY * 28);
    for t in 0..days * DAY {
        h.record(
            t as i64 * i64::from(STEP),
            load(t) * (0.05 * rng.normal()).exp(),
        );
    }
    h
}

/// Business hours: 0.3x at night, 1x from 09:00 to 17:00, with a 4x newsletter spike at
/// 09:00 for 20 minutes.
fn business(t: usize) -> f64 {
    let minute = (t % DAY) * 5;
    let base = if (540..1020).contains(&minute) {
        100.0
    } else {
        30.0
    };
    if (540..560).contains(&minute) {
        base * 4.0
    } else {
        base
    }
}

fn at_minute(day: usize, minute: usize) -> i64 {
    (day * DAY * STEP as usize + minute * 60) as i64
}

#[test]
fn a_daily_spike_is_learned_backtested_and_seen_coming() {
    let h = history(7, 1, business);
    let settings = Settings {
        valid_seconds: 12.0 * 3600.0,
        ..Settings::default()
    };
    let l = learn(&h, &settings);
    assert!(l.trusted, "{}", l.summary);
    assert_eq!(l.period_seconds, Some(86_400.0), "{}", l.summary);
    assert!(l.backtest.is_some_and(|b| b.skill > 0.3), "{}", l.summary);
    assert!(l.summary.contains("24h period"), "{}", l.summary);
    // Day 7 (not in the history): five minutes before 09:00 the 4x spike is ahead.
    let before = l.at(at_minute(7, 535)).expect("covered");
    assert!((300.0..500.0).contains(&before.peak), "{before:?}");
    // At night the load stays at night's.
    let night = l.at(at_minute(7, 60)).expect("covered");
    assert!((25.0..36.0).contains(&night.peak), "{night:?}");
    // Past what was learned, nothing is said.
    assert_eq!(l.at(at_minute(7, 60 * 13)), None);
}

#[test]
fn the_next_peak_is_named_with_its_time() {
    let h = history(7, 2, business);
    let settings = Settings {
        valid_seconds: 12.0 * 3600.0,
        ..Settings::default()
    };
    let l = learn(&h, &settings);
    let o = l.at(at_minute(7, 6 * 60)).expect("covered");
    let (when, level) = o.next_peak.expect("the 09:00 spike");
    assert!(
        (at_minute(7, 540)..at_minute(7, 560)).contains(&when),
        "{when}"
    );
    assert!(level > 8.0, "{level}");
}

#[test]
fn noise_and_one_off_surges_are_not_a_pattern() {
    let mut rng = Rng::new(4);
    let noise: Vec<f64> = (0..7 * DAY).map(|_| (0.4 * rng.normal()).exp()).collect();
    let l = learn(&history(7, 4, |t| 100.0 * noise[t]), &Settings::default());
    assert!(!l.trusted, "{}", l.summary);
    // A surge on day 3 and another on day 5 at other times.
    let surges = |t: usize| {
        if (3 * DAY + 100..3 * DAY + 120).contains(&t) || (5 * DAY + 30..5 * DAY + 40).contains(&t)
        {
            800.0
        } else {
            100.0
        }
    };
    let l = learn(&history(7, 5, surges), &Settings::default());
    assert!(!l.trusted, "{}", l.summary);
    assert!(
        l.peaks.iter().all(|p| p.is_nan() || *p <= 120.0),
        "{:?}",
        l.peaks
    );
}

#[test]
fn a_peak_that_moved_switches_the_forecast_off_within_a_period() {
    // Six days with the spike at 09:00, then a day with it at 14:00.
    let moved = |t: usize| {
        if t < 6 * DAY {
            business(t)
        } else {
            business((t + 5 * 12) % (7 * DAY))
        }
    };
    let l = learn(&history(7, 6, moved), &Settings::default());
    assert!(!l.trusted, "{}", l.summary);
    assert!(l.summary.contains("off"), "{}", l.summary);
}

#[test]
fn hourly_batches_that_stopped_stop_driving_scale_ups() {
    let batches = |t: usize| if t.is_multiple_of(12) { 500.0 } else { 100.0 };
    let l = learn(&history(3, 7, batches), &Settings::default());
    assert!(l.trusted, "{}", l.summary);
    assert_eq!(l.period_seconds, Some(3600.0), "{}", l.summary);
    // The batches stop for the last hour and a half.
    let stopped = |t: usize| if t < 3 * DAY - 18 { batches(t) } else { 100.0 };
    let l = learn(&history(3, 7, stopped), &Settings::default());
    assert!(!l.trusted, "{}", l.summary);
}

#[test]
fn quiet_hours_after_the_batches_stopped_do_not_switch_it_back_on() {
    let batches = |t: usize| if t.is_multiple_of(12) { 500.0 } else { 100.0 };
    // The batches stop, then 1 to 8 quiet hours pass: the periods after the break forecast
    // nothing and see nothing, and must not clear the break they follow.
    for quiet in 1..=8 {
        let end = 3 * DAY + quiet * 12;
        let stopped = |t: usize| if t < 3 * DAY - 6 { batches(t) } else { 100.0 };
        let mut rng = Rng::new(10);
        let mut h = History::new(STEP, DAY * 28);
        for t in 0..end {
            h.record(
                t as i64 * i64::from(STEP),
                stopped(t) * (0.05 * rng.normal()).exp(),
            );
        }
        let l = learn(&h, &Settings::default());
        assert!(!l.trusted, "{quiet} h after: {}", l.summary);
    }
}

#[test]
fn too_little_history_says_so() {
    let l = learn(&history(2, 8, business), &Settings::default());
    assert!(!l.trusted, "{}", l.summary);
    let empty = learn(&History::new(STEP, 10), &Settings::default());
    assert!(
        !empty.trusted && empty.summary.contains("no recurring pattern"),
        "{}",
        empty.summary
    );
}

#[test]
fn with_no_pattern_the_summary_does_not_change_as_the_history_grows() {
    // Flat load with noise, read every 5 minutes: the text (and so status) changes only at
    // a few marks of the history's length, not at each refresh.
    let mut rng = Rng::new(7);
    let mut h = History::new(STEP, 2016);
    let mut texts = std::collections::BTreeSet::new();
    for t in 0..2016_i64 {
        h.record(t * i64::from(STEP), 40.0 * (0.05 * rng.normal()).exp());
        if t % 6 != 5 {
            continue;
        }
        let summary = learn(&h, &Settings::default()).summary;
        if summary.starts_with("no recurring pattern") {
            texts.insert(summary);
        }
    }
    // 336 refreshes; 10 marks of the history's length reached.
    assert!(texts.len() <= 12, "{} texts: {texts:#?}", texts.len());
}

#[test]
fn a_week_of_history_and_what_was_learned_fit_in_six_kilobytes() {
    // 10,000 policies in under 100 MiB leaves 10 KB each; the history and the forecast take
    // this much of it.
    let h = history(7, 9, business);
    let l = learn(&h, &Settings::default());
    assert!(l.trusted, "{}", l.summary);
    let bytes = h.bytes() + l.bytes();
    assert!(bytes <= 6 * 1024, "{bytes} bytes");
}

/// Twelve hours at 30 s of a 3-minute burst at 5x every 10 minutes, but where `quiet` says so.
fn ten_minute_bursts(quiet: impl Fn(usize) -> bool) -> History {
    let mut rng = Rng::new(12);
    let mut h = History::new(30, 1440);
    for t in 0..1440usize {
        let burst = t % 20 < 6 && !quiet(t / 20);
        let load = if burst { 500.0 } else { 100.0 };
        h.record(t as i64 * 30, load * (0.05 * rng.normal()).exp());
    }
    h
}

#[test]
fn one_missed_burst_of_many_an_hour_is_not_a_changed_pattern_but_an_hour_without_is() {
    let settings = Settings {
        horizon_seconds: 120.0,
        ..Settings::default()
    };
    // The last burst is missed (a cron run skipped once).
    let l = learn(&ten_minute_bursts(|k| k == 71), &settings);
    assert!(l.trusted, "{}", l.summary);
    // The bursts stopped an hour ago.
    let l = learn(&ten_minute_bursts(|k| k >= 66), &settings);
    assert!(!l.trusted, "{}", l.summary);
}
