//! Everything a spec must satisfy before Headroom acts on it, including what the CRD schema
//! cannot express. The one validator of the operator, `simulate --policy` and `decide`.

use super::FieldError;
use crate::api::{
    Behavior, ConcurrencySignal, ConnectionBudget, CreepingLatencyRule, Guardrails, Indicators,
    LatencySignal, PromDuration, ScalingPolicySpec, ScalingRules, ScheduledWindow, Signal,
    SignalKind, TargetRef, Thresholds,
};

/// Most replicas a policy may name (the CRD's bound too).
pub const MAX_REPLICAS: i32 = 1_000_000;
/// Longest window or interval Headroom accepts for a reading (a day).
pub const MAX_WINDOW_SECONDS: u64 = 86_400;
/// Longest evaluation interval (an hour).
pub const MAX_INTERVAL_SECONDS: u64 = 3_600;
/// Longest calibration window for the headroom estimate (7 days).
pub const MAX_CALIBRATION_SECONDS: u64 = 7 * 86_400;
/// Longest schedule lead, release or duration (31 days).
pub const MAX_SCHEDULE_SECONDS: u64 = 31 * 86_400;

struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    fn positive(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.fail(field, format!("must be a number greater than 0, got {v}"));
        }
    }

    fn non_negative(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v >= 0.0) {
            self.fail(field, format!("must be a number >= 0, got {v}"));
        }
    }

    fn fraction(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            self.fail(field, format!("must be between 0 and 1, got {v}"));
        }
    }

    fn duration(&mut self, field: &str, d: PromDuration, min_ms: u128, max_s: u64) {
        let ms = d.as_duration().as_millis();
        if ms < min_ms || d.as_duration().as_secs() > max_s {
            self.fail(
                field,
                format!(
                    "must be between {} and {}, got {d}",
                    PromDuration::from_millis(u64::try_from(min_ms).unwrap_or(0)),
                    PromDuration::from_secs(max_s)
                ),
            );
        }
    }

    fn window(&mut self, field: &str, d: Option<PromDuration>) {
        if let Some(d) = d {
            self.duration(field, d, 1000, MAX_WINDOW_SECONDS);
        }
    }

    fn thresholds(&mut self, field: &str, t: &Thresholds) {
        for (name, v) in [("watch", t.watch), ("act", t.act)] {
            if let Some(v) = v {
                self.non_negative(&format!("{field}.{name}"), v);
            }
        }
        if let (Some(w), Some(a)) = (t.watch, t.act)
            && w > a
        {
            self.fail(format!("{field}.watch"), "must not exceed act");
        }
    }
}

/// Escapes a PromQL double-quoted string.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Prometheus label name.
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c == ':' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c == ':' || c.is_ascii_alphanumeric())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c == '-' || c.is_ascii_lowercase() || c.is_ascii_digit())
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS subdomain (RFC 1123): what Kubernetes accepts as most objects' names.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| matches!(c, '-' | '.' | 'a'..='z' | '0'..='9'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Longest raw PromQL a policy may hold (the CRD's bound too): every query is echoed into
/// requests and errors, and a spec of many long ones outgrew what etcd stores.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Every field named `query` or `*Query`, wherever it is in the spec.
fn query_lengths(c: &mut Check, spec: &ScalingPolicySpec) {
    fn walk(c: &mut Check, path: &str, key: &str, v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(c, &format!("{path}.{k}"), k, v);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(c, &format!("{path}[{i}]"), key, v);
                }
            }
            serde_json::Value::String(s)
                if (key == "query" || key.ends_with("Query")) && s.len() > MAX_QUERY_BYTES =>
            {
                c.fail(
                    path,
                    format!("must be at most {MAX_QUERY_BYTES} bytes, got {}", s.len()),
                );
            }
            _ => {}
        }
    }
    if let Ok(v) = serde_json::to_value(spec) {
        walk(c, "spec", "", &v);
    }
}

/// v1, v2beta1, v1alpha3.
fn is_api_version(v: &str) -> bool {
    let Some(rest) = v.strip_prefix('v') else {
        return false;
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let tail = &rest[digits..];
    let numbered = |d: &str| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit());
    digits > 0
        && (tail.is_empty()
            || ["alpha", "beta"]
                .iter()
                .any(|l| tail.strip_prefix(l).is_some_and(numbered)))
}

