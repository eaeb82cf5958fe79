//! The demo's simulated app: serves the metrics a real web app, its queue and its database
//! would expose, computed each second by Headroom's own app model (`headroom simulate`)
//! from the offered load of a scenario and the Deployments' real ready replicas, read from
//! the API server. Prints its address first, a status line every 10 seconds, then a
//! summary and the path of a plot.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{Router, extract::State, routing::get};
use clap::Parser;
use headroom::simulate::{self, App, LATENCY_BUCKETS, Outcome, Params, Pods, Snapshot};
use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "demo")]
    namespace: String,
    #[arg(long, default_value = "web")]
    web: String,
    #[arg(long, default_value = "worker")]
    worker: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long, default_value = "launch")]
    scenario: String,
    /// A traffic trace to play instead of a scenario, in `headroom simulate --trace`'s CSV
    /// format; played against the model `simulate` uses for it.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Scenario seconds per real second (the 4-hour launch day in 4 minutes at 60).
    #[arg(long, default_value_t = 60)]
    speed: usize,
    /// p95 target used for the summary's SLO count, seconds.
    #[arg(long, default_value_t = 0.3)]
    target: f64,
    #[arg(long, default_value = "target/demo")]
    out: PathBuf,
}

#[derive(Default)]
struct Exposed {
    buckets: [f64; LATENCY_BUCKETS.len()],
    count: f64,
    sum: f64,
    requests: f64,
    errors: f64,
    backlog: f64,
    db_cpu: f64,
}

type Shared = Arc<Mutex<Exposed>>;

fn render(e: &Exposed, ns: &str) -> String {
    let mut s = String::new();
    let web = format!("namespace=\"{ns}\",service=\"web\"");
    for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
        let _ = writeln!(
            s,
            "http_request_duration_seconds_bucket{{{web},le=\"{le}\"}} {}",
            e.buckets[i]
        );
    }
    let _ = writeln!(
        s,
        "http_request_duration_seconds_bucket{{{web},le=\"+Inf\"}} {}",
        e.count
    );
    let _ = writeln!(s, "http_request_duration_seconds_sum{{{web}}} {}", e.sum);
    let _ = writeln!(
        s,
        "http_request_duration_seconds_count{{{web}}} {}",
        e.count
    );
    let _ = writeln!(
        s,
        "http_requests_total{{{web},code=\"200\"}} {}",
        e.requests - e.errors
    );
    let _ = writeln!(s, "http_requests_total{{{web},code=\"503\"}} {}", e.errors);
    let _ = writeln!(
        s,
        "rabbitmq_queue_messages_ready{{namespace=\"{ns}\",queue=\"jobs\"}} {}",
        e.backlog
    );
    let _ = writeln!(
        s,
        "pg_cpu_utilization_ratio{{namespace=\"{ns}\"}} {}",
        e.db_cpu
    );
    s
}

async fn replicas(api: &Api<Deployment>, name: &str) -> (i32, i32) {
    match api.get(name).await {
        Ok(d) => {
            let spec = d.spec.and_then(|s| s.replicas).unwrap_or(0);
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
            (ready, spec)
        }
        Err(_) => (0, 0),
    }
}

/// One second of the model into the exposed series: the latency histogram counts each
/// request in the buckets of its response time, and `_sum` grows by the requests in flight
/// (Little's law), so `rate(…_sum)` is the mean concurrency, as from a real app.
fn record(e: &mut Exposed, s: &Snapshot) {
    for (bucket, share) in e.buckets.iter_mut().zip(s.within) {
        *bucket += s.requests * share;
    }
    e.count += s.requests;
    e.sum += s.in_flight;
    e.requests += s.requests;
    e.errors += s.requests * s.error_rate;
    e.backlog = s.backlog;
    e.db_cpu = s.db_cpu;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("a rustls provider was already installed");
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let trace = match &args.trace {
        Some(p) => simulate::read_trace(p)?,
        None => simulate::scenario(&args.scenario, 1)
            .ok_or_else(|| format!("--scenario: unknown scenario {:?}", args.scenario))?,
    };
    let client = Client::try_default()
        .await
        .map_err(|e| format!("kubeconfig: {e}"))?;
    let deployments: Api<Deployment> = Api::namespaced(client, &args.namespace);
    let shared: Shared = Arc::default();
    let ns = args.namespace.clone();
    let app_router = Router::new()
        .route(
            "/metrics",
            get(move |State(s): State<Shared>| {
                let ns = ns.clone();
                async move { s.lock().map(|e| render(&e, &ns)).unwrap_or_default() }
            }),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("--listen: {e}"))?;
    println!("{}", listener.local_addr().map_err(|e| e.to_string())?);
    tokio::spawn(async move { axum::serve(listener, app_router).await });

    let mut app = App::new(Params::for_scenario(&trace.name), 0, 0);
    let seconds = trace.seconds() / args.speed.max(1);
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let csv_path = args.out.join("timeline.csv");
    let mut csv = String::from(
        "seconds,requests_per_second,web_replicas,web_ready,worker_replicas,p95_seconds,error_rate,backlog,db_cpu\n",
    );
    let mut outcome = Outcome::empty("headroom (live)");
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for now in 0..seconds {
        tick.tick().await;
        let t = (now * args.speed).min(trace.seconds() - 1);
        let (web_ready, web) = replicas(&deployments, &args.web).await;
        let (workers_ready, workers) = replicas(&deployments, &args.worker).await;
        let snap = app.step_with(
            now,
            trace.requests[t],
            trace.jobs[t],
            Pods {
                web_ready,
                workers_ready,
                web,
                workers,
            },
        );
        if let Ok(mut e) = shared.lock() {
            record(&mut e, &snap);
        }
        if snap.p95 > args.target {
            outcome.slo_violation_minutes += 1.0 / 60.0;
        }
        outcome.peak_replicas = outcome.peak_replicas.max(web);
        outcome.replica_minutes += f64::from(web + workers) / 60.0;
        outcome
            .timeline
            .push(simulate::report::point(now, snap.requests, web, snap.p95));
        let _ = writeln!(
            csv,
            "{now},{:.1},{web},{web_ready},{workers},{:.3},{:.4},{:.0},{:.2}",
            snap.requests, snap.p95, snap.error_rate, snap.backlog, snap.db_cpu
        );
        if now % 10 == 0 {
            println!(
                "t={now:>3}s load={:>5.0} req/s web={web:>2} (ready {web_ready:>2}) workers={workers:>2} p95={:>5.0}ms backlog={:>5.0} db-cpu={:>3.0}%",
                snap.requests,
                snap.p95 * 1000.0,
                snap.backlog,
                snap.db_cpu * 100.0
            );
        }
    }
    std::fs::write(&csv_path, csv).map_err(|e| format!("{}: {e}", csv_path.display()))?;
    let svg_path = args.out.join("demo.svg");
    std::fs::write(
        &svg_path,
        simulate::svg(
            &format!("live demo: {}", trace.name),
            std::slice::from_ref(&outcome),
            args.target,
        ),
    )
    .map_err(|e| format!("{}: {e}", svg_path.display()))?;
    println!(
        "summary: peak web replicas {}, seconds with p95 over {:.0}ms: {:.0}, replica-minutes {:.1}",
        outcome.peak_replicas,
        args.target * 1000.0,
        outcome.slo_violation_minutes * 60.0,
        outcome.replica_minutes
    );
    println!(
        "timeline: {}\nplot: {}",
        csv_path.display(),
        svg_path.display()
    );
    Ok(())
}
