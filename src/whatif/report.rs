//! What `whatif` prints and plots.

use std::fmt::Write;

use crate::capacity::{Estimate, Headline, Limits, Reading, Resource, ResourceHeadroom};

fn factor(r: &ResourceHeadroom) -> String {
    match &r.factor {
        Ok(Some(f)) => format!("{f:.1}x"),
        Ok(None) => "never".into(),
        Err(_) => "Unknown".into(),
    }
}

fn evidence(r: &ResourceHeadroom) -> String {
    if r.resource == Resource::CpuLimit {
        return "throttled now: usage is capped at the limit and understates demand; raise the CPU limit or the request".into();
    }
    match (&r.factor, &r.fit) {
        (Err(why), _) => why.to_string(),
        (_, Some(f)) => {
            // Said only when it moved the cost per unit of load by 5 % over the window.
            let drift = if f.slope.abs() > 0.0 && (f.drift * f.hours / f.slope).abs() > 0.05 {
                format!(
                    ", cost per unit of load {:+.0}%/h",
                    100.0 * f.drift / f.slope
                )
            } else {
                String::new()
            };
            format!(
                "usage = {:.4} + {:.6} x load (R² {:.2}, load varied {:.1}x{drift})",
                f.intercept, f.slope, f.r2, f.load_spread
            )
        }
        (Ok(None), None) => "does not grow with load".into(),
        (Ok(Some(_)), None) => "capacity over today's load".into(),
    }
}

/// The table of resources in the order they break, and the headline.
pub fn text(
    name: &str,
    e: &Estimate,
    _limits: &Limits,
    unit: &str,
    readings: usize,
    span_seconds: u64,
) -> String {
    let mut out = format!(
        "Traffic headroom of {name}: {:.1} h of Prometheus data ({readings} readings), load now {:.1} {unit}\n\n",
        span_seconds as f64 / 3600.0,
        e.load
    );
    let _ = writeln!(
        out,
        "{:<14}{:<11}{:<44}evidence",
        "resource", "breaks at", "threshold"
    );
    for r in &e.resources {
        let _ = writeln!(
            out,
            "{:<14}{:<11}{:<44}{}",
            r.resource.as_str(),
            factor(r),
            r.threshold,
            evidence(r)
        );
    }
    out.push('\n');
    match e.headline() {
        Headline::Breaks { factor, resource } => {
            let _ = writeln!(
                out,
                "First to break: {} at {factor:.1}x today's load ({:.0} {unit}).",
                resource.as_str(),
                factor * e.load
            );
        }
        Headline::NoLimit => out.push_str("Nothing the policy names grows with load.\n"),
        Headline::Unknown { resource, why } => {
            let _ = writeln!(
                out,
                "Unknown: {} cannot be estimated ({why}), and it might break first.",
                resource.as_str()
            );
        }
        Headline::NoData(why) => {
            let _ = writeln!(out, "Unknown: {why}.");
        }
    }
    out
}

fn find(e: &Estimate, r: Resource) -> Option<&ResourceHeadroom> {
    e.resources.iter().find(|x| x.resource == r)
}

