//! The audit in status: each leading indicator's value, band and a one-line hint, and the
//! overall verdict. Pure: readings in, status rows out.

use crate::api::{IndicatorStatus, Indicators, Thresholds};
use crate::decision::guardrails::{Band, DatabaseEvidence, Verdict};
use crate::plan::defaults;

/// What was read for the indicators this round (None: not configured or unreadable).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndicatorReadings {
    pub p95: Option<Option<f64>>,
    pub database_cpu: Option<Option<f64>>,
    pub database_cpu_over_act: Option<Option<f64>>,
    pub slow_query: Option<Option<f64>>,
    pub error_rate: Option<Option<f64>>,
    pub connections: Option<Option<f64>>,
    pub pool_wait: Option<Option<f64>>,
    pub queue_age: Option<Option<f64>>,
}

pub struct Audit {
    pub rows: Vec<IndicatorStatus>,
    pub verdict: Option<Verdict>,
    pub database: Option<DatabaseEvidence>,
}

fn limits(t: Option<&Thresholds>, watch: f64, act: f64) -> (f64, f64) {
    (
        t.and_then(|t| t.watch).unwrap_or(watch),
        t.and_then(|t| t.act).unwrap_or(act),
    )
}

fn row(name: &str, value: Option<f64>, band: Band, hint: String) -> IndicatorStatus {
    IndicatorStatus {
        name: name.into(),
        value,
        band: band.as_str().into(),
        hint,
    }
}

fn unknown_hint(name: &str) -> String {
    format!("{name} cannot be read: you can't fix what you can't see")
}

pub fn audit(config: Option<&Indicators>, r: &IndicatorReadings) -> Audit {
    let mut rows = vec![];
    if let Some(v) = r.p95 {
        let (w, a) = limits(config.and_then(|c| c.p95.as_ref()), 0.5, 1.0);
        let band = Band::classify(v, w, a);
        let hint = match band {
            Band::Healthy => format!("p95 under {:.0}ms: healthy", w * 1000.0),
            Band::Watch => "p95 rising: users feel 1-2s; check what grew".into(),
            Band::Act => "p95 over 1s: users feel it; find the bottleneck (database first)".into(),
            Band::Unknown => unknown_hint("p95"),
        };
        rows.push(row("p95", v, band, hint));
    }
    let mut database = None;
    if let (Some(v), Some(cfg)) = (r.database_cpu, config.and_then(|c| c.database_cpu.as_ref())) {
        let (w, a) = limits(
            Some(&cfg.thresholds),
            defaults::DATABASE_CPU_WATCH,
            defaults::DATABASE_CPU_ACT,
        );
        let regularly = cfg
            .regularly_fraction
            .unwrap_or(defaults::REGULARLY_FRACTION);
        let window_seconds = cfg
            .regularly_window
            .map_or(defaults::REGULARLY_WINDOW_SECONDS as f64, |w| {
                w.as_secs_f64()
            });
        let over = r.database_cpu_over_act.flatten();
        // Act only when regularly over: a single hot sample is Watch.
        let band = match (Band::classify(v, w, a), over) {
            (Band::Act, Some(f)) if f < regularly => Band::Watch,
            (b, _) => b,
        };
        let hint = match band {
            Band::Healthy => "database CPU healthy".into(),
            Band::Watch => "database CPU 60-70% or briefly hot: plan caching and indexes".into(),
            Band::Act => "database CPU regularly over 70%: cache hot reads, add indexes or a read replica before adding app servers".into(),
            Band::Unknown => unknown_hint("database CPU"),
        };
        rows.push(row("databaseCpu", v, band, hint));
        database = Some(DatabaseEvidence {
            cpu_over_act_fraction: over,
            regularly,
            cpu: v,
            cpu_act: a,
            window_seconds,
            query_p95: None,
            query_act: defaults::SLOW_QUERY_ACT,
        });
    }
    if let (Some(v), Some(cfg)) = (r.slow_query, config.and_then(|c| c.slow_query.as_ref())) {
        let (w, a) = limits(
            Some(&cfg.thresholds),
            defaults::SLOW_QUERY_WATCH,
            defaults::SLOW_QUERY_ACT,
        );
        let band = Band::classify(v, w, a);
        let hint = match band {
            Band::Healthy => "common queries under 100ms".into(),
            Band::Watch => "common queries slowing: check their plans".into(),
            Band::Act => "common queries over 500ms: add indexes, cache, or a read replica".into(),
            Band::Unknown => unknown_hint("query time"),
        };
        rows.push(row("slowQuery", v, band, hint));
        let db = database.get_or_insert_with(|| DatabaseEvidence {
            regularly: defaults::REGULARLY_FRACTION,
            ..Default::default()
        });
        db.query_p95 = v;
        db.query_act = a;
    }
    for (name, value, cfg, watch, act, what) in [
        (
            "errorRate",
            r.error_rate,
            config.and_then(|c| c.error_rate.as_ref()),
            0.01,
            0.05,
            "5xx share",
        ),
        (
            "connections",
            r.connections,
            config.and_then(|c| c.connections.as_ref()),
            0.7,
            0.9,
            "connections in use",
        ),
    ] {
        if let (Some(v), Some(cfg)) = (value, cfg) {
            let (w, a) = limits(Some(&cfg.thresholds), watch, act);
            let band = Band::classify(v, w, a);
            let hint = match band {
                Band::Unknown => unknown_hint(what),
                b => format!(
                    "{what} {}: {}",
                    v.map(|x| format!("{:.1}%", x * 100.0)).unwrap_or_default(),
                    b.as_str()
                ),
            };
            rows.push(row(name, v, band, hint));
        }
    }
    if let (Some(v), Some(cfg)) = (r.pool_wait, config.and_then(|c| c.pool_wait.as_ref())) {
        rows.push(pool_wait(v, &cfg.thresholds));
    }
    if let (Some(v), Some(cfg)) = (r.queue_age, config.and_then(|c| c.queue_age.as_ref())) {
        let deadline = cfg.deadline.map(|d| d.as_secs_f64()).unwrap_or(300.0);
        let band = Band::classify(v, deadline, deadline);
        let hint = match band {
            Band::Healthy => format!("jobs done within the {deadline:.0}s deadline"),
            Band::Unknown => unknown_hint("queue age"),
            _ => format!(
                "jobs wait past the {deadline:.0}s deadline: add workers or make jobs cheaper"
            ),
        };
        rows.push(row("queueAge", v, band, hint));
    }
    let verdict = (!rows.is_empty()).then(|| {
        Verdict::of(rows.iter().map(|r| match r.band.as_str() {
            "Healthy" => Band::Healthy,
            "Watch" => Band::Watch,
            "Act" => Band::Act,
            _ => Band::Unknown,
        }))
    });
    Audit {
        rows,
        verdict,
        database,
    }
}

