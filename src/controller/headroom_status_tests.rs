use super::*;
use crate::capacity::{AppSizing, Limits, Reading, estimate};
use crate::metrics::QueryError;

fn limits() -> Limits {
    Limits {
        max_replicas: 40,
        app: Some(AppSizing::Cpu {
            target_percent: 70.0,
        }),
        database_cpu_act: Some(0.7),
        ..Default::default()
    }
}

/// Load swinging over 100..250 and back to 150; the database at 0.1 + `per_request` × load.
fn calibration(per_request: f64, load_at_end: f64) -> Calibration {
    let mut readings: Vec<Reading> = (0..60)
        .map(|i| {
            let load = 175.0 + 75.0 * (f64::from(i) / 60.0 * std::f64::consts::TAU).sin();
            Reading {
                at: f64::from(i) * 60.0,
                load,
                app: Some(0.001 * load),
                database_cpu: Some(0.1 + per_request * load),
                throttled: None,
            }
        })
        .collect();
    for i in 60..66 {
        readings.push(Reading {
            at: f64::from(i) * 60.0,
            load: load_at_end,
            app: Some(0.001 * load_at_end),
            database_cpu: Some(0.1 + per_request * load_at_end),
            throttled: None,
        });
    }
    Calibration {
        estimate: estimate(&readings, &limits()),
        readings,
        limits: limits(),
        load_unit: "requests/s",
        errors: vec![],
        span_seconds: 3960,
    }
}

const WINDOW: PromDuration = PromDuration::from_secs(3600);

#[test]
fn the_first_to_break_is_in_the_summary_with_every_resource_and_its_fit() {
    let s = headroom(None, &Ok(calibration(0.002, 150.0)), WINDOW);
    // 0.1 + 0.002 × 150 × f = 0.7 → f = 2.
    assert_eq!(s.summary, "2.0x database-cpu");
    assert_eq!(s.first_to_break.as_deref(), Some("database-cpu"));
    assert!(s.factor.is_some_and(|f| (f - 2.0).abs() < 0.01), "{s:?}");
    assert_eq!(s.load, Some(150.0));
    assert_eq!(s.load_unit.as_deref(), Some("requests/s"));
    assert_eq!(s.calibration_window, "1h");
    assert_eq!(s.reason, None);
    let names: Vec<&str> = s.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["database-cpu", "app"]);
    let db = &s.resources[0];
    assert_eq!(db.threshold, "70% CPU");
    let Some(fit) = &db.fit else {
        panic!("no fit: {db:?}")
    };
    assert!((fit.slope - 0.002).abs() < 1e-6 && fit.r2 > 0.99, "{fit:?}");
    assert_eq!(fit.points, 66);
    // 40 replicas at 70 % of a request each, at a millicore per request: 28,000/s.
    assert!(
        s.resources[1]
            .factor
            .is_some_and(|f| (f - 28000.0 / 150.0).abs() < 2.0),
        "{:?}",
        s.resources[1]
    );
}

#[test]
fn a_recalibration_that_moved_less_than_five_percent_keeps_the_block_and_a_larger_move_replaces_it()
{
    let first = headroom(None, &Ok(calibration(0.002, 150.0)), WINDOW);
    // 3 % more load at the end: the factor moves by 3 %.
    let steady = headroom(Some(&first), &Ok(calibration(0.002, 154.5)), WINDOW);
    assert_eq!(steady, first, "a 3 % move must not cost a status write");
    // Twice as costly a request: the factor halves.
    let worse = headroom(Some(&first), &Ok(calibration(0.004, 150.0)), WINDOW);
    assert_ne!(worse, first);
    assert!(worse.summary.starts_with("1.0x database-cpu"), "{worse:?}");
    // A new window is a new estimate.
    let longer = headroom(
        Some(&first),
        &Ok(calibration(0.002, 150.0)),
        PromDuration::from_secs(7200),
    );
    assert_eq!(longer.calibration_window, "2h");
}

#[test]
fn unknown_says_why_a_missing_load_an_unreadable_series_and_flat_traffic() {
    let e = headroom(
        None,
        &Err(CalibrationError::Load {
            query: "sum(rate(x_count[1m]))".into(),
            error: QueryError::Empty,
        }),
        WINDOW,
    );
    assert_eq!(e.summary, "Unknown");
    let reason = e.reason.unwrap_or_default();
    assert!(reason.contains("sum(rate(x_count[1m]))"), "{reason}");

    // The database's series could not be read: its resource has no readings.
    let mut c = calibration(0.002, 150.0);
    for r in &mut c.readings {
        r.database_cpu = None;
    }
    c.estimate = estimate(&c.readings, &c.limits);
    c.errors = vec!["sum(rate(db_cpu_seconds_total[1m])): no data".into()];
    let s = headroom(None, &Ok(c), WINDOW);
    assert_eq!(s.summary, "Unknown");
    let reason = s.reason.unwrap_or_default();
    assert!(
        reason.starts_with("database-cpu: 0 readings") && reason.contains("db_cpu_seconds_total"),
        "{reason}"
    );

    // Flat traffic cannot show how usage grows with it.
    let mut flat = calibration(0.002, 150.0);
    for r in &mut flat.readings {
        r.load = 150.0;
        r.database_cpu = Some(0.4);
    }
    flat.estimate = estimate(&flat.readings, &flat.limits);
    let s = headroom(None, &Ok(flat), WINDOW);
    assert_eq!(s.summary, "Unknown");
    assert!(
        s.reason
            .as_deref()
            .is_some_and(|r| r.contains("load varied only")),
        "{s:?}"
    );
    assert!(s.resources.iter().all(|r| r.unknown.is_some()), "{s:?}");

    let none = nothing_to_estimate(WINDOW);
    assert_eq!(none.summary, "Unknown");
    assert!(
        none.reason
            .is_some_and(|r| r.contains("cpu or concurrency"))
    );
}

#[test]
fn the_same_reason_with_other_figures_is_the_same_estimate() {
    let a = nothing_to_estimate(WINDOW);
    let mut b = a.clone();
    b.reason = Some("5 readings over the calibration window; 12 needed".into());
    let mut c = a.clone();
    c.reason = Some("8 readings over the calibration window; 12 needed".into());
    assert!(same(&b, &c));
    assert!(!same(&a, &b));
}
