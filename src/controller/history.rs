//! Trends, forecasts and "regularly" from the readings the operator takes anyway, kept per
//! policy, instead of range queries and a 30-minute subquery on every evaluation. A ring is
//! seeded once from Prometheus (a new policy, a restart); after that each evaluation adds
//! one instant reading. Pure: the caller supplies the time.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::plan::{Measure, Observation, Query, QueryError, Sample, Shape, defaults};

/// A hard bound on readings per ring, whatever the window and interval.
const MAX_POINTS: usize = 256;

/// One key's readings, oldest first. A fleet holds a few of these per policy: a reading is
/// kept in 8 bytes (milliseconds since the ring's base, and the value as f32, which trends
/// and "regularly" fractions do not need more of), not 24.
#[derive(Debug, Clone)]
pub struct Ring {
    base: Instant,
    points: VecDeque<(u32, f32)>,
    seeded: bool,
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            points: VecDeque::new(),
            seeded: false,
        }
    }
}

impl Ring {
    fn len(&self) -> usize {
        self.points.len()
    }

    fn time(&self, offset: u32) -> Instant {
        self.base + std::time::Duration::from_millis(u64::from(offset))
    }

    fn iter(&self) -> impl Iterator<Item = (Instant, f64)> + '_ {
        self.points
            .iter()
            .map(|&(o, v)| (self.time(o), f64::from(v)))
    }

    fn get(&self, i: usize) -> Option<Instant> {
        self.points.get(i).map(|&(o, _)| self.time(o))
    }

    fn offset(&self, t: Instant) -> Option<u32> {
        let d = t.checked_duration_since(self.base)?;
        u32::try_from(d.as_millis()).ok()
    }

    fn push_back(&mut self, t: Instant, v: f64) {
        if self.points.is_empty() {
            self.base = t;
        }
        let offset = match self.offset(t) {
            Some(o) => o,
            // Before the base, or 49 days after it: count from the oldest point that is
            // within 40 days of `t` (no window is near that long).
            None => {
                let reach = std::time::Duration::from_secs(40 * 86_400);
                let kept: Vec<(Instant, f64)> = self
                    .iter()
                    .filter(|(p, _)| t.saturating_duration_since(*p) < reach)
                    .collect();
                self.base = kept.first().map_or(t, |p| p.0.min(t));
                self.points.clear();
                for (p, v) in kept {
                    let o = self.offset(p).unwrap_or(0);
                    self.points.push_back((o, v as f32));
                }
                self.offset(t).unwrap_or(0)
            }
        };
        self.points.push_back((offset, v as f32));
    }

    fn replace(&mut self, points: impl Iterator<Item = (Instant, f64)>) {
        let points: Vec<(Instant, f64)> = points.collect();
        self.points = VecDeque::with_capacity(points.len());
        if let Some(first) = points.iter().map(|p| p.0).min() {
            self.base = first;
        }
        for (t, v) in points {
            self.push_back(t, v);
        }
    }
}

pub type Rings = HashMap<String, Ring>;

/// The key of a range query's instant counterpart in the observation.
fn now_key(key: &str) -> String {
    format!("{key}@now")
}

/// How a ringed key is read now and seeded.
enum Kind {
    /// A range query: its measure, instant.
    Series { span: f64 },
    /// The fraction of the window over `act` ("regularly"): from the raw reading.
    Fraction { act: f64, span: f64, query: String },
}

fn kind(q: &Query) -> Option<Kind> {
    match (&q.measure, q.shape) {
        (_, Shape::Range { span_seconds, .. }) => Some(Kind::Series { span: span_seconds }),
        (Measure::DatabaseCpuOverAct { query, act, window }, Shape::Instant) => {
            Some(Kind::Fraction {
                act: *act,
                span: window.as_secs_f64(),
                query: query.clone(),
            })
        }
        _ => None,
    }
}

/// The queries to send this evaluation: instant ones as they are; for each ringed key an
/// instant reading, and the range query itself while its ring is not seeded.
pub fn queries(plan: &[Query], rings: &Rings) -> Vec<Query> {
    let mut out = vec![];
    for q in plan {
        let Some(k) = kind(q) else {
            out.push(q.clone());
            continue;
        };
        let (measure, seed) = match k {
            Kind::Series { .. } => (q.measure.clone(), q.clone()),
            Kind::Fraction { span, query, .. } => {
                let raw = Measure::DatabaseCpu(query);
                let step = (span / defaults::RANGE_POINTS).max(1.0);
                let seed = Query {
                    shape: Shape::Range {
                        span_seconds: span,
                        step_seconds: step,
                    },
                    measure: raw.clone(),
                    ..q.clone()
                };
                (raw, seed)
            }
        };
        out.push(Query {
            key: now_key(&q.key),
            measure,
            shape: Shape::Instant,
            ..q.clone()
        });
        if !rings.get(&q.key).is_some_and(|r| r.seeded) {
            out.push(seed);
        }
    }
    out
}

