//! The autoscalers compared on the same run. All of them call the same decision engine;
//! they differ in timing, in what they see, and in whether the guardrails are on.

use crate::api::{PromDuration, ScalingPolicySpec, SignalKind, TargetType};
use crate::decision::guardrails::{
    self, Claim, Cost, CreepingInput, DatabaseEvidence, ForecastInput, ForecastSeries,
    GuardrailInput, PanicInput, ShortReading,
};
use crate::decision::{
    self, DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, History, Input, Recommendation, ScaleEvent,
    SignalValue, Tolerance, capacity_age,
};

use super::observe::Observer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Headroom: the policy as written, guardrails included, at its own interval.
    Headroom,
    /// The HPA: the same targets and behavior, no guardrails, the controller's 15s sync.
    Hpa,
    /// KEDA: the HPA fed by a scaler polled every 30s (KEDA's default pollingInterval).
    Keda,
    /// A fixed replica count.
    Static,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Headroom, Kind::Hpa, Kind::Keda, Kind::Static];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Headroom => "headroom",
            Kind::Hpa => "hpa",
            Kind::Keda => "keda",
            Kind::Static => "static",
        }
    }
}

/// Other connections competing for the same database, for the connection budget.
#[derive(Clone, Debug, Default)]
pub struct Neighbours {
    pub claims: Vec<Claim>,
    pub max_connections: f64,
    pub pool_size: i32,
}

pub struct Scaler {
    pub kind: Kind,
    spec: ScalingPolicySpec,
    interval: usize,
    next: usize,
    recommendations: Vec<(usize, i32)>,
    events: Vec<(usize, i32)>,
    last_spike: Option<usize>,
    cached: Option<(usize, Vec<Option<f64>>)>,
    fixed: i32,
    /// When the creeping-latency guardrail first added a replica.
    pub creeping_at: Option<usize>,
    /// The calendar time (Unix seconds) of scenario second 0; schedules apply only with one.
    clock: Option<i64>,
    caught_up: Option<usize>,
}

fn secs(d: PromDuration) -> usize {
    d.as_secs_f64().round().max(1.0) as usize
}

impl Scaler {
    pub fn new(kind: Kind, spec: ScalingPolicySpec, fixed: i32) -> Self {
        let interval = match kind {
            Kind::Headroom => secs(spec.interval),
            _ => 15,
        };
        Self {
            kind,
            spec,
            interval,
            next: 0,
            recommendations: vec![],
            events: vec![],
            last_spike: None,
            cached: None,
            fixed,
            creeping_at: None,
            clock: None,
            caught_up: None,
        }
    }

    /// Places the run on the calendar, so the policy's schedule windows apply.
    pub fn starting_at(mut self, clock: Option<i64>) -> Self {
        self.clock = clock;
        self
    }

    fn read(&self, obs: &Observer, now: usize, window_scale: f64) -> Vec<Option<f64>> {
        self.spec
            .signals
            .iter()
            .map(|s| match s.kind() {
                Some(SignalKind::Latency(l)) => obs.p95(
                    now,
                    Some(((secs(l.window) as f64) * window_scale).max(1.0) as usize),
                ),
                Some(SignalKind::Cpu(c)) => obs.mean(
                    now,
                    Some(((secs(c.window) as f64) * window_scale).max(1.0) as usize),
                    |x| x.cpu * 100.0,
                ),
                Some(SignalKind::Queue(_)) => obs.last(|x| x.backlog),
                // Arbitrary PromQL has no counterpart in the model.
                Some(SignalKind::Custom(_)) | None => None,
            })
            .chain(self.arrivals().map(|_| obs.mean(now, Some(60), |x| x.jobs)))
            .collect()
    }

