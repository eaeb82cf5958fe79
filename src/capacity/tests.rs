use super::limits::{ConnectionLimit, CostLimit};
use super::*;
use crate::simulate::{EXAMPLE_WEB, EXAMPLE_WORKER, parse_policy};

/// A day's swing of load (100..250 requests/s) with usage that follows it.
fn day(app_per_request: f64, db_base: f64, db_per_request: f64) -> Vec<Reading> {
    (0..120)
        .map(|i| {
            let phase = (i as f64 / 120.0 * std::f64::consts::TAU).sin();
            let load = 175.0 + 75.0 * phase;
            Reading {
                at: 60.0 * i as f64,
                load,
                app: Some(0.2 + app_per_request * load),
                database_cpu: Some(db_base + db_per_request * load),
                throttled: None,
            }
        })
        .collect()
}

fn web_limits() -> Limits {
    Limits {
        max_replicas: 40,
        app: Some(AppSizing::Cpu {
            target_percent: 70.0,
        }),
        database_cpu_act: Some(0.7),
        connections: Some(ConnectionLimit {
            pool_per_replica: 10.0,
            max_connections: 500.0,
            act: 0.9,
        }),
        cost: Some(CostLimit {
            per_replica_hour: 0.04,
            max_hourly: 2.0,
        }),
        worker_rate: None,
        throttled_saturated: None,
    }
}

#[test]
fn the_database_is_named_first_when_it_is_closest_to_its_threshold() {
    // The last readings sit at the day's start (175/s); the database runs 0.1 + 0.002/request.
    let e = estimate(&day(0.01, 0.1, 0.002), &web_limits());
    assert!((e.load - 175.0).abs() < 20.0, "{}", e.load);
    let Headline::Breaks { factor, resource } = e.headline() else {
        panic!("{:?}", e.headline())
    };
    assert_eq!(resource, Resource::DatabaseCpu);
    // 0.1 + 0.002 × L × f = 0.7  →  f = 300 / L.
    assert!((factor - 300.0 / e.load).abs() < 0.05, "{factor}");
    assert_eq!(e.headline().short(), format!("{factor:.1}x database-cpu"));
    // Every resource is there, in the order they break.
    let names: Vec<_> = e.resources.iter().map(|r| r.resource).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let factors: Vec<f64> = e
        .resources
        .iter()
        .filter_map(|r| r.factor.clone().ok().flatten())
        .collect();
    assert!(factors.windows(2).all(|w| w[0] <= w[1]), "{factors:?}");
}

#[test]
fn the_app_tier_is_named_first_when_its_replicas_run_out_first() {
    // The connection budget allows 45 replicas and the cost ceiling 50: maxReplicas (40) binds.
    let e = estimate(&day(0.05, 0.05, 0.0001), &web_limits());
    let Headline::Breaks { factor, resource } = e.headline() else {
        panic!("{:?}", e.headline())
    };
    assert_eq!(resource, Resource::App);
    // 0.2 + 0.05 × L × f = 40 × 0.7  →  f = 27.8 / (0.05 L).
    assert!((factor - 27.8 / (0.05 * e.load)).abs() < 0.05, "{factor}");
}

#[test]
fn flat_load_gives_unknown_and_says_why() {
    let flat: Vec<Reading> = (0..60)
        .map(|i| Reading {
            at: 60.0 * i as f64,
            load: 150.0,
            app: Some(2.0),
            database_cpu: Some(0.3),
            throttled: None,
        })
        .collect();
    let e = estimate(&flat, &web_limits());
    match e.headline() {
        Headline::Unknown { why, .. } => {
            assert!(why.to_string().contains("load varied only"), "{why}")
        }
        h => panic!("{h:?}"),
    }
    assert_eq!(e.headline().short(), "Unknown");
    assert!(matches!(
        estimate(&[], &web_limits()).headline(),
        Headline::NoData(_)
    ));
}

#[test]
fn a_missing_series_is_unknown_not_skipped() {
    let mut readings = day(0.01, 0.1, 0.0001);
    for r in &mut readings {
        r.database_cpu = None;
    }
    match estimate(&readings, &web_limits()).headline() {
        Headline::Unknown { resource, why } => {
            assert_eq!(resource, Resource::DatabaseCpu);
            assert!(matches!(why, fit::Unfit::TooFewPoints { have: 0, .. }));
        }
        h => panic!("{h:?}"),
    }
}

#[test]
fn limits_come_from_the_example_policies() {
    let Ok(web) = parse_policy(EXAMPLE_WEB, "web") else {
        panic!("web")
    };
    let l = Limits::from_plan(&web.plan, Some(500.0));
    assert_eq!(l.max_replicas, 40);
    assert_eq!(
        l.app,
        Some(AppSizing::Cpu {
            target_percent: 70.0
        })
    );
    assert_eq!(l.database_cpu_act, Some(0.7));
    assert_eq!(
        l.connections
            .map(|c| (c.pool_per_replica, c.max_connections)),
        Some((10.0, 500.0))
    );
    assert_eq!(l.cost.map(|c| c.max_hourly), Some(2.0));
    assert_eq!(l.worker_rate, None);
    // Without the reading, the budget's limit is unknown and left out.
    assert_eq!(Limits::from_plan(&web.plan, None).connections, None);

    let Ok(worker) = parse_policy(EXAMPLE_WORKER, "worker") else {
        panic!("worker")
    };
    let l = Limits::from_plan(&worker.plan, None);
    assert_eq!(l.worker_rate, Some(4.0));
    let jobs: Vec<Reading> = (0..20)
        .map(|i| Reading {
            at: 60.0 * i as f64,
            load: 8.0,
            ..Default::default()
        })
        .collect();
    // 20 workers × 4 jobs/s = 80 jobs/s: ten times today's 8.
    assert_eq!(
        estimate(&jobs, &l).headline(),
        Headline::Breaks {
            factor: 10.0,
            resource: Resource::Workers
        }
    );
}

#[test]
fn an_app_throttled_at_its_limit_now_breaks_first_at_today_s_load() {
    let mut readings = day(0.01, 0.1, 0.001);
    let limits = Limits {
        throttled_saturated: Some(0.25),
        ..web_limits()
    };
    // Throttled in 40 % of periods over the last readings: its usage is capped at the limit.
    let n = readings.len();
    for r in &mut readings[n - 5..] {
        r.throttled = Some(0.4);
    }
    let e = estimate(&readings, &limits);
    assert_eq!(
        e.headline(),
        Headline::Breaks {
            factor: 1.0,
            resource: Resource::CpuLimit
        }
    );
    let row = e
        .resources
        .iter()
        .find(|r| r.resource == Resource::CpuLimit);
    assert!(row.is_some_and(|r| r.threshold == "25% of periods throttled (now 40%)"));
    // Throttled earlier in the day but not now, or pods without a limit: not broken.
    for r in &mut readings[n - 5..] {
        r.throttled = Some(0.1);
    }
    assert!(
        estimate(&readings, &limits)
            .resources
            .iter()
            .all(|r| r.resource != Resource::CpuLimit)
    );
    for r in &mut readings {
        r.throttled = None;
    }
    assert!(
        estimate(&readings, &limits)
            .resources
            .iter()
            .all(|r| r.resource != Resource::CpuLimit)
    );
}
