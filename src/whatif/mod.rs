//! `headroom whatif`: the traffic headroom estimate offline, against a Prometheus. It reads
//! the policy's own series over `--since`, fits how each resource grows with load, and prints
//! what breaks first and at what factor, and, for `--traffic`, what the policy would do.

mod queries;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use crate::capacity::{Limits, Reading, estimate};
use crate::metrics::Prometheus;
use crate::simulate::parse_policy;

/// The command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub prometheus: String,
    pub policy: PathBuf,
    /// Default: the manifest's metadata.namespace, else `default`.
    pub namespace: Option<String>,
    pub since: Duration,
    /// A regex of the target's pod names, for its CPU (default `<target name>-.*`).
    pub pods: Option<String>,
    /// A factor on today's load to play through the policy.
    pub traffic: Option<f64>,
    /// Where the plot is written.
    pub plot: Option<PathBuf>,
    pub timeout: Duration,
}

fn namespace_of(yaml: &str) -> Option<String> {
    let v: serde_yaml::Value = serde_yaml::from_str(yaml).ok()?;
    v.get("metadata")?
        .get("namespace")?
        .as_str()
        .map(String::from)
}

/// Readings per calibration: enough points for the fit, few enough for one range query.
const POINTS: f64 = 240.0;

/// Runs the command: the printout, or an error naming what is wrong.
pub async fn command(o: &Options) -> Result<String, String> {
    let path = o.policy.display().to_string();
    let yaml = std::fs::read_to_string(&o.policy).map_err(|e| format!("--policy {path}: {e}"))?;
    let policy = parse_policy(&yaml, &path)?;
    let namespace = o
        .namespace
        .clone()
        .or_else(|| namespace_of(&yaml))
        .unwrap_or_else(|| "default".into());
    let pods = o
        .pods
        .clone()
        .unwrap_or_else(|| format!("{}-.*", policy.spec.target_ref.name));
    let prometheus = Prometheus::new(&o.prometheus, o.timeout, None)
        .map_err(|e| format!("--prometheus: {e}"))?;
    let mut limits = Limits::from_plan(&policy.plan, None);
    let series = queries::series(&policy.spec, &policy.plan, limits.app, &namespace, &pods)
        .map_err(|e| format!("{path}: {e}"))?;
    if let Some(q) = &series.max_connections {
        let max = prometheus
            .scalar(q)
            .await
            .map_err(|e| format!("max connections ({q}): {e}"))?;
        limits = Limits::from_plan(&policy.plan, Some(max));
    }

    let end = jiff::Timestamp::now().as_second();
    let span = o.since.as_secs().max(60);
    let start = end - i64::try_from(span).unwrap_or(i64::MAX);
    let step = (span as f64 / POINTS).max(1.0);
    let read = |q: String| {
        let p = prometheus.clone();
        async move {
            p.range_between(&q, start, end, step)
                .await
                .map_err(|e| format!("{q}: {e}"))
        }
    };
    let load = read(series.load.clone()).await?;
    // A series that cannot be read leaves its resource Unknown, with the reason printed.
    let app = match &series.app {
        Some(q) => Some(read(q.clone()).await),
        None => None,
    };
    let database = match &series.database_cpu {
        Some(q) => Some(read(q.clone()).await),
        None => None,
    };
    let at = |s: &Option<Result<Vec<(f64, f64)>, String>>, t: f64| {
        s.as_ref()
            .and_then(|r| r.as_ref().ok())
            .and_then(|v| v.iter().find(|(x, _)| (x - t).abs() < step / 2.0))
            .map(|(_, v)| *v)
    };
    let readings: Vec<Reading> = load
        .iter()
        .map(|&(t, l)| Reading {
            at: t,
            load: l,
            app: at(&app, t),
            database_cpu: at(&database, t),
        })
        .collect();
    let estimate = estimate(&readings, &limits);
    let errors: Vec<String> = [app, database]
        .into_iter()
        .flatten()
        .filter_map(|r| r.err())
        .collect();
    if let Some(plot) = &o.plot {
        if let Some(dir) = plot.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(plot, report::svg(&readings, &estimate, &limits))
            .map_err(|e| format!("{}: {e}", plot.display()))?;
    }
    let name = format!("{namespace}/{}", policy.spec.target_ref.name);
    let mut out = report::text(
        &name,
        &estimate,
        &limits,
        series.load_unit,
        readings.len(),
        span,
    );
    for e in errors {
        out.push_str(&format!("could not read: {e}\n"));
    }
    if let Some(f) = o.traffic {
        out.push_str(&report::at_traffic(f, &estimate, &limits, series.load_unit));
    }
    if let Some(plot) = &o.plot {
        out.push_str(&format!("plot: {}\n", plot.display()));
    }
    Ok(out)
}