/// Folds this evaluation's readings into the rings, and gives the engine the observation the
/// plan asked for: series for range keys, fractions for "regularly".
pub fn fold(plan: &[Query], mut raw: Observation, rings: &mut Rings, now: Instant) -> Observation {
    for q in plan {
        let Some(k) = kind(q) else { continue };
        let span = match k {
            Kind::Series { span } | Kind::Fraction { span, .. } => span,
        };
        let ring = rings.entry(q.key.clone()).or_default();
        if !ring.seeded {
            match raw.series(&q.key) {
                Ok(series) => {
                    // Seed points are (seconds since the window's start, value).
                    ring.replace(series.iter().filter_map(|&(t, v)| {
                        let age =
                            std::time::Duration::try_from_secs_f64((span - t).max(0.0)).ok()?;
                        Some((now.checked_sub(age)?, v))
                    }));
                    ring.seeded = true;
                }
                // No history yet is an answer too; only an unreachable Prometheus is asked again.
                Err(
                    QueryError::Unreachable(_)
                    | QueryError::Unavailable(_)
                    | QueryError::NotObserved,
                ) => {}
                Err(_) => ring.seeded = true,
            }
        }
        let reading = raw.value(&now_key(&q.key));
        if let Ok(v) = reading {
            // About twice a range query's density: the newest reading replaces the last one
            // while that is closer than the spacing to the one before (bounded memory).
            let gap = span / (2.0 * defaults::RANGE_POINTS);
            let n = ring.len();
            if n >= 2
                && ring
                    .get(n - 2)
                    .is_some_and(|t| now.duration_since(t).as_secs_f64() < gap)
            {
                ring.points.pop_back();
            }
            ring.push_back(now, v);
        }
        while ring
            .get(0)
            .is_some_and(|t| now.duration_since(t).as_secs_f64() > span)
            || ring.len() > MAX_POINTS
        {
            ring.points.pop_front();
        }
        let result = if ring.points.is_empty() {
            Err(reading.err().unwrap_or(QueryError::Empty))
        } else {
            Ok(match k {
                Kind::Series { span } => Sample::Series(thinned(ring, span, now)),
                Kind::Fraction { act, .. } => {
                    let over = ring.iter().filter(|(_, v)| *v > act).count();
                    Sample::Value(over as f64 / ring.len() as f64)
                }
            })
        };
        raw.insert(q.key.clone(), result);
    }
    raw
}

