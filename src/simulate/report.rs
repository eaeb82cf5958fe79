//! Tables, JSON, the benchmark's Markdown, and the SVG plot of a run.

use std::fmt::Write;

use super::Outcome;

pub fn table(scenario: &str, results: &[Outcome]) -> String {
    let mut s = format!("scenario: {scenario}\n");
    let _ = writeln!(
        s,
        "{:<10} {:>8} {:>8} {:>10} {:>6} {:>7} {:>6} {:>9} {:>9}",
        "autoscaler",
        "slo-min",
        "err-min",
        "replica-m",
        "peak",
        "events",
        "flaps",
        "queue-age",
        "conn-min"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<10} {:>8.1} {:>8.1} {:>10.1} {:>6} {:>7} {:>6} {:>8.0}s {:>9.1}",
            r.autoscaler,
            r.slo_violation_minutes,
            r.error_minutes,
            r.replica_minutes,
            r.peak_replicas,
            r.scale_events,
            r.reversals,
            r.max_queue_age_seconds,
            r.connection_overflow_minutes
        );
    }
    s
}

pub fn json(scenario: &str, results: &[Outcome]) -> serde_json::Value {
    serde_json::json!({ "scenario": scenario, "results": results })
}

pub fn markdown_rows(scenario: &str, results: &[Outcome]) -> String {
    let mut s = String::new();
    for r in results {
        let _ = writeln!(
            s,
            "| {scenario} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.0} | {:.1} | {:.2} |",
            r.autoscaler,
            r.slo_violation_minutes,
            r.error_minutes,
            r.replica_minutes,
            r.peak_replicas,
            r.scale_events,
            r.reversals,
            r.max_queue_age_seconds,
            r.connection_overflow_minutes,
            r.cpu_seconds
        );
    }
    s
}

pub const MARKDOWN_HEADER: &str = "| scenario | autoscaler | SLO-violation min | error min | replica-min | peak | scale events | reversals (10 min) | max queue age s | conn-overflow min | CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|\n";

/// A plot sample.
pub fn point(second: usize, requests: f64, replicas: i32, p95: f64) -> super::Point {
    super::Point {
        second,
        requests,
        replicas,
        p95,
    }
}

const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#ff7f0e", "#7f7f7f"];

fn polyline(points: &[(f64, f64)], color: &str, dash: &str) -> String {
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!(
        r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" {dash} points="{}"/>"#,
        pts.join(" ")
    )
}

/// Three stacked panels: offered load, web replicas and p95, one line per autoscaler.
pub fn svg(scenario: &str, results: &[Outcome], latency_target: f64) -> String {
    let (w, h, left, panel, gap) = (900.0, 640.0, 70.0, 170.0, 35.0);
    let span = results
        .iter()
        .flat_map(|r| r.timeline.last())
        .map(|p| p.second)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let x = |s: usize| left + (w - left - 20.0) * s as f64 / span;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="{left}" y="20" font-size="15">headroom simulate: {scenario}</text>"#
    );
    type Metric = Box<dyn Fn(&super::Point) -> f64>;
    let panels: [(&str, Metric); 3] = [
        ("load (req/s)", Box::new(|p| p.requests)),
        ("web replicas", Box::new(|p| f64::from(p.replicas))),
        ("p95 (s)", Box::new(|p| p.p95.min(3.0))),
    ];
    for (i, (label, f)) in panels.iter().enumerate() {
        let top = 40.0 + i as f64 * (panel + gap);
        let max = results
            .iter()
            .flat_map(|r| r.timeline.iter().map(f))
            .fold(1e-9, f64::max)
            * 1.1;
        let y = |v: f64| top + panel - panel * v / max;
        let _ = write!(
            out,
            r##"<rect x="{left}" y="{top}" width="{}" height="{panel}" fill="none" stroke="#ccc"/><text x="5" y="{}">{label}</text><text x="{}" y="{}" text-anchor="end">{max:.1}</text><text x="{}" y="{}" text-anchor="end">0</text>"##,
            w - left - 20.0,
            top + panel / 2.0,
            left - 4.0,
            top + 10.0,
            left - 4.0,
            top + panel
        );
        if i == 2 {
            let t = y(latency_target.min(max));
            let _ = write!(
                out,
                r##"<line x1="{left}" x2="{}" y1="{t}" y2="{t}" stroke="#2ca02c" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#2ca02c">target</text>"##,
                w - 20.0,
                w - 60.0,
                t - 3.0
            );
        }
        for (k, r) in results.iter().enumerate() {
            let pts: Vec<(f64, f64)> = r.timeline.iter().map(|p| (x(p.second), y(f(p)))).collect();
            // Load is the same for every autoscaler: draw it once.
            if i == 0 && k > 0 {
                continue;
            }
            let color = if i == 0 {
                "#333"
            } else {
                COLORS[k % COLORS.len()]
            };
            out.push_str(&polyline(&pts, color, ""));
        }
    }
    for (k, r) in results.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" fill="{}">{}</text>"#,
            left + 110.0 * k as f64,
            h - 8.0,
            COLORS[k % COLORS.len()],
            r.autoscaler
        );
    }
    let duration = if span >= 7200.0 {
        format!("{:.1} h", span / 3600.0)
    } else {
        format!("{:.1} min", span / 60.0)
    };
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="end">{duration}</text></svg>"#,
        w - 20.0,
        h - 8.0
    );
    out
}
