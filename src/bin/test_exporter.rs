//! A metrics exporter for tests and the demo: serves `/metrics` for Prometheus with values
//! set at run time over HTTP, under the names real exporters use
//! (`http_request_duration_seconds`, cAdvisor's `container_cpu_usage_seconds_total`,
//! kube-state-metrics' `kube_pod_container_resource_requests`, RabbitMQ queue gauges, ...).
//!
//! POST /gauge   {"name", "labels", "value"}
//! POST /counter {"name", "labels", "perSecond"}      the counter grows at that rate
//! POST /latency {"name", "labels", "seconds", "perSecond"}  histogram observations at that latency
//! POST /reset
//! Usage: headroom-test-exporter [LISTEN_ADDR] [--exit-with-stdin]
//! (default 127.0.0.1:0; prints the bound address; with --exit-with-stdin it exits when its
//! standard input closes, so it never outlives the test process that started it)

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get, routing::post};
use serde::Deserialize;

const BUCKETS: [f64; 22] = [
    0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    1.5, 2.0, 3.0, 5.0, 10.0,
];

type Labels = BTreeMap<String, String>;
type Key = (String, String);

struct Counter {
    value: f64,
    per_second: f64,
    at: Instant,
}

struct Histogram {
    buckets: [f64; BUCKETS.len()],
    count: f64,
    sum: f64,
    seconds: f64,
    per_second: f64,
    at: Instant,
}

#[derive(Default)]
struct Series {
    gauges: BTreeMap<Key, f64>,
    counters: BTreeMap<Key, Counter>,
    histograms: BTreeMap<Key, Histogram>,
}

type Shared = Arc<Mutex<Series>>;

fn render_labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(",")
}

fn key(name: &str, labels: &Labels) -> Key {
    (name.to_string(), render_labels(labels))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GaugeReq {
    name: String,
    #[serde(default)]
    labels: Labels,
    value: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CounterReq {
    name: String,
    #[serde(default)]
    labels: Labels,
    per_second: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LatencyReq {
    name: String,
    #[serde(default)]
    labels: Labels,
    seconds: f64,
    #[serde(default = "default_rate")]
    per_second: f64,
}

fn default_rate() -> f64 {
    50.0
}

fn advance(s: &mut Series, now: Instant) {
    for c in s.counters.values_mut() {
        c.value += c.per_second * now.duration_since(c.at).as_secs_f64();
        c.at = now;
    }
    for h in s.histograms.values_mut() {
        let n = h.per_second * now.duration_since(h.at).as_secs_f64();
        h.at = now;
        h.count += n;
        h.sum += n * h.seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if h.seconds <= *le {
                h.buckets[i] += n;
            }
        }
    }
}

type Reply = (StatusCode, String);

fn bad(msg: String) -> Reply {
    (StatusCode::BAD_REQUEST, msg)
}

async fn set_gauge(State(s): State<Shared>, Json(r): Json<GaugeReq>) -> Reply {
    if !valid_name(&r.name) {
        return bad(format!("name: {:?} is not a metric name", r.name));
    }
    if let Ok(mut s) = s.lock() {
        s.gauges.insert(key(&r.name, &r.labels), r.value);
    }
    (StatusCode::OK, "ok".into())
}

async fn set_counter(State(s): State<Shared>, Json(r): Json<CounterReq>) -> Reply {
    if !valid_name(&r.name) || r.per_second < 0.0 {
        return bad("name must be a metric name and perSecond >= 0".into());
    }
    if let Ok(mut s) = s.lock() {
        let now = Instant::now();
        advance(&mut s, now);
        let c = s
            .counters
            .entry(key(&r.name, &r.labels))
            .or_insert(Counter {
                value: 0.0,
                per_second: 0.0,
                at: now,
            });
        c.per_second = r.per_second;
    }
    (StatusCode::OK, "ok".into())
}

async fn set_latency(State(s): State<Shared>, Json(r): Json<LatencyReq>) -> Reply {
    if !valid_name(&r.name) || r.seconds < 0.0 || r.per_second < 0.0 {
        return bad("name must be a metric name, seconds >= 0 and perSecond >= 0".into());
    }
    if let Ok(mut s) = s.lock() {
        let now = Instant::now();
        advance(&mut s, now);
        let h = s
            .histograms
            .entry(key(&r.name, &r.labels))
            .or_insert(Histogram {
                buckets: [0.0; BUCKETS.len()],
                count: 0.0,
                sum: 0.0,
                seconds: 0.0,
                per_second: 0.0,
                at: now,
            });
        h.seconds = r.seconds;
        h.per_second = r.per_second;
    }
    (StatusCode::OK, "ok".into())
}

async fn reset(State(s): State<Shared>) -> Reply {
    if let Ok(mut s) = s.lock() {
        *s = Series::default();
    }
    (StatusCode::OK, "ok".into())
}

fn join(labels: &str, extra: &str) -> String {
    match (labels.is_empty(), extra.is_empty()) {
        (true, _) => format!("{{{extra}}}"),
        (false, true) => format!("{{{labels}}}"),
        (false, false) => format!("{{{labels},{extra}}}"),
    }
}

async fn metrics(State(s): State<Shared>) -> String {
    let mut out = String::new();
    let Ok(mut s) = s.lock() else { return out };
    advance(&mut s, Instant::now());
    for ((name, labels), v) in &s.gauges {
        let _ = writeln!(out, "{name}{} {v}", join(labels, ""));
    }
    for ((name, labels), c) in &s.counters {
        let _ = writeln!(out, "{name}{} {}", join(labels, ""), c.value);
    }
    for ((name, labels), h) in &s.histograms {
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                join(labels, &format!("le=\"{le}\"")),
                h.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            join(labels, "le=\"+Inf\""),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", join(labels, ""), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", join(labels, ""), h.count);
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:0".into());
    if args.iter().any(|a| a == "--exit-with-stdin") {
        tokio::spawn(async {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await;
            std::process::exit(0);
        });
    }
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/gauge", post(set_gauge))
        .route("/counter", post(set_counter))
        .route("/latency", post(set_latency))
        .route("/reset", post(reset))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
