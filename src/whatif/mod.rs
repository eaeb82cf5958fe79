//! `headroom whatif`: the traffic headroom estimate offline, against a Prometheus. It reads
//! the policy's own series over `--since`, fits how each resource grows with load, and prints
//! what breaks first and at what factor, and, for `--traffic`, what the policy would do.

mod report;

use std::path::PathBuf;
use std::time::Duration;

use crate::calibration::{Calibration, calibrate, pods_of};
use crate::metrics::Prometheus;
use crate::simulate::parse_policy;

/// The command line.
#[derive(Clone, Debug)]
pub struct Options {
    pub prometheus: String,
    pub policy: PathBuf,
    /// Default: the manifest's metadata.namespace, else `default`.
    pub namespace: Option<String>,
    /// Default: the policy's calibration window.
    pub since: Option<Duration>,
    /// A regex of the target's pod names, for its CPU (default: how the target's kind names
    /// its pods, e.g. `<name>-<hash>-<suffix>` for a Deployment).
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
        .unwrap_or_else(|| pods_of(&policy.spec.target_ref));
    let prometheus = Prometheus::new(&o.prometheus, o.timeout, None, Default::default())
        .map_err(|e| format!("--prometheus: {e}"))?;
    let end = jiff::Timestamp::now().as_second();
    let Calibration {
        readings,
        limits,
        estimate,
        load_unit,
        errors,
        span_seconds: span,
    } = calibrate(
        &prometheus,
        &policy.spec,
        &policy.plan,
        &namespace,
        &pods,
        end,
        o.since
            .unwrap_or(policy.plan.calibration_window.as_duration()),
    )
    .await
    .map_err(|e| format!("{path}: {e}"))?;
    if let Some(plot) = &o.plot {
        if let Some(dir) = plot.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(plot, report::svg(&readings, &estimate, &limits))
            .map_err(|e| format!("{}: {e}", plot.display()))?;
    }
    let name = format!("{namespace}/{}", policy.spec.target_ref.name);
    let mut out = report::text(&name, &estimate, &limits, load_unit, readings.len(), span);
    for e in errors {
        out.push_str(&format!("could not read: {e}\n"));
    }
    if let Some(f) = o.traffic {
        out.push_str(&report::at_traffic(f, &estimate, &limits, load_unit));
    }
    if let Some(plot) = &o.plot {
        out.push_str(&format!("plot: {}\n", plot.display()));
    }
    Ok(out)
}