/// What the policy would do at `f` × today's load.
pub fn at_traffic(f: f64, e: &Estimate, limits: &Limits, unit: &str) -> String {
    let load = f * e.load;
    let mut out = format!("\nAt {f}x ({load:.0} {unit}):\n");
    let app = find(e, Resource::App).and_then(|r| r.fit);
    match (app, limits.app) {
        (Some(fit), Some(sizing)) => {
            let wanted = (fit.at(load) / sizing.per_replica()).ceil().max(1.0);
            let mut caps = vec![(f64::from(limits.max_replicas), "maxReplicas".to_string())];
            if let Some(c) = limits.connections {
                caps.push((c.replicas(), "the connection budget".into()));
            }
            if let Some(c) = limits.cost {
                caps.push((c.replicas(), "the cost ceiling".into()));
            }
            let (cap, by) = caps
                .into_iter()
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .unwrap_or((f64::INFINITY, String::new()));
            let _ = write!(
                out,
                "  app: {wanted:.0} replicas at {} wanted",
                sizing.describe()
            );
            if wanted > cap {
                let _ = writeln!(out, "; {by} stops it at {cap:.0}");
            } else {
                out.push('\n');
            }
            let replicas = wanted.min(cap);
            if let Some(c) = limits.cost {
                let _ = writeln!(
                    out,
                    "  cost: {:.2}/h for {replicas:.0} replicas",
                    replicas * c.per_replica_hour
                );
            }
            if let Some(c) = limits.connections {
                let _ = writeln!(
                    out,
                    "  connections: {:.0} of {:.0} ({:.0}% usable)",
                    replicas * c.pool_per_replica,
                    c.max_connections,
                    c.act * 100.0
                );
            }
        }
        _ => out.push_str("  app: no fit of its usage, so no replica count\n"),
    }
    if let (Some(fit), Some(act)) = (
        find(e, Resource::DatabaseCpu).and_then(|r| r.fit),
        limits.database_cpu_act,
    ) {
        let cpu = fit.at(load);
        let _ = write!(
            out,
            "  database CPU: {:.0}% (Act at {:.0}%)",
            cpu * 100.0,
            act * 100.0
        );
        if cpu >= act {
            out.push_str(": past it, so the database hold stops the app tier from growing\n");
        } else {
            out.push('\n');
        }
    }
    if let Some(rate) = limits.worker_rate {
        let wanted = (load / rate).ceil();
        let _ = writeln!(
            out,
            "  workers: {wanted:.0} wanted at {rate} jobs/s each (maxReplicas {})",
            limits.max_replicas
        );
    }
    out
}

/// One panel per fitted resource: readings, the fitted line out to where it breaks, and its
/// threshold.
pub fn svg(readings: &[Reading], e: &Estimate, limits: &Limits) -> String {
    let fitted: Vec<&ResourceHeadroom> = e.resources.iter().filter(|r| r.fit.is_some()).collect();
    let (w, panel, gap, left) = (760.0, 220.0, 40.0, 70.0);
    let h = 40.0 + fitted.len().max(1) as f64 * (panel + gap);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{left}" y="20" font-size="15">headroom whatif: usage against load</text>"#
    );
    for (i, r) in fitted.iter().enumerate() {
        let Some(fit) = r.fit else { continue };
        let usage: fn(&Reading) -> Option<f64> = match r.resource {
            Resource::DatabaseCpu => |x| x.database_cpu,
            _ => |x| x.app,
        };
        let limit = match r.resource {
            Resource::DatabaseCpu => limits.database_cpu_act,
            _ => r.factor.clone().ok().flatten().map(|f| fit.at(f * e.load)),
        };
        let break_at = r.factor.clone().ok().flatten().unwrap_or(1.0).max(1.0) * e.load;
        let max_x = readings.iter().map(|x| x.load).fold(break_at, f64::max) * 1.05;
        let max_y = readings
            .iter()
            .filter_map(usage)
            .chain(limit)
            .chain([fit.at(max_x)])
            .fold(1e-9, f64::max)
            * 1.1;
        let top = 40.0 + i as f64 * (panel + gap);
        let x = |v: f64| left + (w - left - 20.0) * v / max_x;
        let y = |v: f64| top + panel - panel * v.max(0.0) / max_y;
        let _ = write!(
            out,
            r##"<rect x="{left}" y="{top}" width="{}" height="{panel}" fill="none" stroke="#ccc"/><text x="5" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{max_y:.2}</text><text x="{}" y="{}">load {max_x:.0}</text>"##,
            w - left - 20.0,
            top + 12.0,
            r.resource.as_str(),
            left - 4.0,
            top + 10.0,
            w - 120.0,
            top + panel + 14.0
        );
        for p in readings {
            if let Some(u) = usage(p) {
                let _ = write!(
                    out,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#4477aa"/>"##,
                    x(p.load),
                    y(u)
                );
            }
        }
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#228833" stroke-width="2"/>"##,
            x(0.0),
            y(fit.at(0.0)),
            x(max_x),
            y(fit.at(max_x))
        );
        if let Some(l) = limit {
            let _ = write!(
                out,
                r##"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#cc3311" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" fill="#cc3311">{} at {}</text>"##,
                y(l),
                w - 20.0,
                y(l),
                left + 4.0,
                y(l) - 4.0,
                r.threshold,
                factor(r)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}
