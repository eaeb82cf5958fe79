//! The autoscalers compared on the same run. All of them run the same plan through the same
//! evaluation as the operator; they differ in timing and in whether the guardrails are on.
//! The model answers the plan's queries the way Prometheus would.

use crate::api::PromDuration;
use crate::decision::guardrails::Claim;
use crate::decision::{
    self, History, Limit, Memory, Moment, Recommendation, ScaleEvent, capacity_age,
};
use crate::plan::{Measure, Observation, Plan, Query, QueryError, Sample, Shape};

use super::keda::KedaZero;
use super::kpa::Kpa;
use super::model::Snapshot;
use super::observe::Observer;
use super::predictor::Predictor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Headroom: the policy as written, guardrails included, at its own interval.
    Headroom,
    /// The HPA: the same targets and behavior, no guardrails, the controller's 15s sync.
    Hpa,
    /// KEDA with `minReplicaCount` >= 1: an HPA that asks KEDA's metrics adapter on every 15s
    /// sync, and the adapter asks Prometheus live (`useCachedMetrics` is off by default). The
    /// 30s `pollingInterval` only drives activation from and to zero. So it decides as the HPA
    /// does, as real KEDA 2.21 did beside the HPA on the test cluster (issue #14).
    Keda,
    /// Knative's KPA on the web tier (concurrency, 2 s tick, panic window); the HPA on
    /// the workers, which Knative does not scale.
    Kpa,
    /// A fixed replica count.
    Static,
    /// The HPA with every target at this percent of the policy's: a dearer or cheaper HPA, so
    /// that Headroom is judged against the HPA at its own replica-minutes. Not in `ALL`.
    HpaAt { percent: u8 },
    /// The bound at this utilization (percent), with what it sees of the load: see `bound`.
    /// Not a baseline, and not in `ALL`.
    Bound {
        utilization: u8,
        sight: super::bound::Sight,
    },
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Headroom,
        Kind::Hpa,
        Kind::Keda,
        Kind::Kpa,
        Kind::Static,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Headroom => "headroom",
            Kind::Hpa => "hpa",
            Kind::Keda => "keda",
            Kind::Kpa => "kpa",
            Kind::Static => "static",
            Kind::HpaAt { .. } => "hpa at",
            Kind::Bound { .. } => "bound",
        }
    }
}

/// Other connections competing for the same database, for the connection budget.
#[derive(Clone, Debug, Default)]
pub struct Neighbours {
    pub claims: Vec<Claim>,
    pub max_connections: f64,
}

pub struct Scaler {
    pub kind: Kind,
    plan: Plan,
    interval: usize,
    next: usize,
    recommendations: Vec<(usize, i32)>,
    events: Vec<(usize, i32)>,
    last_spike: Option<usize>,
    fixed: i32,
    /// When the creeping-latency guardrail first added a replica.
    pub creeping_at: Option<usize>,
    /// The calendar time (Unix seconds) of scenario second 0; schedules apply only with one.
    clock: Option<i64>,
    caught_up: Option<usize>,
    /// minReplicas 0: since when the evaluations have been idle.
    idle_since: Option<usize>,
    /// Knative's own algorithm, for the KPA on a web tier.
    kpa: Option<Kpa>,
    /// Seconds of the autoscaler's own clock per simulated second: the HPA's syncs are
    /// evaluated on whole seconds, 15 apart, but age as the real ones do.
    clock_rate: f64,
    /// Predictive scaling, where the policy has it on (Headroom only).
    predictor: Option<Predictor>,
    /// When a predicted rise raised the count.
    pub predicted_at: Vec<usize>,
    /// KEDA's loop to and from zero, for a policy with minReplicas 0.
    zero: Option<KedaZero>,
}

/// The real HPA controller's period between two syncs of one HPA, measured on the test
/// cluster (405 s over 27 syncs, 300.3 s over 20; scripts/peers-bench.sh): 15 s plus the
/// time a sync takes. It matters at the stabilization window's edge: a recommendation 20
/// syncs old is just over 300 s old, so upstream's window has already let it go.
const HPA_SYNC_SECONDS: f64 = 15.02;

fn secs(d: PromDuration) -> usize {
    d.as_secs_f64().round().max(1.0) as usize
}

