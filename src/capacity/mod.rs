//! Traffic headroom: how much more load each resource takes before it reaches its Act
//! threshold, and so which breaks first. Pure: calibration readings and the policy's limits
//! in, an estimate out. It extrapolates a straight line from the load it has seen: a leading
//! indicator, not a guarantee.

pub mod fit;
mod limits;

use fit::{Fit, Point, Unfit, fit};
pub use limits::{AppSizing, Limits};

/// Readings taken at one instant of the calibration window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    /// When, in seconds (any origin).
    pub at: f64,
    /// Requests per second (jobs per second for a queue worker).
    pub load: f64,
    /// The app tier's usage in its sizing signal's unit, summed over replicas: CPU as
    /// utilization × replicas (1.0 = one replica's request), or requests in flight.
    pub app: Option<f64>,
    /// Database CPU, 0..1.
    pub database_cpu: Option<f64>,
    /// The app's throttled share of CFS periods, 0..1 (its pods have a CPU limit).
    pub throttled: Option<f64>,
}

/// What runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// The app tier at maxReplicas, sized at its signal's target.
    App,
    /// Database CPU at its Act threshold (70 % unless the policy says otherwise).
    DatabaseCpu,
    /// The replicas' connection pools at 90 % of max_connections.
    Connections,
    /// The replicas the hourly cost ceiling pays for.
    Cost,
    /// Queue workers at maxReplicas, each at its rate.
    Workers,
    /// The app's pods throttled at their CPU limit now: their usage is capped, so the app's
    /// fit understates what more load would need.
    CpuLimit,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::App => "app",
            Resource::DatabaseCpu => "database-cpu",
            Resource::Connections => "connections",
            Resource::Cost => "cost",
            Resource::Workers => "workers",
            Resource::CpuLimit => "cpu-limit",
        }
    }
}

/// One resource's breaking factor, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceHeadroom {
    pub resource: Resource,
    /// Ok(Some(f)): reaches its threshold at f × today's load. Ok(None): does not grow with
    /// load. Err: the data cannot tell.
    pub factor: Result<Option<f64>, Unfit>,
    /// The fit behind it, when there is one.
    pub fit: Option<Fit>,
    /// What the threshold is, in the resource's own terms.
    pub threshold: String,
}

/// The answer: every resource's factor, smallest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Today's load: the mean of the last readings.
    pub load: f64,
    pub resources: Vec<ResourceHeadroom>,
}

/// The headline: what breaks first and at what factor, or why that cannot be said.
#[derive(Clone, Debug, PartialEq)]
pub enum Headline {
    Breaks {
        factor: f64,
        resource: Resource,
    },
    /// Nothing the policy names grows with load.
    NoLimit,
    Unknown {
        resource: Resource,
        why: Unfit,
    },
    /// No load was seen, or the policy names no resource to estimate.
    NoData(String),
}

impl Headline {
    /// For `kubectl get`: "3.2x database-cpu".
    pub fn short(&self) -> String {
        match self {
            Headline::Breaks { factor, resource } => format!("{factor:.1}x {}", resource.as_str()),
            Headline::NoLimit => "no limit".into(),
            Headline::Unknown { .. } | Headline::NoData(_) => "Unknown".into(),
        }
    }
}

/// Readings averaged for "today's load".
const RECENT: usize = 5;

/// One resource's usage against load, where it was read.
fn points(readings: &[Reading], usage: impl Fn(&Reading) -> Option<f64>) -> Vec<Point> {
    readings
        .iter()
        .filter_map(|r| {
            usage(r).map(|usage| Point {
                at: r.at,
                load: r.load,
                usage,
            })
        })
        .collect()
}

