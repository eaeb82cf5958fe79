//! The closed loop on real pods: the real app (tests/cluster/real/app-image.sh) runs on the
//! real node under a CPU limit; real load goes through its Service; Prometheus scrapes the
//! pods through their annotations, the kubelet's cAdvisor and a real kube-state-metrics; and
//! Headroom scales the real Deployment on p95, on CPU and on requests in flight. Each test
//! fails if its signal never leaves its target, and checks the new pods were Ready and took
//! traffic. Needs the real node: scripts/test.sh runs it on a cluster started with
//! HEADROOM_REAL_NODE=1 (`cargo test --test e2e_real -- --test-threads 1`).

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::*;

const IMAGE: &str = "localhost/headroom-real-app:check";

/// Runs a repository script; its last line of output (a path it made).
fn script(path: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join(path))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {path}: {e}"));
    assert!(out.status.success(), "{path} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// The app's image, built once and loaded into the node's containerd.
fn app_image() {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        let archive = script("tests/cluster/real/app-image.sh", &[IMAGE]);
        let load = Command::new("bash")
            .arg(repo().join("tests/cluster/node/load-image.sh"))
            .args([repo().join(&archive).to_str().unwrap_or_default(), IMAGE])
            .status()
            .expect("run load-image.sh");
        assert!(load.success(), "the app image could not be loaded");
    });
}

