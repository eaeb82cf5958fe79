//! The thresholds each resource breaks at, from the policy's plan.

use crate::plan::{MaxConnections, Measure, Plan};

/// How the app tier is sized, so its usage converts to replicas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AppSizing {
    /// CPU utilization target, percent of the request.
    Cpu { target_percent: f64 },
    /// Requests in flight per replica.
    Concurrency { target_per_replica: f64 },
}

impl AppSizing {
    /// One replica's share of usage at target, in `Reading::app`'s unit.
    pub fn per_replica(self) -> f64 {
        match self {
            AppSizing::Cpu { target_percent } => target_percent / 100.0,
            AppSizing::Concurrency { target_per_replica } => target_per_replica,
        }
    }

    pub fn describe(self) -> String {
        match self {
            AppSizing::Cpu { target_percent } => format!("{target_percent:.0}% CPU"),
            AppSizing::Concurrency { target_per_replica } => {
                format!("{target_per_replica} requests in flight each")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnectionLimit {
    pub pool_per_replica: f64,
    pub max_connections: f64,
    /// Share of max_connections that counts as full (1 - the budget's reserve).
    pub act: f64,
}

impl ConnectionLimit {
    /// Replicas whose pools fill the usable share of max_connections.
    pub fn replicas(&self) -> f64 {
        (self.act * self.max_connections / self.pool_per_replica).floor()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostLimit {
    pub per_replica_hour: f64,
    pub max_hourly: f64,
}

impl CostLimit {
    /// Replicas the hourly ceiling pays for.
    pub fn replicas(&self) -> f64 {
        (self.max_hourly / self.per_replica_hour).floor()
    }
}

/// Everything the policy says about where each resource stops.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Limits {
    pub max_replicas: i32,
    pub app: Option<AppSizing>,
    pub database_cpu_act: Option<f64>,
    pub connections: Option<ConnectionLimit>,
    pub cost: Option<CostLimit>,
    /// A queue worker's jobs per second per replica (`queue.ratePerReplica`).
    pub worker_rate: Option<f64>,
    /// The throttled share at which a CPU signal counts its pods saturated.
    pub throttled_saturated: Option<f64>,
}

impl Limits {
    /// Whether the policy names anything that could break: a sizing signal, the database's
    /// CPU or a worker's rate.
    pub fn is_empty(&self) -> bool {
        self.app.is_none() && self.database_cpu_act.is_none() && self.worker_rate.is_none()
    }

    /// `max_connections`: the budget's reading, when the policy reads it from a query.
    pub fn from_plan(plan: &Plan, max_connections: Option<f64>) -> Limits {
        let app = plan.signals.iter().find_map(|s| match s.kind {
            "cpu" => Some(AppSizing::Cpu {
                target_percent: s.target,
            }),
            _ => None,
        });
        let app = app.or_else(|| {
            plan.signals.iter().find_map(|s| {
                (s.kind == "concurrency").then_some(AppSizing::Concurrency {
                    target_per_replica: s.target,
                })
            })
        });
        let is_arrivals = |key: &str| {
            plan.queries()
                .iter()
                .any(|q| q.key == key && matches!(q.measure, Measure::ArrivalRate(_)))
        };
        let worker_rate = plan
            .signals
            .iter()
            .find(|s| is_arrivals(&s.key))
            .map(|s| s.target);
        let guardrails = plan.guardrails.as_ref();
        let connections = guardrails.and_then(|g| g.budget.as_ref()).and_then(|b| {
            let max = match &b.max_connections {
                MaxConnections::Fixed(m) => Some(*m),
                MaxConnections::Query(_) => max_connections,
            }?;
            Some(ConnectionLimit {
                pool_per_replica: f64::from(b.pool_size),
                max_connections: max,
                act: 1.0 - b.reserve,
            })
        });
        let cost = guardrails.and_then(|g| g.cost).and_then(|c| {
            c.max_hourly.map(|max_hourly| CostLimit {
                per_replica_hour: c.per_replica_hour,
                max_hourly,
            })
        });
        Limits {
            max_replicas: plan.max_replicas,
            app,
            database_cpu_act: plan.indicators.database_cpu.as_ref().map(|d| d.act),
            connections,
            cost,
            worker_rate,
            throttled_saturated: plan
                .signals
                .iter()
                .find_map(|s| s.saturation.as_ref().map(|p| p.throttled)),
        }
    }
}