/// The target is named in the `/scale` request's path: only what Kubernetes itself accepts
/// there gets through (the CRD refuses the rest; this holds where it was loosened).
fn target_ref(c: &mut Check, t: &TargetRef) {
    if !is_dns_subdomain(&t.name) {
        c.fail(
            "spec.targetRef.name",
            format!(
                "must be a DNS subdomain (a-z, 0-9, '-', '.'; at most 253), got {:?}",
                t.name
            ),
        );
    }
    let kind_ok = t.kind.len() <= 63
        && t.kind.starts_with(|c: char| c.is_ascii_uppercase())
        && t.kind.chars().all(|c| c.is_ascii_alphanumeric());
    if !kind_ok {
        c.fail(
            "spec.targetRef.kind",
            format!(
                "must be a kind such as Deployment (A-Z first, then letters and digits), got {:?}",
                t.kind
            ),
        );
    }
    let (group, version) = t
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &t.api_version));
    let version_ok = is_api_version(version);
    if !version_ok || !(group.is_empty() || is_dns_subdomain(group)) || t.api_version.len() > 253 {
        c.fail(
            "spec.targetRef.apiVersion",
            format!(
                "must be group/version or version, such as apps/v1, got {:?}",
                t.api_version
            ),
        );
    }
}

pub fn spec(spec: &ScalingPolicySpec) -> Vec<FieldError> {
    let mut c = Check { errors: vec![] };
    replicas(&mut c, spec);
    c.duration("spec.interval", spec.interval, 1000, MAX_INTERVAL_SECONDS);
    idle(&mut c, spec);
    if let Some(w) = spec.headroom.as_ref().and_then(|h| h.calibration_window) {
        c.duration(
            "spec.headroom.calibrationWindow",
            w,
            60_000,
            MAX_CALIBRATION_SECONDS,
        );
    }
    if let Some(t) = spec.tolerance {
        c.non_negative("spec.tolerance", t);
    }
    target_ref(&mut c, &spec.target_ref);
    query_lengths(&mut c, spec);
    signals(&mut c, spec);
    if let Some(b) = &spec.behavior {
        behavior(&mut c, b);
    }
    if let Some(ind) = &spec.indicators {
        indicators(&mut c, ind);
    }
    if let Some(g) = &spec.guardrails {
        guardrails(&mut c, g, spec);
    }
    c.errors
}

fn replicas(c: &mut Check, spec: &ScalingPolicySpec) {
    if spec.max_replicas < 1 {
        c.fail(
            "spec.maxReplicas",
            format!("must be at least 1, got {}", spec.max_replicas),
        );
    }
    if spec.min_replicas < 0 {
        c.fail(
            "spec.minReplicas",
            format!("must not be negative, got {}", spec.min_replicas),
        );
    }
    if spec.max_replicas > MAX_REPLICAS {
        c.fail(
            "spec.maxReplicas",
            format!("must be at most {MAX_REPLICAS}, got {}", spec.max_replicas),
        );
    }
    if spec.min_replicas > spec.max_replicas {
        c.fail(
            "spec.minReplicas",
            format!(
                "must not exceed spec.maxReplicas ({} > {})",
                spec.min_replicas, spec.max_replicas
            ),
        );
    }
}

fn signals(c: &mut Check, spec: &ScalingPolicySpec) {
    if spec.signals.is_empty() || spec.signals.len() > 16 {
        c.fail(
            "spec.signals",
            format!("must list 1 to 16 signals, got {}", spec.signals.len()),
        );
    }
    for (i, s) in spec.signals.iter().enumerate() {
        signal(c, i, s);
        if spec.signals[..i].iter().any(|o| o.name == s.name) {
            c.fail(
                format!("spec.signals[{i}].name"),
                format!("duplicate signal name {:?}", s.name),
            );
        }
    }
}

fn indicators(c: &mut Check, ind: &Indicators) {
    if let Some(t) = &ind.p95 {
        c.thresholds("spec.indicators.p95", t);
    }
    if let Some(db) = &ind.database_cpu {
        c.thresholds("spec.indicators.databaseCpu", &db.thresholds);
        if let Some(f) = db.regularly_fraction {
            c.fraction("spec.indicators.databaseCpu.regularlyFraction", f);
        }
        c.window(
            "spec.indicators.databaseCpu.regularlyWindow",
            db.regularly_window,
        );
    }
    for (name, q) in [
        ("slowQuery", &ind.slow_query),
        ("errorRate", &ind.error_rate),
        ("connections", &ind.connections),
        ("poolWait", &ind.pool_wait),
    ] {
        if let Some(q) = q {
            c.thresholds(&format!("spec.indicators.{name}"), &q.thresholds);
        }
    }
    if let Some(q) = &ind.queue_age {
        c.window("spec.indicators.queueAge.deadline", q.deadline);
    }
}