/// Waiting for a pooled connection: more app replicas only add waiters, so the hint points
/// at the pool and the database behind it.
fn pool_wait(v: Option<f64>, t: &Thresholds) -> IndicatorStatus {
    let (w, a) = limits(Some(t), defaults::POOL_WAIT_WATCH, defaults::POOL_WAIT_ACT);
    let band = Band::classify(v, w, a);
    let waited = v
        .map(|x| format!("{:.0}ms", x * 1000.0))
        .unwrap_or_default();
    let hint = match band {
        Band::Healthy => format!(
            "clients get a database connection within {:.0}ms",
            w * 1000.0
        ),
        Band::Watch => {
            format!("clients wait {waited} for a database connection: the pool is nearly used up")
        }
        Band::Act => format!(
            "clients wait {waited} for a database connection: raise the pool (PgBouncer's default_pool_size) if the database has room, else relieve the database; more app replicas only add waiters"
        ),
        Band::Unknown => unknown_hint("pool wait"),
    };
    row("poolWait", v, band, hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DatabaseCpuIndicator, QueryIndicator};

    fn config() -> Indicators {
        Indicators {
            p95: None,
            database_cpu: Some(DatabaseCpuIndicator {
                query: "x".into(),
                thresholds: Thresholds::default(),
                regularly_fraction: None,
                regularly_window: None,
            }),
            slow_query: Some(QueryIndicator {
                query: "y".into(),
                thresholds: Thresholds::default(),
            }),
            error_rate: None,
            connections: None,
            pool_wait: None,
            queue_age: None,
        }
    }

    #[test]
    fn all_healthy_is_solid() {
        let r = IndicatorReadings {
            p95: Some(Some(0.2)),
            database_cpu: Some(Some(0.4)),
            database_cpu_over_act: Some(Some(0.0)),
            slow_query: Some(Some(0.05)),
            ..Default::default()
        };
        let a = audit(Some(&config()), &r);
        assert_eq!(a.verdict, Some(Verdict::Solid));
        assert_eq!(a.rows.len(), 3);
        assert!(!a.database.unwrap().bound());
    }

    #[test]
    fn regularly_hot_database_is_act_and_bound() {
        let r = IndicatorReadings {
            p95: Some(Some(1.4)),
            database_cpu: Some(Some(0.85)),
            database_cpu_over_act: Some(Some(0.8)),
            slow_query: Some(Some(0.05)),
            ..Default::default()
        };
        let a = audit(Some(&config()), &r);
        assert_eq!(a.verdict, Some(Verdict::NeedsAttention));
        let db = a.rows.iter().find(|r| r.name == "databaseCpu").unwrap();
        assert_eq!(db.band, "Act");
        assert!(db.hint.contains("read replica"));
        assert!(a.database.unwrap().bound());
    }

    #[test]
    fn one_hot_sample_is_only_watch() {
        let r = IndicatorReadings {
            database_cpu: Some(Some(0.85)),
            database_cpu_over_act: Some(Some(0.1)),
            slow_query: Some(Some(0.05)),
            ..Default::default()
        };
        let a = audit(Some(&config()), &r);
        assert_eq!(a.rows[0].band, "Watch");
        assert_eq!(a.verdict, Some(Verdict::Mixed));
    }

    #[test]
    fn unreadable_indicators_need_attention() {
        let r = IndicatorReadings {
            p95: Some(None),
            ..Default::default()
        };
        let a = audit(None, &r);
        assert_eq!(a.rows[0].band, "Unknown");
        assert!(a.rows[0].hint.contains("can't fix what you can't see"));
        assert_eq!(a.verdict, Some(Verdict::NeedsAttention));
    }

    #[test]
    fn queue_age_is_judged_against_its_deadline() {
        let cfg = Indicators {
            queue_age: Some(crate::api::QueueAgeIndicator {
                query: "q".into(),
                deadline: None,
            }),
            ..Default::default()
        };
        let late = audit(
            Some(&cfg),
            &IndicatorReadings {
                queue_age: Some(Some(420.0)),
                ..Default::default()
            },
        );
        assert_eq!(
            (late.rows[0].band.as_str(), late.verdict),
            ("Act", Some(Verdict::NeedsAttention))
        );
        let fine = audit(
            Some(&cfg),
            &IndicatorReadings {
                queue_age: Some(Some(30.0)),
                ..Default::default()
            },
        );
        assert_eq!(fine.verdict, Some(Verdict::Solid));
    }

    #[test]
    fn waiting_for_a_pooled_connection_points_at_the_pool_not_the_app() {
        let cfg = Indicators {
            pool_wait: Some(QueryIndicator {
                query: "max(pgbouncer_pools_client_maxwait_seconds)".into(),
                thresholds: Thresholds::default(),
            }),
            ..Default::default()
        };
        let read = |wait: Option<f64>| {
            let a = audit(
                Some(&cfg),
                &IndicatorReadings {
                    pool_wait: Some(wait),
                    ..Default::default()
                },
            );
            let r = a.rows.into_iter().find(|r| r.name == "poolWait").unwrap();
            (r.band, r.hint, a.verdict, a.database)
        };
        let (band, hint, verdict, _) = read(Some(0.0));
        assert_eq!((band.as_str(), verdict), ("Healthy", Some(Verdict::Solid)));
        assert!(hint.contains("within 100ms"), "{hint}");
        assert_eq!(read(Some(0.25)).0, "Watch");
        let (band, hint, verdict, database) = read(Some(2.5));
        assert_eq!(
            (band.as_str(), verdict),
            ("Act", Some(Verdict::NeedsAttention))
        );
        assert!(
            hint.contains("2500ms") && hint.contains("default_pool_size"),
            "{hint}"
        );
        // The audit's word only: the database hold is for the database's own evidence.
        assert!(database.is_none());
        assert_eq!(read(None).0, "Unknown");
    }
}