/// The model's answer to one query, as Prometheus would give it.
fn answer(q: &Query, obs: &Observer, now: usize, n: &Neighbours) -> Result<Sample, QueryError> {
    let pick: fn(&Snapshot) -> f64 = match &q.measure {
        Measure::Latency { .. } => |x| x.p95,
        Measure::CpuUtilization { .. } => |x| x.cpu * 100.0,
        Measure::CpuThrottled { .. } => |x| x.throttled,
        Measure::Concurrency { .. } => |x| x.in_flight,
        Measure::QueueBacklog(_) => |x| x.backlog,
        Measure::ArrivalRate(_) => |x| x.jobs,
        Measure::RequestRate(_) => |x| x.requests,
        Measure::DatabaseCpu(_) | Measure::DatabaseCpuOverAct { .. } => |x| x.db_cpu,
        Measure::MaxConnections(_) => return Ok(Sample::Value(n.max_connections)),
        // Arbitrary PromQL and these indicators have no counterpart in the model.
        _ => {
            return Err(QueryError::Unavailable(
                "the simulator's model has no such series".into(),
            ));
        }
    };
    let value = match (&q.measure, q.shape) {
        (_, Shape::Range { span_seconds, .. }) => {
            return Ok(Sample::Series(obs.series(
                now,
                span_seconds.round().max(1.0) as usize,
                pick,
            )));
        }
        (
            Measure::Latency {
                window, quantile, ..
            },
            _,
        ) => obs.quantile(now, Some(secs(*window)), *quantile),
        (Measure::CpuUtilization { window }, _) | (Measure::Concurrency { window, .. }, _) => {
            obs.mean(now, Some(secs(*window)), pick)
        }
        // Pods without a limit run no CFS periods: no series, as in Prometheus.
        (Measure::CpuThrottled { window }, _) => obs
            .mean(now, Some(secs(*window)), pick)
            .filter(|v| v.is_finite()),
        (Measure::ArrivalRate(_), _) => obs.mean(now, None, pick),
        (Measure::DatabaseCpuOverAct { act, window, .. }, _) => {
            let act = *act;
            obs.fraction(now, secs(*window), |s| s.db_cpu > act)
        }
        _ => obs.last(pick),
    };
    value.map(Sample::Value).ok_or(QueryError::Empty)
}

/// Whether any KEDA trigger is active (over its activation threshold); None when none is and
/// one could not be read.
fn activity(plan: &Plan, o: &Observation) -> Option<bool> {
    let mut unread = false;
    for s in &plan.signals {
        let Some(threshold) = s.activation else {
            continue;
        };
        match o.value(&s.key) {
            Ok(v) if v > threshold => return Some(true),
            Ok(_) => {}
            Err(_) => unread = true,
        }
    }
    (!unread).then_some(false)
}

impl Scaler {
    /// The HPA and KEDA run the plan without guardrails, as the HPA would size it. The KPA
    /// scales a web tier (one with a latency or CPU signal) with `container_concurrency`.
    pub fn new(kind: Kind, plan: &Plan, fixed: i32, container_concurrency: u32) -> Self {
        let zero = (kind == Kind::Keda && plan.idle.is_some()).then(KedaZero::new);
        let (plan, interval, clock_rate) = match kind {
            Kind::Headroom => (plan.clone(), secs(plan.interval), 1.0),
            Kind::HpaAt { percent } => (
                plan.as_hpa().targets_at(f64::from(percent) / 100.0),
                15,
                HPA_SYNC_SECONDS / 15.0,
            ),
            _ => (plan.as_hpa(), 15, HPA_SYNC_SECONDS / 15.0),
        };
        let web = plan
            .signals
            .iter()
            .any(|s| matches!(s.kind, "latency" | "cpu"));
        let kpa = (kind == Kind::Kpa && web)
            .then(|| Kpa::new(container_concurrency, plan.min_replicas, plan.max_replicas));
        let predictor = plan.predictive.clone().map(Predictor::new);
        Self {
            kind,
            plan,
            interval,
            next: 0,
            recommendations: vec![],
            events: vec![],
            last_spike: None,
            fixed,
            creeping_at: None,
            clock: None,
            caught_up: None,
            idle_since: None,
            kpa,
            clock_rate,
            predictor,
            predicted_at: vec![],
            zero,
        }
    }

    /// Whether the target starts at zero: where this autoscaler can scale to zero.
    pub fn starts_at_zero(&self, plan: &Plan) -> bool {
        plan.idle.is_some() && (self.kind == Kind::Headroom || self.zero.is_some())
    }

    /// What predictive scaling learned last, where it is on.
    pub fn learned(&self) -> Option<&crate::predict::Learned> {
        self.predictor.as_ref()?.learned()
    }

    /// What an autoscaler that reads the pods directly (the KPA) sees this second.
    pub fn record(&mut self, now: usize, snap: &Snapshot) {
        if let Some(k) = &mut self.kpa {
            k.record(now, snap.in_flight);
        }
    }