/// kube-state-metrics, built from its module and run against the cluster as kube-prometheus
/// runs it; down.sh stops it with the cluster (its PID is in the cluster's pids).
fn kube_state_metrics() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let c = cluster();
        let bin = script("tests/cluster/real/build.sh", &[]);
        let port = free_port();
        let log = std::fs::File::create(c.state.join("logs/kube-state-metrics.log"))
            .expect("kube-state-metrics log");
        // Not waited on here: it runs as long as the cluster, and down.sh stops it by its PID.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(format!("{bin}/kube-state-metrics"))
            .args(["--kubeconfig", c.kubeconfig.to_str().unwrap_or_default()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--telemetry-host", "127.0.0.1"])
            .args(["--telemetry-port", &free_port().to_string()])
            .args(["--resources", "pods,deployments,nodes"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start kube-state-metrics");
        std::fs::write(
            c.state.join("pids/kube-state-metrics.pid"),
            child.id().to_string(),
        )
        .expect("pid file");
        std::fs::write(
            c.targets_dir.join("kube-state-metrics.json"),
            format!(
                r#"[{{"targets": ["127.0.0.1:{port}"], "labels": {{"job": "kube-state-metrics"}}}}]"#
            ),
        )
        .expect("targets");
        wait_until(
            "kube-state-metrics scraped",
            Duration::from_secs(60),
            || prom_query(&c.prometheus_url, "sum(kube_node_info)"),
        );
    });
}

/// Keeps Prometheus' targets in step with the app's pods, from their annotations (Debian's
/// Prometheus has no Kubernetes discovery), labelled as a PodMonitor would label them.
struct PodTargets {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodTargets {
    fn start(ns: &str) -> Self {
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, ns) = (stop.clone(), ns.to_string());
        let file = cluster().targets_dir.join(format!("pods-{ns}.json"));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                let out = kubectl(&["get", "pods", "-n", &ns, "-o", "json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                let targets: Vec<serde_json::Value> = v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["metadata"]["annotations"]["prometheus.io/scrape"] == "true")
                    .filter_map(|p| {
                        let ip = p["status"]["podIP"].as_str()?;
                        let port = p["metadata"]["annotations"]["prometheus.io/port"].as_str()?;
                        Some(serde_json::json!({
                            "targets": [format!("{ip}:{port}")],
                            "labels": {"job": "app", "namespace": ns,
                                       "pod": p["metadata"]["name"], "container": "app"},
                        }))
                    })
                    .collect();
                let tmp = file.with_extension("tmp");
                if std::fs::write(&tmp, serde_json::Value::from(targets).to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, &file);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            let _ = std::fs::remove_file(&file);
        });
        PodTargets {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PodTargets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The app on the real node: 100m of CPU per pod (about 5 requests a second each at 20 ms of
/// CPU a request), behind a Service.
fn app(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata:
      labels: {{app: app}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "8080"}}
    spec:
      nodeSelector: {{headroom.dev/test-node: real}}
      terminationGracePeriodSeconds: 2
      containers:
        - name: app
          image: {IMAGE}
          imagePullPolicy: Never
          args: [serve, --listen, "0.0.0.0:8080"]
          ports: [{{containerPort: 8080}}]
          resources:
            requests: {{cpu: 100m, memory: 32Mi}}
            limits: {{cpu: 100m, memory: 64Mi}}
          readinessProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 1}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {{drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {{name: app, namespace: {ns}}}
spec:
  selector: {{app: app}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

fn policy_on(ns: &str, signal: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: app, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: app}}
  minReplicas: 1
  maxReplicas: 6
  interval: 5s
  signals:
    - name: load
      {signal}
"#
    )
}

/// Plays `phases` against the app's Service from the host (kube-proxy's rules take it to the
/// pods), in the background.
fn play(ns: &str, phases: &[&str]) -> Child {
    let ip = kubectl_ok(&[
        "get",
        "service",
        "app",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    Command::new(env!("CARGO_BIN_EXE_headroom-real-app"))
        .args(["load", "--url", &format!("http://{}/", ip.trim())])
        .args(phases)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the load")
}

struct Run {
    /// The signal's highest value in status while the load ran.
    peak_value: f64,
    replicas: i64,
    /// Pods that answered requests after the scale-up.
    serving: usize,
    load: String,
}

/// One load step against a fresh app: 2 requests/s for 30 s, then 12/s (over twice what one
/// pod's CPU can answer) for 150 s, while `policy` scales it.
fn step(ns: &str, signal: &str) -> Run {
    app_image();
    kube_state_metrics();
    apply(&app(ns)).expect("the app");
    let _targets = PodTargets::start(ns);
    wait_until("the app Ready", Duration::from_secs(120), || {
        (kubectl_ok(&[
            "get",
            "deployment",
            "app",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .trim()
            == "1")
            .then_some(())
    });
    let _op = Operator::start(ns);
    apply(&policy_on(ns, signal)).expect("the policy");
    let load = play(ns, &["2:30", "12:150"]);
    let started = Instant::now();
    let mut peak_value = f64::NEG_INFINITY;
    while started.elapsed() < Duration::from_secs(180) {
        let p = policy(ns, "app");
        if let Some(v) = p["status"]["signals"][0]["value"].as_f64() {
            peak_value = peak_value.max(v);
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let out = load.wait_with_output().expect("the load's result");
    let replicas = spec_replicas(ns, "deployment", "app");
    // Pods that answered in the last minute, as Prometheus scraped them.
    let serving = prom_query(
        &cluster().prometheus_url,
        &format!(
            r#"count(increase(http_request_duration_seconds_count{{namespace="{ns}"}}[1m]) > 0)"#
        ),
    )
    .unwrap_or(0.0) as usize;
    let ready: i64 = kubectl_ok(&[
        "get",
        "deployment",
        "app",
        "-n",
        ns,
        "-o",
        "jsonpath={.status.readyReplicas}",
    ])
    .trim()
    .parse()
    .unwrap_or(0);
    println!(
        "{}",
        kubectl_ok(&["get", "sp,deploy,pods", "-n", ns, "-o", "wide"])
    );
    assert_eq!(ready, replicas, "every pod it asked for became Ready");
    Run {
        peak_value,
        replicas,
        serving,
        load: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn check(what: &str, r: &Run, target: f64) {
    let line = format!(
        "{what}: signal peaked at {:.3} (target {target}), {} replicas, {} pods answering; load (client side, per phase): {}",
        r.peak_value,
        r.replicas,
        r.serving,
        r.load.trim().replace('\n', " ")
    );
    println!("{line}");
    let dir = repo().join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("real-pods-{}.txt", what.replace(' ', "-")));
    std::fs::write(&file, format!("{line}\n")).expect("write target/bench/real-pods-*.txt");
    assert!(
        r.peak_value > target,
        "{what}: the signal never left its target ({:.3} <= {target})",
        r.peak_value
    );
    assert!(
        r.replicas >= 2,
        "{what}: not scaled ({} replicas)",
        r.replicas
    );
    assert!(
        r.serving as i64 >= r.replicas,
        "{what}: {} of {} pods took traffic in the last minute",
        r.serving,
        r.replicas
    );
}

#[test]
fn e2e_real_pods_scale_on_p95_from_a_real_histogram() {
    cluster_with_real_node();
    let ns = Namespace::new("e2e-real-p95");
    let r = step(
        &ns.0,
        "latency: {metric: http_request_duration_seconds, window: 20s, target: 250ms}",
    );
    check("p95", &r, 0.25);
}

#[test]
fn e2e_real_pods_scale_on_cpu_from_cadvisor_and_kube_state_metrics() {
    cluster_with_real_node();
    let ns = Namespace::new("e2e-real-cpu");
    // cAdvisor refreshes a container's usage every 10-15 s and stamps its samples: a 20 s
    // rate window often holds one sample and reads nothing. The default 1m holds four or more.
    let r = step(&ns.0, "cpu: {targetUtilization: 60}");
    check("cpu", &r, 60.0);
}

#[test]
fn e2e_real_pods_scale_on_requests_in_flight() {
    cluster_with_real_node();
    let ns = Namespace::new("e2e-real-inflight");
    let r = step(
        &ns.0,
        "concurrency: {metric: http_request_duration_seconds, window: 20s, targetPerReplica: 0.5}",
    );
    check("in flight", &r, 0.5);
}