fn guardrails(c: &mut Check, g: &Guardrails, spec: &ScalingPolicySpec) {
    if let Some(p) = &g.panic {
        if let Some(t) = p.threshold
            && !(t.is_finite() && t >= 1.0)
        {
            c.fail(
                "spec.guardrails.panic.threshold",
                format!("must be at least 1, got {t}"),
            );
        }
        c.window("spec.guardrails.panic.stableWindow", p.stable_window);
    }
    if let Some(f) = &g.forecast {
        c.window("spec.guardrails.forecast.horizon", f.horizon);
        c.window("spec.guardrails.forecast.window", f.window);
    }
    if let Some(r) = &g.creeping_latency {
        creeping(c, r, spec);
    }
    schedule(c, &g.schedule);
    if let Some(b) = &g.connection_budget {
        connection_budget(c, b);
    }
    if let Some(cost) = &g.cost {
        c.positive(
            "spec.guardrails.cost.costPerReplicaHour",
            cost.cost_per_replica_hour,
        );
        if let Some(m) = cost.max_hourly_cost {
            c.non_negative("spec.guardrails.cost.maxHourlyCost", m);
        }
    }
}

fn creeping(c: &mut Check, r: &CreepingLatencyRule, spec: &ScalingPolicySpec) {
    c.window("spec.guardrails.creepingLatency.window", r.window);
    c.window(
        "spec.guardrails.creepingLatency.startupTime",
        r.startup_time,
    );
    if r.request_rate_query.trim().is_empty() {
        c.fail(
            "spec.guardrails.creepingLatency.requestRateQuery",
            "must not be empty",
        );
    }
    if !spec.signals.iter().any(|s| s.latency.is_some()) {
        c.fail(
            "spec.guardrails.creepingLatency",
            "needs a latency signal to watch",
        );
    }
}

fn schedule(c: &mut Check, schedule: &[ScheduledWindow]) {
    for (i, w) in schedule.iter().enumerate() {
        let f = |n: &str| format!("spec.guardrails.schedule[{i}].{n}");
        if !(0..=MAX_REPLICAS).contains(&w.min_replicas) {
            c.fail(f("minReplicas"), format!("must be 0..{MAX_REPLICAS}"));
        }
        for (name, d) in [
            ("leadTime", w.lead_time),
            ("releaseTime", w.release_time),
            ("duration", w.duration),
        ] {
            if let Some(d) = d {
                c.duration(&f(name), d, 0, MAX_SCHEDULE_SECONDS);
            }
        }
    }
    if schedule.len() > 32 {
        c.fail("spec.guardrails.schedule", "must list at most 32 windows");
    }
}

fn connection_budget(c: &mut Check, b: &ConnectionBudget) {
    let f = |n: &str| format!("spec.guardrails.connectionBudget.{n}");
    if b.database.is_empty() {
        c.fail(f("database"), "must not be empty");
    }
    if !(1..=100_000).contains(&b.pool_size_per_replica) {
        c.fail(
            f("poolSizePerReplica"),
            format!("must be 1..100000, got {}", b.pool_size_per_replica),
        );
    }
    match (b.max_connections, &b.max_connections_query) {
        (Some(_), Some(_)) | (None, None) => c.fail(
            f("maxConnections"),
            "set exactly one of maxConnections or maxConnectionsQuery",
        ),
        (Some(n), None) if n < 1 => {
            c.fail(f("maxConnections"), format!("must be at least 1, got {n}"))
        }
        _ => {}
    }
    if let Some(r) = b.reserve
        && !(r.is_finite() && (0.0..1.0).contains(&r))
    {
        c.fail(f("reserve"), format!("must be in [0, 1), got {r}"));
    }
}

fn signal(c: &mut Check, i: usize, s: &Signal) {
    let f = |n: &str| format!("spec.signals[{i}].{n}");
    if !is_dns_label(&s.name) {
        c.fail(
            f("name"),
            format!(
                "must be a lowercase DNS label (a-z, 0-9, '-'), got {:?}",
                s.name
            ),
        );
    }
    let Some(kind) = s.kind() else {
        c.fail(
            format!("spec.signals[{i}]"),
            "exactly one of latency, cpu, queue, custom or concurrency must be set",
        );
        return;
    };
    match kind {
        SignalKind::Latency(l) => latency(c, &f, l),
        SignalKind::Cpu(cpu) => {
            if !(1..=1000).contains(&cpu.target_utilization) {
                c.fail(
                    f("cpu.targetUtilization"),
                    format!("must be 1..1000, got {}", cpu.target_utilization),
                );
            }
            c.window(&f("cpu.window"), Some(cpu.window));
        }
        SignalKind::Queue(q) => {
            if q.query.trim().is_empty() {
                c.fail(f("queue.query"), "must not be empty");
            }
            c.positive(&f("queue.targetPerReplica"), q.target_per_replica);
            match (&q.arrival_rate_query, q.rate_per_replica) {
                (Some(_), Some(r)) => c.positive(&f("queue.ratePerReplica"), r),
                (None, None) => {}
                _ => c.fail(
                    f("queue.arrivalRateQuery"),
                    "arrivalRateQuery and ratePerReplica go together",
                ),
            }
            if let Some(t) = q.activation_threshold {
                c.non_negative(&f("queue.activationThreshold"), t);
            }
        }
        SignalKind::Concurrency(cc) => concurrency(c, &f, cc),
        SignalKind::Custom(cu) => {
            if cu.query.trim().is_empty() {
                c.fail(f("custom.query"), "must not be empty");
            }
            c.positive(&f("custom.target"), cu.target);
            if let Some(t) = cu.activation_threshold {
                c.non_negative(&f("custom.activationThreshold"), t);
            }
        }
    }
}

