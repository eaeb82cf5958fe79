//! The real node's fixtures, shared by tests/e2e_real.rs and the real-pods benchmark: the real
//! app's image and Deployment, kube-state-metrics, the app's pods as Prometheus targets, and
//! the load that plays against its Service.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::*;

pub const IMAGE: &str = "localhost/headroom-real-app:check";

/// Runs a repository script; its last line of output (a path it made).
pub fn script(path: &str, args: &[&str]) -> String {
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
pub fn app_image() {
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
/// runs it, with deploy/monitoring/'s custom resource state for ScalingPolicies; down.sh stops
/// it with the cluster (its PID is in the cluster's pids).
pub fn kube_state_metrics() {
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
            // Per-policy series from each ScalingPolicy's status, as deploy/monitoring/ ships it.
            .args(["--custom-resource-state-config-file"])
            .arg(repo().join("deploy/monitoring/kube-state-metrics.yaml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start kube-state-metrics");
        // One per test binary that runs it (e2e_real, then e2e_data): each its own PID file,
        // or down.sh stops only the last and the others outlive the cluster.
        std::fs::write(
            c.state.join(format!("pids/kube-state-metrics-{}.pid", std::process::id())),
            child.id().to_string(),
        )
        .expect("pid file");
        write_targets(
            &c.targets_dir.join("kube-state-metrics.json"),
            &format!(
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
pub struct PodTargets {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodTargets {
    pub fn start(ns: &str) -> Self {
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
                    .filter_map(|p| pod_target(p, &ns))
                    .collect();
                let _ = write_targets(&file, &serde_json::Value::from(targets).to_string());
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

/// A pod's scrape target, labelled as a ServiceMonitor on the Service of the same name labels
/// it: `job` and `service` from the pod's `app` label (each fixture's Service is named so),
/// `container` the one that serves the annotated port.
fn pod_target(p: &serde_json::Value, ns: &str) -> Option<serde_json::Value> {
    let ip = p["status"]["podIP"].as_str()?;
    let port = p["metadata"]["annotations"]["prometheus.io/port"].as_str()?;
    let job = p["metadata"]["labels"]["app"].as_str().unwrap_or("app");
    let containers = p["spec"]["containers"].as_array()?;
    let container = containers
        .iter()
        .find(|c| {
            c["ports"].as_array().into_iter().flatten().any(|cp| {
                cp["containerPort"]
                    .as_i64()
                    .map(|n| n.to_string())
                    .as_deref()
                    == Some(port)
            })
        })
        .or(containers.first())?;
    Some(serde_json::json!({
        "targets": [format!("{ip}:{port}")],
        "labels": {"job": job, "service": job, "namespace": ns, "pod": p["metadata"]["name"],
                   "container": container["name"]},
    }))
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
pub fn app(ns: &str) -> String {
    app_with(ns, "app", r#"[serve, --listen, "0.0.0.0:8080"]"#)
}

/// The app as Deployment and Service `name`, run with `args`.
pub fn app_with(ns: &str, name: &str, args: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "8080"}}
    spec:
      nodeSelector: {{headroom.dev/test-node: real}}
      terminationGracePeriodSeconds: 2
      containers:
        - name: app
          image: {IMAGE}
          imagePullPolicy: Never
          args: {args}
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
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"#
    )
}

/// Plays `phases` against the app's Service from the host (kube-proxy's rules take it to the
/// pods), in the background.
pub fn play(ns: &str, phases: &[&str]) -> Child {
    play_to(ns, "app", "/", phases)
}

/// Plays `phases` against `path` of Service `service`, in the background.
pub fn play_to(ns: &str, service: &str, path: &str, phases: &[&str]) -> Child {
    let ip = kubectl_ok(&[
        "get",
        "service",
        service,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    Command::new(env!("CARGO_BIN_EXE_headroom-real-app"))
        .args(["load", "--url", &format!("http://{}{path}", ip.trim())])
        .args(phases)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the load")
}

/// The Deployment's ready replicas as its status shows them (0 while none are).
pub fn ready_replicas(ns: &str, name: &str) -> i64 {
    kubectl_ok(&[
        "get",
        "deployment",
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.status.readyReplicas}",
    ])
    .trim()
    .parse()
    .unwrap_or(0)
}

/// A ScalingPolicy on the real app's Deployment `app`, with one signal named `name`.
pub fn app_policy(ns: &str, max_replicas: i64, interval: &str, name: &str, signal: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: app, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: app}}
  minReplicas: 1
  maxReplicas: {max_replicas}
  interval: {interval}
  signals:
    - name: {name}
      {signal}
"#
    )
}