/// About `RANGE_POINTS` points over the window, as a range query would return (its trend
/// statistics were set for that density), as (seconds since the window's start, value).
fn thinned(ring: &Ring, span: f64, now: Instant) -> Vec<(f64, f64)> {
    let every = (ring.len() as f64 / defaults::RANGE_POINTS).ceil().max(1.0) as usize;
    let n = ring.len();
    ring.iter()
        .enumerate()
        // Keep the newest point: it is what a trend is extrapolated from.
        .filter(|(i, _)| (n - 1 - i).is_multiple_of(every))
        .map(|(_, (t, v))| (span - now.duration_since(t).as_secs_f64(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::PromDuration;

    fn plan() -> Vec<Query> {
        vec![
            Query {
                key: "cpu".into(),
                field: "spec.signals[0].cpu".into(),
                measure: Measure::Custom("cpu".into()),
                shape: Shape::Instant,
            },
            Query {
                key: "forecast/cpu".into(),
                field: "spec.guardrails.forecast (cpu trend)".into(),
                measure: Measure::Custom("cpu".into()),
                shape: Shape::range(PromDuration::from_secs(300)),
            },
            Query {
                key: "databaseCpu/regularly".into(),
                field: "spec.indicators.databaseCpu".into(),
                measure: Measure::DatabaseCpuOverAct {
                    query: "db".into(),
                    act: 0.7,
                    window: PromDuration::from_secs(600),
                },
                shape: Shape::Instant,
            },
        ]
    }

    fn keys(qs: &[Query]) -> Vec<(String, bool)> {
        qs.iter()
            .map(|q| (q.key.clone(), matches!(q.shape, Shape::Range { .. })))
            .collect()
    }

    #[test]
    fn seeded_once_then_only_instant_readings() {
        let plan = plan();
        let mut rings = Rings::default();
        let first = queries(&plan, &rings);
        assert_eq!(
            keys(&first),
            [
                ("cpu".into(), false),
                ("forecast/cpu@now".into(), false),
                ("forecast/cpu".into(), true),
                ("databaseCpu/regularly@now".into(), false),
                ("databaseCpu/regularly".into(), true),
            ]
        );
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut raw = Observation::default();
        raw.insert(
            "forecast/cpu",
            Ok(Sample::Series(vec![(0.0, 40.0), (150.0, 50.0)])),
        );
        raw.insert("forecast/cpu@now", Ok(Sample::Value(60.0)));
        raw.insert(
            "databaseCpu/regularly",
            Ok(Sample::Series(vec![(0.0, 0.9), (300.0, 0.5)])),
        );
        raw.insert("databaseCpu/regularly@now", Ok(Sample::Value(0.8)));
        let obs = fold(&plan, raw, &mut rings, t0);
        assert_eq!(
            obs.series("forecast/cpu"),
            Ok(vec![(0.0, 40.0), (150.0, 50.0), (300.0, 60.0)])
        );
        // Two of three readings over 0.7.
        let f = obs.value("databaseCpu/regularly").unwrap_or_default();
        assert!((f - 2.0 / 3.0).abs() < 1e-9, "{f}");
        // Seeded: from now on only instant readings go out.
        assert_eq!(
            keys(&queries(&plan, &rings)),
            [
                ("cpu".into(), false),
                ("forecast/cpu@now".into(), false),
                ("databaseCpu/regularly@now".into(), false),
            ]
        );
        // Readings age out of the window.
        let later = t0 + Duration::from_secs(200);
        let mut raw = Observation::default();
        raw.insert("forecast/cpu@now", Ok(Sample::Value(70.0)));
        raw.insert("databaseCpu/regularly@now", Err(QueryError::Empty));
        let obs = fold(&plan, raw, &mut rings, later);
        assert_eq!(
            obs.series("forecast/cpu"),
            Ok(vec![(100.0, 60.0), (300.0, 70.0)])
        );
    }

    #[test]
    fn an_unseeded_ring_with_no_reading_passes_the_error_on() {
        let plan = plan();
        let mut rings = Rings::default();
        let mut raw = Observation::default();
        raw.insert("forecast/cpu", Err(QueryError::Unreachable("down".into())));
        raw.insert(
            "forecast/cpu@now",
            Err(QueryError::Unreachable("down".into())),
        );
        let obs = fold(&plan, raw, &mut rings, Instant::now());
        assert_eq!(
            obs.series("forecast/cpu"),
            Err(QueryError::Unreachable("down".into()))
        );
        // Not seeded: the next evaluation seeds again.
        assert!(keys(&queries(&plan, &rings)).contains(&("forecast/cpu".into(), true)));
        // A series with no samples yet is an answer: it is not asked again.
        let mut raw = Observation::default();
        raw.insert("forecast/cpu", Err(QueryError::Empty));
        raw.insert("forecast/cpu@now", Ok(Sample::Value(1.0)));
        let obs = fold(&plan, raw, &mut rings, Instant::now());
        assert_eq!(obs.series("forecast/cpu").map(|s| s.len()), Ok(1));
        assert!(!keys(&queries(&plan, &rings)).contains(&("forecast/cpu".into(), true)));
    }

    #[test]
    fn a_ring_keeps_under_eighty_readings_per_window_and_always_the_newest() {
        let plan = plan();
        let mut rings = Rings::default();
        let t0 = Instant::now();
        for i in 0..600u64 {
            let mut raw = Observation::default();
            raw.insert("forecast/cpu", Err(QueryError::Empty));
            raw.insert("forecast/cpu@now", Ok(Sample::Value(i as f64)));
            let obs = fold(&plan, raw, &mut rings, t0 + Duration::from_secs(i));
            let series = obs.series("forecast/cpu").unwrap_or_default();
            assert_eq!(series.last().map(|p| p.1), Some(i as f64));
        }
        let n = rings.get("forecast/cpu").map_or(0, |r| r.points.len());
        // A 300 s window read every second: 60-75 kept (one per 4-5 s), not 300.
        assert!((55..=80).contains(&n), "{n}");
    }

    #[test]
    fn a_long_ring_is_thinned_to_about_thirty_points_keeping_the_newest() {
        let now = Instant::now() + Duration::from_secs(7200);
        let mut ring = Ring::default();
        ring.replace((0..120).map(|i| (now - Duration::from_secs(15 * (119 - i)), i as f64)));
        let out = thinned(&ring, 1800.0, now);
        assert!((28..=31).contains(&out.len()), "{}", out.len());
        assert_eq!(out.last(), Some(&(1800.0, 119.0)));
    }

    #[test]
    fn a_ring_keeps_times_to_the_millisecond_across_a_new_base() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut ring = Ring::default();
        ring.push_back(t0, 0.5);
        ring.push_back(t0 + Duration::from_millis(1500), 0.25);
        // Before the base: the base moves back, the other points keep their times.
        ring.push_back(t0 - Duration::from_secs(60), 1.0);
        let times: Vec<Instant> = ring.iter().map(|p| p.0).collect();
        assert_eq!(
            times,
            vec![
                t0,
                t0 + Duration::from_millis(1500),
                t0 - Duration::from_secs(60)
            ]
        );
        // 50 days on, past what u32 milliseconds reach: points out of reach are dropped.
        let later = t0 + Duration::from_secs(50 * 86_400);
        ring.push_back(later, 2.0);
        assert_eq!(ring.iter().collect::<Vec<_>>(), vec![(later, 2.0)]);
    }
}
