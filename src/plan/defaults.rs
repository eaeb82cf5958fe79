//! Every default a policy leaves out, in one place: the field guidance's numbers.

pub const TOLERANCE: f64 = 0.1;
/// With guardrails on, a scale-down sizes the fleet for 80 % of target: after it, load has
/// to rise by over a third (0.8 to 1.1 of target) before it scales up again, so noise and
/// short bumps do not reverse it.
pub const SCALE_DOWN_MARGIN: f64 = 0.2;
/// The HPA controller's `--horizontal-pod-autoscaler-downscale-stabilization` default.
pub const DOWNSCALE_STABILIZATION_SECONDS: i32 = 300;

/// Panic: a short window over twice the target, the short window a tenth of the stable one.
pub const PANIC_THRESHOLD: f64 = 2.0;
pub const PANIC_STABLE_WINDOW_SECONDS: u64 = 60;
pub const PANIC_SHORT_WINDOW_FRACTION: u32 = 10;
/// The shortest window CPU is read over: the kubelet's cAdvisor refreshes a container's usage
/// every 10-15 s and stamps its samples, so a shorter rate() often holds one sample and reads
/// nothing, whatever the scrape interval (found on the real node: a 6 s short window never
/// read).
pub const CPU_MIN_WINDOW_SECONDS: u64 = 30;

/// CPU saturation. On the real node the example app at 51 % of its 100m request was
/// throttled in 17-21 % of its CFS periods with a p95 of 0.9 s (two requests at once spend a
/// period's quota in a few milliseconds), and in none at calm; kube-prometheus'
/// CPUThrottlingHigh, informative only, waits for 25 %. Half of it holds the fleet.
pub const THROTTLED_SATURATED: f64 = 0.1;
/// Some task waiting for CPU a fifth of the time (PSI "some").
pub const PRESSURE_SATURATED: f64 = 0.2;

/// Forecast: project one start-up time plus the metrics' lag ahead, over a 5 minute trend.
pub const FORECAST_HORIZON_SECONDS: u64 = 90;
pub const FORECAST_WINDOW_SECONDS: u64 = 300;
/// A trend counts as real, not noise, from this t statistic on.
pub const TREND_MIN_T: f64 = 3.0;
/// Request-rate change over the window still called flat load.
pub const FLAT_LOAD: f64 = 0.1;
/// Range queries fetch about this many points over their window.
pub const RANGE_POINTS: f64 = 30.0;

pub const CREEPING_WINDOW_SECONDS: u64 = 1800;
pub const CREEPING_STARTUP_SECONDS: u64 = 60;

/// Database CPU: Watch from 60 %, Act over 70 % for half of a 30 minute window.
pub const DATABASE_CPU_WATCH: f64 = 0.6;
pub const DATABASE_CPU_ACT: f64 = 0.7;
pub const REGULARLY_FRACTION: f64 = 0.5;
pub const REGULARLY_WINDOW_SECONDS: u64 = 1800;
/// Common queries over 500 ms hold the app tier.
pub const SLOW_QUERY_WATCH: f64 = 0.1;
pub const SLOW_QUERY_ACT: f64 = 0.5;
/// Seconds a client waits for a pooled database connection. PgBouncer's own guidance: a
/// growing `maxwait` means the pool does not serve requests fast enough. A tenth of a second
/// is a fifth of a healthy p95 (500 ms) spent before the first query; a second is what users
/// feel.
pub const POOL_WAIT_WATCH: f64 = 0.1;
pub const POOL_WAIT_ACT: f64 = 1.0;

pub const BUDGET_RESERVE: f64 = 0.1;

pub const SCHEDULE_LEAD_SECONDS: u64 = 300;
pub const SCHEDULE_RELEASE_SECONDS: u64 = 600;

/// History the headroom estimate fits (a few hours of a normal day).
pub const CALIBRATION_WINDOW_SECONDS: u64 = 3 * 3600;
/// How long a target with minReplicas 0 must be idle before it goes to zero (KEDA's
/// cooldownPeriod).
pub const IDLE_COOLDOWN_SECONDS: u64 = 300;
