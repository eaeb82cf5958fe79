//! Every reading an evaluation needs, each with a stable key and the spec field it comes
//! from. The operator renders them to PromQL, the simulator answers them from its model.

use std::collections::BTreeMap;

use crate::api::PromDuration;

/// What a query measures. Templated kinds are rendered (and scoped) by the operator; the
/// others carry the user's PromQL.
#[derive(Clone, Debug, PartialEq)]
pub enum Measure {
    Latency {
        metric: String,
        selector: BTreeMap<String, String>,
        quantile: f64,
        window: PromDuration,
    },
    /// Percent of the CPU requested by the target's pods.
    CpuUtilization {
        window: PromDuration,
    },
    /// Share of the target's pods' CFS periods that were throttled (0-1).
    CpuThrottled {
        window: PromDuration,
    },
    /// Share of time some task of a target's pod waited for CPU (PSI), mean over its pods.
    CpuPressure {
        window: PromDuration,
    },
    QueueBacklog(String),
    ArrivalRate(String),
    Custom(String),
    DatabaseCpu(String),
    /// Fraction of `window` that `query` spent above `act`.
    DatabaseCpuOverAct {
        query: String,
        act: f64,
        window: PromDuration,
    },
    SlowQuery(String),
    ErrorRate(String),
    Connections(String),
    PoolWait(String),
    QueueAge(String),
    RequestRate(String),
    MaxConnections(String),
    /// Requests in flight (Little's law): `rate(<metric>_sum)` of a latency histogram.
    Concurrency {
        metric: String,
        selector: BTreeMap<String, String>,
        window: PromDuration,
    },
}

impl Measure {
    /// The same measure over another window (templated kinds only; the others keep theirs).
    pub fn over(&self, window: PromDuration) -> Measure {
        match self {
            Measure::Latency {
                metric,
                selector,
                quantile,
                ..
            } => Measure::Latency {
                metric: metric.clone(),
                selector: selector.clone(),
                quantile: *quantile,
                window,
            },
            Measure::CpuUtilization { .. } => Measure::CpuUtilization { window },
            Measure::Concurrency {
                metric, selector, ..
            } => Measure::Concurrency {
                metric: metric.clone(),
                selector: selector.clone(),
                window,
            },
            other => other.clone(),
        }
    }

    /// A metrics label for errors by kind (bounded).
    pub fn kind(&self) -> &'static str {
        match self {
            Measure::Latency { .. } => "latency",
            Measure::CpuUtilization { .. }
            | Measure::CpuThrottled { .. }
            | Measure::CpuPressure { .. } => "cpu",
            Measure::Concurrency { .. } => "concurrency",
            Measure::QueueBacklog(_) | Measure::ArrivalRate(_) => "queue",
            Measure::Custom(_) => "custom",
            _ => "indicator",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Instant,
    Range {
        span_seconds: f64,
        step_seconds: f64,
    },
}

impl Shape {
    /// A range over `span`, with about `RANGE_POINTS` points and never under a second apart.
    pub fn range(span: PromDuration) -> Shape {
        let span_seconds = span.as_secs_f64();
        Shape::Range {
            span_seconds,
            step_seconds: (span_seconds / super::defaults::RANGE_POINTS).max(1.0),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// Stable within a policy: `p95`, `p95@short`, `backlog-arrivals`, `databaseCpu`,
    /// `databaseCpu/regularly`, `forecast/cpu`, `creepingLatency/p95`, ...
    pub key: String,
    /// The spec field it comes from, for error messages.
    pub field: String,
    pub measure: Measure,
    pub shape: Shape,
}