    /// Places the run on the calendar, so the policy's schedule windows apply.
    pub fn starting_at(mut self, clock: Option<i64>) -> Self {
        self.clock = clock;
        self
    }

    fn observe(&self, obs: &Observer, now: usize, n: &Neighbours) -> Observation {
        let mut o = Observation::default();
        for q in self.plan.queries() {
            o.insert(q.key.clone(), answer(q, obs, now, n));
        }
        o
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
        match self.kind {
            Kind::Static => return (current != self.fixed).then_some(self.fixed),
            // Sized in `run_probed`, from the truth no autoscaler sees.
            Kind::Bound { .. } => return None,
            _ => {}
        }
        if let Some(k) = &mut self.kpa {
            let desired = k.step(now, current, ready)?;
            self.events.push((now, desired - current));
            return Some(desired);
        }
        if self.zero.as_mut().is_some_and(|z| z.polls(now)) {
            let active = activity(&self.plan, &self.observe(obs, now, neighbours));
            if let Some(n) = self
                .zero
                .as_mut()
                .and_then(|z| z.after_poll(now, active, current))
            {
                self.events.push((now, n - current));
                return Some(n);
            }
        }
        // At zero the HPA does nothing; KEDA's loop alone starts the target.
        if self.zero.is_some() && current == 0 {
            return None;
        }
        if now < self.next {
            return None;
        }
        self.next = now + self.interval;
        let observation = self.observe(obs, now, neighbours);
        let rate = self.clock_rate;
        let age = |t: usize| (now - t) as f64 * rate;
        self.recommendations.retain(|(t, _)| now - t <= 3600);
        self.events.retain(|(t, _)| now - t <= 3600);
        let memory = Memory {
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
            last_spike_age: self.last_spike.map(age),
            budget_name: "me".into(),
            neighbours: neighbours.claims.clone(),
            predicted: self
                .predictor
                .as_mut()
                .and_then(|p| p.peak(now, self.clock.unwrap_or(0), obs)),
            idle_seconds: self.idle_since.map(age),
        };
        let at = Moment {
            unix: self.clock.map(|start| start + now as i64),
            current_replicas: current,
            ready_replicas: ready,
        };
        let ev = decision::evaluate(&self.plan, &observation, &memory, &at);
        if let Some(r) = ev.decision.recommendation {
            self.recommendations.push((now, r));
        }
        if ev.spike_now {
            self.last_spike = Some(now);
        }
        self.idle_since = ev.idle.then(|| self.idle_since.unwrap_or(now));
        if ev.decision.limited_by == Limit::Predicted && ev.decision.desired_replicas > current {
            self.predicted_at.push(now);
        }
        if ev.decision.limited_by == Limit::CreepingLatency && self.creeping_at.is_none() {
            self.creeping_at = Some(now);
        }
        let desired = ev.decision.desired_replicas;
        (desired != current).then(|| {
            self.events.push((now, desired - current));
            desired
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::controller::{State, step};
    use crate::simulate::{EXAMPLE_WEB, parse_policy};

    /// One engine: the simulator's observation, evaluated through the operator's own path,
    /// gives the decision the simulator takes.
    #[test]
    fn the_simulator_and_the_operator_decide_alike() {
        let Ok(web) = parse_policy(EXAMPLE_WEB, "web") else {
            panic!("example web policy")
        };
        let mut observer = Observer::new(15, 60, 3600);
        for t in 0..=600 {
            let load = 1.0 + t as f64 / 100.0;
            observer.record(
                t,
                &Snapshot {
                    requests: 100.0 * load,
                    p95: 0.1 * load,
                    within: crate::simulate::model::all_within(0.1 * load),
                    cpu: 0.2 * load,
                    db_cpu: 0.3,
                    ..Default::default()
                },
            );
        }
        let n = Neighbours {
            claims: vec![],
            max_connections: 1000.0,
        };
        let mut scaler = Scaler::new(Kind::Headroom, &web.plan, 0, 4);
        let observation = scaler.observe(&observer, 600, &n);
        for q in web.plan.queries() {
            assert!(observation.contains(&q.key), "{} not answered", q.key);
        }
        let operator = step(
            &State::default(),
            "shop/web",
            None,
            &web.plan,
            &observation,
            Instant::now(),
            Moment {
                unix: None,
                current_replicas: 4,
                ready_replicas: 4,
            },
            vec![],
        );
        let simulator = scaler.step(600, &observer, 4, 4, &n).unwrap_or(4);
        assert!(operator.decision.desired_replicas > 4, "{operator:?}");
        assert_eq!(simulator, operator.decision.desired_replicas);
    }
}