    /// Queues sized by their arrival rate: (name, jobs per second per replica).
    fn arrivals(&self) -> impl Iterator<Item = (String, f64)> + '_ {
        self.spec.signals.iter().filter_map(|s| {
            let q = s.queue.as_ref()?;
            q.arrival_rate_query.as_ref()?;
            Some((format!("{}-arrivals", s.name), q.rate_per_replica?))
        })
    }

    fn targets(&self) -> Vec<(String, TargetType, f64)> {
        self.spec
            .signals
            .iter()
            .map(|s| match s.kind() {
                Some(SignalKind::Latency(l)) => {
                    (s.name.clone(), TargetType::Value, l.target.as_secs_f64())
                }
                Some(SignalKind::Cpu(c)) => (
                    s.name.clone(),
                    TargetType::Value,
                    f64::from(c.target_utilization),
                ),
                Some(SignalKind::Queue(q)) => (
                    s.name.clone(),
                    TargetType::AverageValue,
                    q.target_per_replica,
                ),
                Some(SignalKind::Custom(c)) => (s.name.clone(), c.target_type, c.target),
                None => (s.name.clone(), TargetType::Value, 1.0),
            })
            .chain(
                self.arrivals()
                    .map(|(name, rate)| (name, TargetType::AverageValue, rate)),
            )
            .collect()
    }

    /// The replica count to set at `now`, when this autoscaler evaluates and wants a change.
    pub fn step(
        &mut self,
        now: usize,
        obs: &Observer,
        current: i32,
        ready: i32,
        neighbours: &Neighbours,
    ) -> Option<i32> {
        if self.kind == Kind::Static {
            return (current != self.fixed).then_some(self.fixed);
        }
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        let values = match self.kind {
            Kind::Keda => match &self.cached {
                Some((at, v)) if now < at + 30 => v.clone(),
                _ => {
                    let v = self.read(obs, now, 1.0);
                    self.cached = Some((now, v.clone()));
                    v
                }
            },
            _ => self.read(obs, now, 1.0),
        };
        // Headroom's latency semantics (up-only beside a sizing signal); the HPA's otherwise.
        let sizing = self.spec.signals.iter().any(|s| s.latency.is_none());
        // A latency signal's window: how far back its reading looks.
        let mut latency: Vec<Option<f64>> = self
            .spec
            .signals
            .iter()
            .map(|s| s.latency.as_ref().map(|l| secs(l.window) as f64))
            .collect();
        latency.resize(values.len(), None);
        let signals = self
            .targets()
            .into_iter()
            .zip(&values)
            .zip(latency)
            .map(|(((name, target_type, target), v), window)| SignalValue {
                name,
                target_type,
                target,
                value: *v,
                up_only: self.kind == Kind::Headroom && window.is_some() && sizing,
                lookback_seconds: window,
            })
            .collect();
        let age = |t: usize| (now - t) as f64;
        self.recommendations.retain(|(t, _)| now - t <= 3600);
        self.events.retain(|(t, _)| now - t <= 3600);
        let input = Input {
            min_replicas: self.spec.min_replicas,
            max_replicas: self.spec.max_replicas,
            behavior: self.spec.behavior.clone(),
            tolerance: Tolerance::uniform(self.spec.tolerance.unwrap_or(0.1)),
            current_replicas: current,
            ready_replicas: ready,
            signals,
            history: History {
                recommendations: self
                    .recommendations
                    .iter()
                    .map(|&(t, r)| Recommendation {
                        replicas: r,
                        age_seconds: age(t),
                    })
                    .collect(),
                scale_events: self
                    .events
                    .iter()
                    .map(|&(t, c)| ScaleEvent {
                        replica_change: c,
                        age_seconds: age(t),
                    })
                    .collect(),
                capacity_age_seconds: capacity_age(
                    &mut self.caught_up,
                    self.events.iter().copied(),
                    now,
                    current,
                    ready,
                    age,
                ),
            },
            downscale_stabilization_seconds: DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
        };
        let base = decision::decide(&input);
        if let Some(r) = base.recommendation {
            self.recommendations.push((now, r));
        }
        let desired = match (self.kind, &self.spec.guardrails) {
            (Kind::Headroom, Some(_)) => self.guard(now, obs, &input, &base, neighbours),
            _ => base.desired_replicas,
        };
        (desired != current).then(|| {
            self.events.push((now, desired - current));
            desired
        })
    }

    fn guard(
        &mut self,
        now: usize,
        obs: &Observer,
        input: &Input,
        base: &decision::Decision,
        n: &Neighbours,
    ) -> i32 {
        let Some(rules) = self.spec.guardrails.clone() else {
            return base.desired_replicas;
        };
        let mut g = GuardrailInput {
            database_hold: rules.database_hold.unwrap_or(true),
            ..Default::default()
        };
        let panic = rules.panic.clone().unwrap_or_default();
        if panic.enabled != Some(false) {
            let stable = panic
                .stable_window
                .unwrap_or(PromDuration::from_secs(60))
                .as_secs_f64();
            let short_values = self.read(obs, now, 0.1);
            g.panic = Some(PanicInput {
                threshold: panic.threshold.unwrap_or(2.0),
                stable_window_seconds: stable,
                short: self
                    .targets()
                    .into_iter()
                    .zip(short_values)
                    .zip(self.spec.signals.iter().map(|s| s.latency.is_some()))
                    .map(
                        |(((name, target_type, target), value), is_latency)| ShortReading {
                            name,
                            target_type,
                            target,
                            value,
                            up_only: is_latency
                                && self.spec.signals.iter().any(|s| s.latency.is_none()),
                        },
                    )
                    .collect(),
                last_spike_age: self.last_spike.map(|t| (now - t) as f64),
            });
        }
        if let Some(db) = self
            .spec
            .indicators
            .as_ref()
            .and_then(|i| i.database_cpu.as_ref())
        {
            let act = db.thresholds.act.unwrap_or(0.7);
            let window = db.regularly_window.map(secs).unwrap_or(1800);
            g.database = Some(DatabaseEvidence {
                cpu_over_act_fraction: obs.fraction(now, window, |s| s.db_cpu > act),
                regularly: db.regularly_fraction.unwrap_or(0.5),
                cpu: obs.last(|s| s.db_cpu),
                query_p95: None,
                query_act: 0.5,
            });
        }
        if let (Some(rule), Some(l)) = (
            &rules.creeping_latency,
            self.spec.signals.iter().find_map(|s| s.latency.clone()),
        ) {
            let window = rule.window.map(secs).unwrap_or(1800);
            g.creeping = Some(CreepingInput::new(
                "p95".into(),
                l.target.as_secs_f64(),
                rule.startup_time
                    .unwrap_or(PromDuration::from_secs(60))
                    .as_secs_f64(),
                obs.series(now, window, |s| s.p95),
                obs.series(now, window, |s| s.requests),
            ));
        }
        if let Some(f) = &rules.forecast {
            let window = f.window.map(secs).unwrap_or(300);
            let series = self
                .spec
                .signals
                .iter()
                .filter_map(|s| {
                    let (target_type, target, pick): (
                        TargetType,
                        f64,
                        fn(&super::model::Snapshot) -> f64,
                    ) = match s.kind()? {
                        SignalKind::Cpu(c) => {
                            (TargetType::Value, f64::from(c.target_utilization), |x| {
                                x.cpu * 100.0
                            })
                        }
                        SignalKind::Queue(q) => {
                            (TargetType::AverageValue, q.target_per_replica, |x| {
                                x.backlog
                            })
                        }
                        _ => return None,
                    };
                    Some(ForecastSeries {
                        name: s.name.clone(),
                        target_type,
                        target,
                        samples: obs.series(now, window, pick),
                    })
                })
                .chain(self.arrivals().map(|(name, rate)| ForecastSeries {
                    name,
                    target_type: TargetType::AverageValue,
                    target: rate,
                    samples: obs.series(now, window, |x| x.jobs),
                }))
                .collect();
            g.forecast = Some(ForecastInput {
                horizon_seconds: f.horizon.map(|h| h.as_secs_f64()).unwrap_or(90.0),
                min_t: 3.0,
                series,
            });
        }
        if let Some(start) = self.clock {
            g.now_unix = start + now as i64;
            for (i, w) in rules.schedule.iter().enumerate() {
                // parse_policy has already reported malformed windows.
                g.schedule
                    .extend(guardrails::windows(w, i, g.now_unix, &mut vec![]));
            }
        }
        if let Some(c) = &rules.cost {
            g.cost = Some(Cost {
                per_replica_hour: c.cost_per_replica_hour,
                max_hourly: c.max_hourly_cost,
            });
        }
        let mut out = guardrails::apply(base, input, &g);
        if let Some(b) = &rules.connection_budget {
            let max = b
                .max_connections
                .map(|m| m as f64)
                .unwrap_or(n.max_connections);
            let budget = guardrails::usable(max, b.reserve.unwrap_or(0.1));
            let me = Claim {
                name: "me".into(),
                pool_size: n.pool_size,
                held: input.current_replicas,
                need: out.desired,
            };
            g.budget_cap = Some(guardrails::cap(budget, &me, &n.claims));
            out = guardrails::apply(base, input, &g);
        }
        if out.spike_now {
            self.last_spike = Some(now);
        }
        if out.limited_by == decision::Limit::CreepingLatency && self.creeping_at.is_none() {
            self.creeping_at = Some(now);
        }
        out.desired
    }
}