/// A histogram's metric name, as the templates write it into PromQL.
fn metric(c: &mut Check, field: String, metric: &str) {
    if !is_metric_name(metric) {
        c.fail(
            field,
            format!("must be a Prometheus metric name, got {metric:?}"),
        );
    }
}

fn latency(c: &mut Check, f: &impl Fn(&str) -> String, l: &LatencySignal) {
    metric(c, f("latency.metric"), &l.metric);
    for k in l.selector.keys() {
        if !is_label_name(k) {
            c.fail(
                f("latency.selector"),
                format!("key {k:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
            );
        } else if k == "namespace" {
            c.fail(
                f("latency.selector"),
                "must not set namespace: Headroom always uses the policy's own",
            );
        }
    }
    if !(l.quantile > 0.0 && l.quantile < 1.0) {
        c.fail(
            f("latency.quantile"),
            format!("must be between 0 and 1, e.g. 0.95, got {}", l.quantile),
        );
    }
    c.window(&f("latency.window"), Some(l.window));
    c.duration(&f("latency.target"), l.target, 1, MAX_WINDOW_SECONDS);
}

fn concurrency(c: &mut Check, f: &impl Fn(&str) -> String, cc: &ConcurrencySignal) {
    metric(c, f("concurrency.metric"), &cc.metric);
    for k in cc.selector.keys() {
        if !is_label_name(k) || k == "namespace" {
            c.fail(
                f("concurrency.selector"),
                format!("key {k:?} must be a Prometheus label name other than namespace"),
            );
        }
    }
    c.window(&f("concurrency.window"), Some(cc.window));
    c.positive(&f("concurrency.targetPerReplica"), cc.target_per_replica);
}

/// Scale to zero needs a signal that sees demand while no pod runs.
fn idle(c: &mut Check, spec: &ScalingPolicySpec) {
    if spec.min_replicas == 0
        && !spec
            .signals
            .iter()
            .any(|s| matches!(s.kind(), Some(SignalKind::Queue(_) | SignalKind::Custom(_))))
    {
        c.fail(
            "spec.minReplicas",
            "0 needs a queue or custom signal, which sees demand while no pod runs \
             (cpu, latency and concurrency are measured on running pods)",
        );
    }
    if let Some(d) = spec.idle_cooldown {
        if spec.min_replicas != 0 {
            c.fail("spec.idleCooldown", "applies only with spec.minReplicas: 0");
        }
        c.duration("spec.idleCooldown", d, 1000, MAX_WINDOW_SECONDS);
    }
}

fn behavior(c: &mut Check, b: &Behavior) {
    rules(c, "spec.behavior.scaleUp", b.scale_up.as_ref());
    rules(c, "spec.behavior.scaleDown", b.scale_down.as_ref());
}

/// The HPA's own limits on `behavior`.
pub fn rules_errors(field: &str, r: Option<&ScalingRules>) -> Vec<FieldError> {
    let mut c = Check { errors: vec![] };
    rules(&mut c, field, r);
    c.errors
}

fn rules(c: &mut Check, field: &str, r: Option<&ScalingRules>) {
    let Some(r) = r else { return };
    if let Some(w) = r.stabilization_window_seconds
        && !(0..=3600).contains(&w)
    {
        c.fail(
            format!("{field}.stabilizationWindowSeconds"),
            format!("must be 0..3600, got {w}"),
        );
    }
    if let Some(t) = r.tolerance {
        c.non_negative(&format!("{field}.tolerance"), t);
    }
    if let Some(p) = &r.policies {
        if p.is_empty() {
            c.fail(format!("{field}.policies"), "must list at least one policy");
        }
        for (i, rp) in p.iter().enumerate() {
            if !(1..=MAX_REPLICAS).contains(&rp.value) {
                c.fail(
                    format!("{field}.policies[{i}].value"),
                    format!("must be 1..{MAX_REPLICAS}, got {}", rp.value),
                );
            }
            if !(1..=1800).contains(&rp.period_seconds) {
                c.fail(
                    format!("{field}.policies[{i}].periodSeconds"),
                    format!("must be 1..1800, got {}", rp.period_seconds),
                );
            }
        }
    }
}
