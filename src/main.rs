//! The `headroom` command: the operator, its CRD, and offline decisions.

#![forbid(unsafe_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use headroom::controller::{self, LeaderElection, Settings, Shard};

// One allocator for the glibc build and the static musl image alike: musl's own is slow under
// many threads. At 10,000 policies it also gave 0.23 cores and 319 MiB where glibc's gave
// 0.36 and 352 (scripts/scale-bench.sh).
// `--features system-allocator` leaves it out, so that heap profilers (heaptrack) see each
// allocation.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "headroom",
    version,
    about = "Autoscale Kubernetes workloads on leading indicators from Prometheus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator.
    Run {
        /// Prometheus used by policies that do not name one.
        #[arg(
            long,
            env = "HEADROOM_PROMETHEUS_URL",
            default_value = "http://prometheus-server.monitoring:9090"
        )]
        prometheus_url: String,
        /// Timeout of each Prometheus query.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        query_timeout: Duration,
        /// Default scale-down stabilization window, like the kube-controller-manager flag.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        downscale_stabilization: Duration,
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, env = "HEADROOM_LISTEN", default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// Watch only this namespace (default: all namespaces).
        #[arg(long, env = "HEADROOM_NAMESPACE")]
        namespace: Option<String>,
        /// Run as one of several replicas: only the holder of a Lease scales.
        #[arg(long, env = "HEADROOM_LEADER_ELECTION")]
        leader_election: bool,
        /// Namespace of the Lease (default: the pod's, from POD_NAMESPACE).
        #[arg(long, env = "POD_NAMESPACE", default_value = "headroom-system")]
        lease_namespace: String,
        #[arg(long, default_value = "headroom")]
        lease_name: String,
        /// How long a lease lasts without renewal: how soon a standby replaces a crashed leader.
        #[arg(long, default_value = "15s", value_parser = parse_duration)]
        lease_duration: Duration,
        /// Split policies across this many shards (by namespace); each replica evaluates one
        /// shard, elected through the Lease `<lease-name>-<shard>`.
        #[arg(long, env = "HEADROOM_SHARDS", default_value_t = 1)]
        shards: u32,
        /// This replica's shard, 0..shards.
        #[arg(long, env = "HEADROOM_SHARD", default_value_t = 0)]
        shard: u32,
        /// Send policies' raw PromQL as written, without confining it to their namespace: for
        /// single-tenant clusters only.
        #[arg(long, env = "HEADROOM_ALLOW_CROSS_NAMESPACE_QUERIES")]
        allow_cross_namespace_queries: bool,
        /// A Prometheus a policy may name in spec.prometheus.address, as host or host:port
        /// (repeatable; the --prometheus-url host is always allowed).
        #[arg(
            long = "allowed-prometheus-host",
            env = "HEADROOM_ALLOWED_PROMETHEUS_HOSTS",
            value_delimiter = ','
        )]
        allowed_prometheus_hosts: Vec<String>,
        /// Prometheus' scrape interval: short windows are widened to hold two samples. By
        /// default it is learned from the default Prometheus' targets (the longest active
        /// one), 30s (kube-prometheus-stack's) until then; set it to override.
        #[arg(long, env = "HEADROOM_SCRAPE_INTERVAL", value_parser = parse_duration)]
        scrape_interval: Option<Duration>,
        /// Headroom calibrations started per second across all policies, at most: each reads
        /// three range queries over the policy's calibration window.
        #[arg(long, env = "HEADROOM_CALIBRATIONS_PER_SECOND", default_value_t = 5.0)]
        calibrations_per_second: f64,
        /// Forecast refreshes started per second across all policies, at most: each reads one
        /// range query of a policy's load (spec.predictive), since its last read.
        #[arg(long, env = "HEADROOM_FORECASTS_PER_SECOND", default_value_t = 2.0)]
        forecasts_per_second: f64,
        /// Largest Prometheus response read for one query (a grouped query gets it per
        /// namespace it covers); a larger one is refused, naming this flag.
        #[arg(long, env = "HEADROOM_MAX_RESPONSE_BYTES", default_value = "4MiB", value_parser = headroom::metrics::parse_bytes)]
        max_response_bytes: usize,
        /// Prometheus response bytes held at once across every query (each response's first
        /// 64KiB aside); a response that would go over is refused, naming this flag. Default: a
        /// quarter of the operator's memory limit (its cgroup's), else 256MiB.
        #[arg(long, env = "HEADROOM_MAX_RESPONSE_BYTES_IN_FLIGHT", value_parser = headroom::metrics::parse_bytes)]
        max_response_bytes_in_flight: Option<usize>,
        /// Most series one namespace's answer to one query may hold.
        #[arg(long, env = "HEADROOM_MAX_SERIES", default_value_t = 1000)]
        max_series: usize,
        /// Queries of one namespace in flight at a time, across every Prometheus it names
        /// (its forecast and calibration reads take one more); 4 per slot may wait, more
        /// are refused.
        #[arg(long, env = "HEADROOM_NAMESPACE_QUERIES", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
        namespace_queries: u16,
        /// Longest a policy's raw PromQL may look back (ranges, subqueries, offsets), e.g. 14d.
        #[arg(long, env = "HEADROOM_MAX_QUERY_LOOKBACK", default_value = "14d", value_parser = parse_long_duration)]
        max_query_lookback: Duration,
        /// Finest step of a subquery in a policy's raw PromQL.
        #[arg(long, env = "HEADROOM_MIN_SUBQUERY_STEP", default_value = "1s", value_parser = parse_duration)]
        min_subquery_step: Duration,
        /// Most evaluation steps the subqueries of one raw query may take, nested ones multiplied.
        #[arg(long, env = "HEADROOM_MAX_SUBQUERY_POINTS", default_value_t = 20_000)]
        max_subquery_points: u64,
        /// No policy is evaluated more often than this, whatever its spec.interval says;
        /// status says so where it applies.
        #[arg(long, env = "HEADROOM_MIN_INTERVAL", default_value = "1s", value_parser = parse_duration)]
        min_interval: Duration,
    },
    /// Print the ScalingPolicy CRD as YAML.
    Crd {
        /// Print the docs' field reference (Markdown) instead.
        #[arg(long)]
        reference: bool,
    },
    /// Replay a traffic scenario through Headroom and the HPA, KEDA and a static baseline.
    Simulate {
        /// steady, diurnal, launch, viral, creeping or database-bound.
        #[arg(long, default_value = "launch")]
        scenario: String,
        /// A ScalingPolicy manifest (repeatable); default: deploy/examples/web.yaml and worker.yaml.
        #[arg(long)]
        policy: Vec<std::path::PathBuf>,
        /// Replay a CSV trace (seconds,requests_per_second,jobs_per_second) instead of a scenario.
        #[arg(long)]
        trace: Option<std::path::PathBuf>,
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The calendar time of the scenario's first second (RFC 3339, e.g.
        /// 2026-12-01T08:00:00+01:00); schedule windows apply only with it.
        #[arg(long)]
        start: Option<String>,
        /// Where plots are written.
        #[arg(long, default_value = "target/simulate")]
        out_dir: std::path::PathBuf,
        /// Run every scenario and write the decision-quality report (Markdown) here.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
        /// Run over generated traces of a family instead (flash, viral, surges, launch, storm,
        /// diurnal, organic, or all; seasonal: a week of history, then a day played; bursts:
        /// short recurring bursts after two days of them, bursts-cold: without history; idle)
        /// and print the distribution, also against the HPA at equal replica-minutes.
        #[arg(long, conflicts_with_all = ["trace", "start", "json"])]
        family: Option<String>,
        /// How many generated traces, with --family.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// With --family: replay only the generated trace with this index (as numbered in
        /// the family's table), with its plot.
        #[arg(long, requires = "family")]
        case: Option<usize>,
    },
    /// Make one decision offline and print it: from a JSON document (--input, a file or -
    /// for stdin), or for a policy (--policy, YAML or JSON) from an observation (--observation).
    Decide {
        #[arg(long, default_value = "-", conflicts_with = "policy")]
        input: String,
        /// A ScalingPolicy manifest, as in deploy/examples/.
        #[arg(long, requires = "observation")]
        policy: Option<String>,
        /// Readings by query key, the target's replicas and the memory (JSON; - for stdin).
        #[arg(long, requires = "policy")]
        observation: Option<String>,
    },
    /// How much more traffic before what breaks first: each resource's breaking factor, fitted
    /// on the policy's own series in a Prometheus.
    Whatif {
        #[arg(long, env = "HEADROOM_PROMETHEUS_URL")]
        prometheus: String,
        /// A ScalingPolicy manifest.
        #[arg(long)]
        policy: std::path::PathBuf,
        /// Default: the manifest's metadata.namespace, else default.
        #[arg(long)]
        namespace: Option<String>,
        /// The calibration window: how far back to read (default: the policy's
        /// spec.headroom.calibrationWindow, 3h unless it says otherwise, as the operator reads).
        #[arg(long, value_parser = parse_duration)]
        since: Option<Duration>,
        /// A regex of the target's pod names, for its CPU (default: as the target's kind names
        /// them, e.g. <name>-<hash>-<suffix> for a Deployment).
        #[arg(long)]
        pods: Option<String>,
        /// Play this much of today's traffic through the policy, e.g. 10x.
        #[arg(long, value_parser = parse_factor)]
        traffic: Option<f64>,
        /// Write a plot of each resource's usage against load (SVG).
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
}

