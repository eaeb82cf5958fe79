//! The dashboard and the alerts against what really exists: every query in
//! deploy/monitoring/grafana-dashboard.json and every alert's expression parses as PromQL and
//! names only metrics the operator exposes (its registry, rendered) or kube-state-metrics makes
//! from deploy/monitoring/kube-state-metrics.yaml; the PrometheusRule and the Helm chart hold
//! the same alerts as the plain rules file, and the chart the same CRD as crds/. A rename on
//! either side fails here. (tests/e2e_real.rs checks the kube-state-metrics series exist on a
//! real cluster; scripts/test.sh runs the alerts' promtool tests.)

use std::collections::BTreeSet;
use std::path::PathBuf;

use promql_parser::parser::{self, Expr};
use serde_yaml::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Metric names the operator's registry renders, with every family touched once.
fn operator_metrics() -> BTreeSet<String> {
    let m = headroom::telemetry::Metrics::default();
    m.reconciled(true, 0.1);
    m.error("kube");
    m.decision("MaxReplicas");
    m.scaled(true);
    m.scale_failed();
    m.signal_error("latency");
    m.prometheus_query("instant", true, 0.01);
    m.observation_cache(true);
    m.evaluation_lag(0.1);
    m.calibrated(true);
    m.set_leader(true);
    m.tenants().queried("shop", 0.1);
    m.tenants().refused("shop");
    m.render()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// Names kube-state-metrics makes from the custom resource state configuration.
fn policy_metrics() -> BTreeSet<String> {
    let config: Value =
        serde_yaml::from_str(&read("deploy/monitoring/kube-state-metrics.yaml")).expect("yaml");
    let mut names = BTreeSet::new();
    for r in config["spec"]["resources"]
        .as_sequence()
        .expect("resources")
    {
        let prefix = r["metricNamePrefix"].as_str().expect("metricNamePrefix");
        for m in r["metrics"].as_sequence().expect("metrics") {
            names.insert(format!("{prefix}_{}", m["name"].as_str().expect("name")));
        }
    }
    names
}

fn selectors(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v.name.clone().unwrap_or_default()),
        Expr::MatrixSelector(m) => out.push(m.vs.name.clone().unwrap_or_default()),
        Expr::Call(c) => c.args.args.iter().for_each(|a| selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Checks one query; returns the metric names it reads.
fn check(what: &str, query: &str, known: &BTreeSet<String>) -> Vec<String> {
    // Grafana's variables, as Grafana substitutes them.
    let q = query
        .replace("$__rate_interval", "5m")
        .replace("$namespace", ".*")
        .replace("$policy", ".*");
    let e = parser::parse(&q).unwrap_or_else(|e| panic!("{what}: {q:?} does not parse: {e}"));
    let mut names = vec![];
    selectors(&e, &mut names);
    assert!(!names.is_empty(), "{what}: {q:?} reads no metric");
    for n in &names {
        assert!(
            known.contains(n),
            "{what}: {n} is neither an operator metric nor a kube-state-metrics series of deploy/monitoring/kube-state-metrics.yaml (known: {known:?})"
        );
    }
    names
}

fn known() -> BTreeSet<String> {
    let mut k = operator_metrics();
    k.extend(policy_metrics());
    k
}

#[test]
fn every_dashboard_query_reads_metrics_that_exist() {
    let known = known();
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/monitoring/grafana-dashboard.json")).expect("json");
    let mut used = BTreeSet::new();
    let mut queries = 0;
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default();
            let expr = t["expr"].as_str().expect("expr");
            used.extend(check(&format!("panel {title:?}"), expr, &known));
            queries += 1;
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["definition"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|s| s.rsplit_once(','))
                .map(|(sel, _)| sel)
                .expect("label_values(selector, label)");
            used.extend(check("a variable", inner, &known));
        }
    }
    assert!(queries >= 15, "{queries} queries");
    // Every per-policy series the configuration makes is on the dashboard.
    for n in policy_metrics() {
        assert!(used.contains(&n), "{n} is on no panel");
    }
    for n in [
        "headroom_leader",
        "headroom_evaluation_lag_seconds_bucket",
        "headroom_scale_failures_total",
    ] {
        assert!(used.contains(n), "{n} is on no panel");
    }
}

fn groups(path: &str) -> Value {
    let v: Value = serde_yaml::from_str(&read(path)).expect("yaml");
    v["groups"].clone()
}

#[test]
fn the_alerts_read_metrics_that_exist_and_every_copy_is_the_same() {
    let known = known();
    let rules = groups("deploy/monitoring/headroom.rules.yaml");
    let mut alerts = 0;
    for g in rules.as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let name = r["alert"].as_str().expect("alert");
            check(name, r["expr"].as_str().expect("expr"), &known);
            assert!(r["labels"]["severity"].is_string(), "{name}: no severity");
            assert!(
                r["annotations"]["summary"].is_string(),
                "{name}: no summary"
            );
            alerts += 1;
        }
    }
    assert_eq!(alerts, 9);
    let rule: Value =
        serde_yaml::from_str(&read("deploy/monitoring/prometheusrule.yaml")).expect("yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(
        rule["spec"]["groups"], rules,
        "deploy/monitoring/prometheusrule.yaml differs from headroom.rules.yaml"
    );
    assert_eq!(
        read("charts/headroom/files/headroom.rules.yaml"),
        read("deploy/monitoring/headroom.rules.yaml"),
        "charts/headroom/files/headroom.rules.yaml is out of date: cp deploy/monitoring/headroom.rules.yaml charts/headroom/files/"
    );
}

#[test]
fn the_chart_holds_the_crd_of_crds() {
    assert_eq!(
        read("charts/headroom/crds/scalingpolicy.yaml"),
        read("crds/scalingpolicy.yaml"),
        "charts/headroom/crds/scalingpolicy.yaml is out of date: cp crds/scalingpolicy.yaml charts/headroom/crds/"
    );
}
