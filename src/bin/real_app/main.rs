//! A small real web app for the real node, its queue worker, and the load that plays against it.
//!
//! `serve`: every request to `/` does a fixed amount of real CPU work (so a CPU limit
//! throttles it and requests queue for the CPU), optionally waits on a simulated dependency,
//! runs real SQL through a pool (`--database-url`), and publishes a job (`--redis-url`). It is
//! counted in a real latency histogram (`http_request_duration_seconds`), `http_requests_total`
//! by code and the requests in flight, with the database client's own series, on `/metrics`.
//!
//! `work`: a queue worker: takes the jobs off the Redis list and does real CPU work for each.
//!
//! `load`: an open-loop load generator: requests at a fixed rate per phase, whatever the app
//! answers, so a slow app builds a queue as real users would. Prints one JSON line per phase.

#![forbid(unsafe_code)]

mod db;
mod load;
mod metrics;
mod queue;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Router, routing::get};
use clap::{Parser, Subcommand};

use metrics::Metrics;

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
        #[command(flatten)]
        data: DataArgs,
    },
    /// Take jobs off the queue and do `--work` rounds of CPU for each, one at a time.
    Work {
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: String,
        #[arg(long)]
        redis_url: String,
        #[arg(long, default_value = "jobs")]
        queue: String,
        #[arg(long, default_value_t = 20_000_000)]
        work: u64,
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

#[derive(clap::Args)]
struct DataArgs {
    /// PostgreSQL (e.g. postgres://app@pgbouncer:6432/orders): each request reads a row.
    #[arg(long)]
    database_url: Option<String>,
    /// Connections in this replica's pool: the policy's poolSizePerReplica.
    #[arg(long, default_value_t = 10)]
    pool_size: usize,
    /// Rows the expensive query aggregates on each request (0: none); a request's
    /// `?expensive=N` overrides it. The knob that makes the database the bottleneck.
    #[arg(long, default_value_t = 0)]
    expensive_rows: u64,
    /// Redis (e.g. redis://redis:6379): each request pushes a job on `--queue`.
    #[arg(long)]
    redis_url: Option<String>,
    #[arg(long, default_value = "jobs")]
    queue: String,
}

struct App {
    metrics: Metrics,
    work: u64,
    wait: Duration,
    db: Option<db::Db>,
    expensive_rows: u64,
    redis: Option<redis::aio::MultiplexedConnection>,
    queue: String,
    next_id: AtomicU64,
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

async fn root(
    State(app): State<Arc<App>>,
    Query(params): Query<HashMap<String, String>>,
) -> (StatusCode, String) {
    let started = Instant::now();
    app.in_flight(1);
    let (code, body) = answer(&app, &params).await;
    app.in_flight(-1);
    app.metrics.latency.observe(started.elapsed().as_secs_f64());
    app.metrics
        .answered(if code.is_success() { "200" } else { "500" });
    (code, body)
}

async fn answer(app: &App, params: &HashMap<String, String>) -> (StatusCode, String) {
    let id = app.next_id.fetch_add(1, Ordering::Relaxed);
    let rounds = app.work;
    let x = tokio::task::spawn_blocking(move || burn(rounds))
        .await
        .unwrap_or(0);
    if !app.wait.is_zero() {
        tokio::time::sleep(app.wait).await;
    }
    if let Some(db) = &app.db {
        let rows = params
            .get("expensive")
            .and_then(|v| v.parse().ok())
            .unwrap_or(app.expensive_rows);
        if db.request(&app.metrics, id, rows).await.is_err() {
            return (StatusCode::INTERNAL_SERVER_ERROR, "database error\n".into());
        }
    }
    if let Some(redis) = &app.redis
        && !queue::publish(redis, &app.queue, &app.metrics, id).await
    {
        return (StatusCode::INTERNAL_SERVER_ERROR, "queue error\n".into());
    }
    (StatusCode::OK, format!("{x:x}\n"))
}

impl App {
    fn in_flight(&self, by: i64) {
        self.metrics.in_flight.inc_by(by);
    }
}

async fn listen(listen: &str, router: Router) -> Result<(), String> {
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

fn router(metrics: impl Fn() -> String + Clone + Send + Sync + 'static) -> Router<Arc<App>> {
    Router::new()
        .route("/metrics", get(move || async move { metrics() }))
        .route("/healthz", get(|| async { "ok\n" }))
}

async fn serve(listen_on: &str, work: u64, wait_ms: u64, data: &DataArgs) -> Result<(), String> {
    let db = match &data.database_url {
        Some(url) => Some(db::Db::new(url, data.pool_size)?),
        None => None,
    };
    let redis = match &data.redis_url {
        Some(url) => Some(queue::connect(url).await?),
        None => None,
    };
    let app = Arc::new(App {
        metrics: Metrics::new(),
        work,
        wait: Duration::from_millis(wait_ms),
        db,
        expensive_rows: data.expensive_rows,
        redis,
        queue: data.queue.clone(),
        next_id: AtomicU64::new(0),
    });
    let for_metrics = app.clone();
    let router = router(move || for_metrics.metrics.text())
        .route("/", get(root))
        .with_state(app);
    listen(listen_on, router).await
}

async fn work(listen_on: &str, redis_url: &str, queue: &str, rounds: u64) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new());
    let for_metrics = metrics.clone();
    let router = Router::new()
        .route("/metrics", get(move || async move { for_metrics.text() }))
        .route("/healthz", get(|| async { "ok\n" }));
    let server = listen(listen_on, router);
    tokio::select! {
        r = server => r,
        r = queue::work(redis_url, queue, rounds, metrics) => r,
    }
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
                data,
            } => serve(listen, *work, *wait_ms, data).await,
            Command::Work {
                listen,
                redis_url,
                queue,
                work: rounds,
            } => work(listen, redis_url, queue, *rounds).await,
            Command::Load { url, phases } => load::load(url, phases).await,
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