/// Estimates each resource's headroom from `readings` (oldest first).
pub fn estimate(readings: &[Reading], limits: &Limits) -> Estimate {
    let recent = &readings[readings.len().saturating_sub(RECENT)..];
    let load = if recent.is_empty() {
        0.0
    } else {
        recent.iter().map(|r| r.load).sum::<f64>() / recent.len() as f64
    };
    let mut resources = vec![];
    if let Some(sizing) = limits.app {
        let app = fit(&points(readings, |r| r.app));
        let unit = sizing.per_replica();
        let mut add = |resource, replicas: f64, threshold: String| {
            resources.push(ResourceHeadroom {
                resource,
                factor: app.clone().map(|f| f.factor_at(load, replicas * unit)),
                fit: app.as_ref().ok().copied(),
                threshold,
            });
        };
        add(
            Resource::App,
            f64::from(limits.max_replicas),
            format!("{} replicas at {}", limits.max_replicas, sizing.describe()),
        );
        if let Some(c) = limits.connections {
            let replicas = c.replicas();
            add(
                Resource::Connections,
                replicas,
                format!(
                    "{replicas:.0} replicas x {:.0} connections = {:.0}% of {:.0}",
                    c.pool_per_replica,
                    c.act * 100.0,
                    c.max_connections
                ),
            );
        }
        if let Some(c) = limits.cost {
            let replicas = c.replicas();
            add(
                Resource::Cost,
                replicas,
                format!("{replicas:.0} replicas at {}/h", c.max_hourly),
            );
        }
    }
    resources.extend(throttled_now(recent, limits));
    if let Some(act) = limits.database_cpu_act {
        let db = fit(&points(readings, |r| r.database_cpu));
        resources.push(ResourceHeadroom {
            resource: Resource::DatabaseCpu,
            factor: db.clone().map(|f| f.factor_at(load, act)),
            fit: db.ok(),
            threshold: format!("{:.0}% CPU", act * 100.0),
        });
    }
    if let Some(rate) = limits.worker_rate {
        let capacity = rate * f64::from(limits.max_replicas);
        resources.push(ResourceHeadroom {
            resource: Resource::Workers,
            factor: Ok((load > 0.0).then(|| capacity / load)),
            fit: None,
            threshold: format!("{capacity:.0} jobs/s ({} workers)", limits.max_replicas),
        });
    }
    resources.sort_by(|a, b| order(&a.factor).total_cmp(&order(&b.factor)));
    Estimate { load, resources }
}

/// The app's pods saturated at their CPU limit in the recent readings: broken now (1x).
fn throttled_now(recent: &[Reading], limits: &Limits) -> Option<ResourceHeadroom> {
    let threshold = limits.throttled_saturated?;
    let shares: Vec<f64> = recent.iter().filter_map(|r| r.throttled).collect();
    let share = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
    (!shares.is_empty() && share >= threshold).then(|| ResourceHeadroom {
        resource: Resource::CpuLimit,
        factor: Ok(Some(1.0)),
        fit: None,
        threshold: format!(
            "{:.0}% of periods throttled (now {:.0}%)",
            threshold * 100.0,
            share * 100.0
        ),
    })
}

/// Known factors first, smallest first; then "does not grow"; then unknown.
fn order(f: &Result<Option<f64>, Unfit>) -> f64 {
    match f {
        Ok(Some(x)) => *x,
        Ok(None) => f64::MAX,
        Err(_) => f64::INFINITY,
    }
}

impl Estimate {
    /// What breaks first. Unknown when any resource cannot be estimated: it might break
    /// before the ones that can.
    pub fn headline(&self) -> Headline {
        if self.load <= 0.0 {
            return Headline::NoData("no load seen over the calibration window".into());
        }
        if let Some(ResourceHeadroom {
            resource,
            factor: Err(why),
            ..
        }) = self.resources.iter().find(|r| r.factor.is_err())
        {
            return Headline::Unknown {
                resource: *resource,
                why: why.clone(),
            };
        }
        match self.resources.first() {
            None => Headline::NoData("the policy names no resource to estimate".into()),
            Some(ResourceHeadroom {
                factor: Ok(Some(f)),
                resource,
                ..
            }) => Headline::Breaks {
                factor: *f,
                resource: *resource,
            },
            Some(_) => Headline::NoLimit,
        }
    }
}

#[cfg(test)]
mod tests;
