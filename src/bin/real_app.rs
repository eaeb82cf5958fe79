//! A small real web app for the real node, and the load that plays against it.
//!
//! `serve`: every request to `/` does a fixed amount of real CPU work (so a CPU limit
//! throttles it and requests queue for the CPU), optionally waits on a simulated dependency,
//! and is counted in a real latency histogram (`http_request_duration_seconds`) and the
//! requests in flight (`http_requests_in_flight`), served on `/metrics`.
//!
//! `load`: an open-loop load generator: requests at a fixed rate per phase, whatever the app
//! answers, so a slow app builds a queue as real users would. Prints one JSON line per phase.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::{Router, extract::State, routing::get};
use clap::{Parser, Subcommand};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app.
    Serve {
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        /// CPU work per request, in rounds of a hash (about 5 ns each in a release build on
        /// this machine: the default is about 20 ms of CPU).
        #[arg(long, default_value_t = 4_000_000)]
        work: u64,
        /// Time each request waits on a simulated dependency, milliseconds.
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
    },
    /// Play phases of `RATE:SECONDS` (requests per second for that long) against `url`.
    Load {
        #[arg(long)]
        url: String,
        /// e.g. 5:60 20:120
        #[arg(required = true)]
        phases: Vec<String>,
    },
}

struct App {
    registry: Registry,
    latency: Histogram,
    in_flight: Gauge,
    work: u64,
    wait: Duration,
}

/// Real CPU work: `rounds` of a multiply-xorshift hash the optimizer cannot skip.
fn burn(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_add(std::hint::black_box(i));
    }
    x
}

async fn root(State(app): State<Arc<App>>) -> String {
    let started = Instant::now();
    app.in_flight.inc();
    let rounds = app.work;
    let x = tokio::task::spawn_blocking(move || burn(rounds))
        .await
        .unwrap_or(0);
    if !app.wait.is_zero() {
        tokio::time::sleep(app.wait).await;
    }
    app.in_flight.dec();
    app.latency.observe(started.elapsed().as_secs_f64());
    format!("{x:x}\n")
}

async fn metrics(State(app): State<Arc<App>>) -> String {
    let mut out = String::new();
    if encode(&mut out, &app.registry).is_err() {
        out.clear();
    }
    out
}

async fn serve(listen: &str, work: u64, wait_ms: u64) -> Result<(), String> {
    let mut registry = Registry::default();
    let latency = Histogram::new(
        headroom::simulate::LATENCY_BUCKETS
            .iter()
            .copied()
            .filter(|b| b.is_finite()),
    );
    let in_flight = Gauge::default();
    registry.register(
        "http_request_duration_seconds",
        "Time to answer a request",
        latency.clone(),
    );
    registry.register(
        "http_requests_in_flight",
        "Requests being answered",
        in_flight.clone(),
    );
    let app = Arc::new(App {
        registry,
        latency,
        in_flight,
        work,
        wait: Duration::from_millis(wait_ms),
    });
    let router = Router::new()
        .route("/", get(root))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("--listen {listen}: {e}"))?;
    println!("serving on {listen}");
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| e.to_string())
}

fn phase(s: &str) -> Result<(f64, f64), String> {
    let (rate, secs) = s
        .split_once(':')
        .ok_or_else(|| format!("phase {s:?}: expected RATE:SECONDS, e.g. 20:120"))?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("phase {s:?}: rate must be a number"))?;
    let secs: f64 = secs
        .parse()
        .map_err(|_| format!("phase {s:?}: seconds must be a number"))?;
    if !(rate > 0.0 && rate <= 10_000.0 && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "phase {s:?}: rate must be in (0, 10000], seconds in (0, 86400]"
        ));
    }
    Ok((rate, secs))
}

async fn load(url: &str, phases: &[String]) -> Result<(), String> {
    let phases: Vec<(f64, f64)> = phases.iter().map(|p| phase(p)).collect::<Result<_, _>>()?;
    // A connection per request, as many separate users open: a Service balances connections,
    // so a few kept-alive ones would pin the load to the pods that were there first.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    for (i, (rate, secs)) in phases.into_iter().enumerate() {
        let started = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / rate);
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = started;
        while started.elapsed().as_secs_f64() < secs {
            tokio::time::sleep_until(next.into()).await;
            next += gap;
            let (client, url) = (client.clone(), url.to_string());
            tasks.spawn(async move {
                let t = Instant::now();
                let ok = client
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                (ok, t.elapsed().as_secs_f64())
            });
        }
        let mut times = vec![];
        let mut failed = 0usize;
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok((true, t)) => times.push(t),
                _ => failed += 1,
            }
        }
        times.sort_by(f64::total_cmp);
        let p95 = times
            .get(((times.len() as f64 * 0.95) as usize).min(times.len().saturating_sub(1)))
            .copied();
        println!(
            "{}",
            serde_json::json!({"phase": i, "rate": rate, "seconds": secs, "ok": times.len(),
                               "failed": failed, "p95Seconds": p95})
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    // The one crypto provider the crate links (kube's); plain HTTP needs none, reqwest asks.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match &args.command {
            Command::Serve {
                listen,
                work,
                wait_ms,
            } => serve(listen, *work, *wait_ms).await,
            Command::Load { url, phases } => load(url, phases).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("headroom-real-app: {e}");
            ExitCode::from(2)
        }
    }
}