fn parse_factor(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix(['x', 'X']).unwrap_or(s);
    match n.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("{s:?}: expected a positive factor such as 10x")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<headroom::api::PromDuration>()
        .map(|d| d.as_duration())
        .map_err(|e| e.to_string())
}

/// A duration that may also be given in days, e.g. 14d.
fn parse_long_duration(s: &str) -> Result<Duration, String> {
    match s.strip_suffix('d').map(str::parse::<u64>) {
        Some(Ok(days)) => Ok(Duration::from_secs(days.saturating_mul(86_400))),
        _ => parse_duration(s),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd { reference: false } => {
            print_or_fail(headroom::api::crd_yaml(), ExitCode::FAILURE)
        }
        Command::Crd { reference: true } => {
            print_or_fail(headroom::api::crd_reference(), ExitCode::FAILURE)
        }
        Command::Decide {
            input,
            policy,
            observation,
        } => match (policy, observation) {
            (Some(p), Some(o)) => decide_policy(&p, &o),
            _ => decide(&input),
        },
        Command::Whatif {
            prometheus,
            policy,
            namespace,
            since,
            pods,
            traffic,
            plot,
        } => {
            let options = headroom::whatif::Options {
                prometheus,
                policy,
                namespace,
                since,
                pods,
                traffic,
                plot,
                timeout: Duration::from_secs(30),
            };
            install_crypto();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let result = match runtime {
                Ok(rt) => rt.block_on(headroom::whatif::command(&options)),
                Err(e) => Err(format!("cannot start the runtime: {e}")),
            };
            print_or_fail(result, ExitCode::from(2))
        }
        Command::Simulate {
            scenario,
            policy,
            trace,
            json,
            seed,
            start,
            out_dir,
            report,
            family,
            count,
            case,
        } => {
            let options = headroom::simulate::Options {
                scenario,
                policies: policy,
                trace,
                json,
                seed,
                start,
                out_dir,
                report,
                family,
                count,
                case,
            };
            print_or_fail(headroom::simulate::command(&options), ExitCode::from(2))
        }
        Command::Run {
            prometheus_url,
            query_timeout,
            downscale_stabilization,
            listen,
            log_format,
            namespace,
            leader_election,
            lease_namespace,
            lease_name,
            lease_duration,
            shards,
            shard,
            allow_cross_namespace_queries,
            allowed_prometheus_hosts,
            scrape_interval,
            calibrations_per_second,
            forecasts_per_second,
            max_response_bytes,
            max_response_bytes_in_flight,
            max_series,
            namespace_queries,
            max_query_lookback,
            min_subquery_step,
            max_subquery_points,
            min_interval,
        } => {
            init_logging(log_format);
            let shard = match (shards, Shard::new(shard, shards)) {
                (1, _) => None,
                (_, Ok(s)) => Some(s),
                (_, Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let lease_name = match shard {
                Some(s) => format!("{lease_name}-{}", s.index),
                None => lease_name,
            };
            let election = leader_election.then(|| LeaderElection {
                namespace: lease_namespace,
                lease_name,
                identity: identity(),
                duration: lease_duration,
            });
            let settings = Settings {
                prometheus_url,
                query_timeout,
                downscale_stabilization_seconds: i32::try_from(downscale_stabilization.as_secs())
                    .unwrap_or(i32::MAX),
                allow_cross_namespace_queries,
                allowed_prometheus_hosts,
                scrape_interval,
                shard,
                calibrations_per_second,
                forecasts_per_second,
                limits: headroom::metrics::Limits {
                    max_response_bytes,
                    max_series,
                    namespace_share: usize::from(namespace_queries),
                    max_lookback: max_query_lookback,
                    min_subquery_step,
                    max_subquery_points,
                },
                min_interval,
                response_bytes_in_flight: max_response_bytes_in_flight
                    .unwrap_or_else(headroom::metrics::default_in_flight_bound),
            };
            match run(settings, listen, namespace, election) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "operator failed");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// A file's text, or stdin's for `-`.
fn read_input(path: &str) -> Result<String, String> {
    let mut text = String::new();
    let read = if path == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(path).map(|t| text = t)
    };
    read.map(|_| text)
        .map_err(|e| format!("error: cannot read {path}: {e}"))
}

fn decide_policy(policy: &str, observation: &str) -> ExitCode {
    print_decision(
        read_input(policy).and_then(|p| Ok((p, read_input(observation)?))),
        |(p, o)| headroom::decide::decide_policy(&p, &o),
    )
}

fn decide(input: &str) -> ExitCode {
    print_decision(read_input(input), |text| {
        headroom::decide::decide_json(&text)
    })
}

/// Reads, decides and prints; unreadable or invalid input exits 2.
fn print_decision<T, O: serde::Serialize>(
    read: Result<T, String>,
    decide: impl FnOnce(T) -> Result<O, headroom::decide::InvalidInput>,
) -> ExitCode {
    let input = match read {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match decide(input) {
        Ok(out) => print_or_fail(
            serde_json::to_string_pretty(&out).map(|json| json + "\n"),
            ExitCode::FAILURE,
        ),
        Err(e) => {
            eprintln!("error: invalid input: {e}");
            ExitCode::from(2)
        }
    }
}

/// Prints a command's output, or its error with `failure`.
fn print_or_fail(result: Result<String, impl std::fmt::Display>, failure: ExitCode) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            failure
        }
    }
}

/// This replica's name in the election: the pod's name, else host and process.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "headroom".into());
        format!("{host}-{}", std::process::id())
    })
}

/// kube and reqwest both use rustls; ring is installed once so the first TLS connection never
/// has to pick between two providers.
fn install_crypto() {
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a rustls crypto provider was already installed");
    }
}

fn run(
    settings: Settings,
    listen: SocketAddr,
    namespace: Option<String>,
    election: Option<LeaderElection>,
) -> headroom::Result<()> {
    install_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = kube::Client::try_default().await?;
        controller::run(client, settings, listen, namespace, election).await
    })
}
