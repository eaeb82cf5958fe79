//! Fixtures of the end-to-end tests: the local cluster from tests/cluster, Prometheus, the
//! test exporter, and one operator process per test, running under the ServiceAccount and
//! RBAC from deploy/. Everything is real; nothing here is mocked.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod data;
pub mod real;
mod token_gate;
#[allow(unused_imports)]
pub use token_gate::TokenGate;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub operator_kubeconfig: PathBuf,
    pub prometheus_url: String,
    pub targets_dir: PathBuf,
    pub state: PathBuf,
    pub exporter: String,
    /// The HPA controller and prometheus-adapter run (HEADROOM_PEERS=1).
    pub peers: bool,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

fn parse_env(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Prints the tail of every component log: what a failing test needs to be understood.
pub fn dump_logs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("----- {} (last 40 lines) -----", e.path().display());
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// The shared cluster. Starts it when it is not running: tests/cluster/up.sh is idempotent.
/// A cluster that cannot start fails the test; it is never skipped.
/// Whether this test binary's cluster runs the peers (the HPA controller, prometheus-adapter).
static PEERS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The local cluster with the HPA controller and prometheus-adapter running beside Headroom
/// (`HEADROOM_PEERS=1 tests/cluster/up.sh`). Call it before anything else in the test.
pub fn cluster_with_peers() -> &'static Cluster {
    PEERS.store(true, std::sync::atomic::Ordering::SeqCst);
    let c = cluster();
    assert!(
        c.peers,
        "this binary's cluster was started without the peers: call cluster_with_peers() first"
    );
    c
}

/// Whether this test binary's cluster has the real node (kubelet, containerd, runc).
static REAL_NODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The local cluster with a real node joined (`HEADROOM_REAL_NODE=1 tests/cluster/up.sh`):
/// pods that really run, and the kubelet's cAdvisor scraped. Call it before anything else.
pub fn cluster_with_real_node() -> &'static Cluster {
    REAL_NODE.store(true, std::sync::atomic::Ordering::SeqCst);
    let c = cluster();
    assert!(
        c.state.join("node").join("containerd.sock").exists(),
        "this binary's cluster was started without the real node: call cluster_with_real_node() first"
    );
    c
}

/// Both: the peers (the HPA controller, prometheus-adapter) and the real node.
pub fn cluster_with_peers_and_real_node() -> &'static Cluster {
    PEERS.store(true, std::sync::atomic::Ordering::SeqCst);
    cluster_with_real_node();
    cluster_with_peers()
}

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let peers = PEERS.load(std::sync::atomic::Ordering::SeqCst);
        let real = REAL_NODE.load(std::sync::atomic::Ordering::SeqCst);
        let state = std::env::var("HEADROOM_CLUSTER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo().join("target/cluster"));
        // Test binaries run side by side: one at a time starts the cluster and applies the
        // CRD, RBAC and the operator's kubeconfig (two creates of one CRD: AlreadyExists).
        let setup = setup_lock(&state);
        let up = Command::new("bash")
            .arg(repo().join("tests/cluster/up.sh"))
            .env("HEADROOM_PEERS", if peers { "1" } else { "0" })
            .env("HEADROOM_REAL_NODE", if real { "1" } else { "0" })
            .status()
            .expect("run tests/cluster/up.sh");
        if !up.success() {
            dump_logs(&state.join("logs"));
            panic!("the local cluster could not start (tests/cluster/up.sh failed)");
        }
        let env = parse_env(&state.join("env"));
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} missing in env"))
        };
        let kubeconfig = PathBuf::from(get("KUBECONFIG"));
        let targets_dir = PathBuf::from(get("HEADROOM_PROM_TARGETS"));
        let prometheus_url = get("PROMETHEUS_URL");

        let k = |args: &[&str]| run_kubectl(&kubeconfig, args, None);
        must(k(&[
            "apply",
            "-f",
            repo()
                .join("crds/scalingpolicy.yaml")
                .to_str()
                .unwrap_or_default(),
        ]));
        must(k(&[
            "wait",
            "--for=condition=Established",
            "crd/scalingpolicies.headroom.dev",
            "--timeout=60s",
        ]));
        for f in [
            "deploy/namespace.yaml",
            "deploy/serviceaccount.yaml",
            "deploy/rbac.yaml",
        ] {
            must(k(&[
                "apply",
                "-f",
                repo().join(f).to_str().unwrap_or_default(),
            ]));
        }
        // The operator's own identity: a ServiceAccount token, so RBAC gaps fail tests.
        let token = must(k(&[
            "create",
            "token",
            "headroom",
            "-n",
            "headroom-system",
            "--duration=6h",
        ]));
        let operator_kubeconfig = state.join("operator.kubeconfig");
        let server = get("HEADROOM_KUBE_SERVER");
        let ca = get("HEADROOM_KUBE_CA");
        let kc = |args: &[&str]| run_kubectl(&operator_kubeconfig, args, None);
        must(kc(&[
            "config",
            "set-cluster",
            "local",
            "--server",
            &server,
            "--certificate-authority",
            &ca,
            "--embed-certs",
        ]));
        must(kc(&[
            "config",
            "set-credentials",
            "headroom",
            "--token",
            token.trim(),
        ]));
        must(kc(&[
            "config",
            "set-context",
            "local",
            "--cluster",
            "local",
            "--user",
            "headroom",
        ]));
        must(kc(&["config", "use-context", "local"]));
        drop(setup);

        // Targets of test runs that are gone would only be scraped in vain.
        if let Ok(entries) = std::fs::read_dir(&targets_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix("e2e-")
                    .and_then(|n| n.strip_suffix(".json"));
                if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let exporter = start_exporter(&state);
        let target_file = targets_dir.join(format!("e2e-{}.json", std::process::id()));
        write_targets(
            &target_file,
            &format!(r#"[{{"targets": ["{exporter}"], "labels": {{"job": "e2e"}}}}]"#),
        )
        .expect("write Prometheus target");
        wait_until(
            "Prometheus scrapes the test exporter",
            Duration::from_secs(60),
            || {
                prom_query(&prometheus_url, &format!(r#"up{{instance="{exporter}"}}"#))
                    .filter(|v| *v == 1.0)
            },
        );
        Cluster {
            kubeconfig,
            operator_kubeconfig,
            prometheus_url,
            targets_dir,
            state,
            exporter,
            peers: env.iter().any(|(k, v)| k == "HEADROOM_PEERS" && v == "1"),
        }
    })
}

/// An exclusive lock beside the cluster's state directory, released when dropped.
fn setup_lock(state: &Path) -> std::fs::File {
    let path = state.with_extension("setup.lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the cluster's parent directory");
    }
    let file = std::fs::File::create(&path).expect("create the cluster setup lock");
    file.lock().expect("lock the cluster setup");
    file
}

fn start_exporter(state: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_headroom-test-exporter"))
        .args(["127.0.0.1:0", "--exit-with-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start headroom-test-exporter");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    let _ = std::fs::write(
        state.join(format!("pids/e2e-exporter-{}.pid", std::process::id())),
        child.id().to_string(),
    );
    // The exporter lives as long as this test binary: it exits when its stdin closes, which
    // happens when this process exits, however it exits.
    std::mem::forget(child);
    line.trim().to_string()
}

/// Writes a Prometheus file-discovery target file whole, then renames it into place:
/// Prometheus never reads half a file (it did: "unexpected end of JSON input").
pub fn write_targets(file: &Path, json: &str) -> std::io::Result<()> {
    let partial = file.with_extension("tmp");
    std::fs::write(&partial, json)?;
    std::fs::rename(&partial, file)
}

pub fn run_kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run kubectl");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    child.wait_with_output().expect("wait for kubectl")
}

/// Stdout of a successful command; panics with stderr otherwise.
pub fn must(out: Output) -> String {
    if !out.status.success() {
        panic!("command failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubectl as the cluster admin (the user).
pub fn kubectl(args: &[&str]) -> Output {
    run_kubectl(&cluster().kubeconfig, args, None)
}

pub fn kubectl_ok(args: &[&str]) -> String {
    must(kubectl(args))
}

/// `kubectl apply -f -`; Err carries kubectl's stderr (what the user would read).
pub fn apply(yaml: &str) -> Result<String, String> {
    let out = run_kubectl(&cluster().kubeconfig, &["apply", "-f", "-"], Some(yaml));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `host:port` of an http URL.
pub fn host_of(url: &str) -> &str {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn curl_json(url: &str, body: &str) {
    let out = Command::new("curl")
        .args([
            "-sf",
            "-XPOST",
            "-H",
            "content-type: application/json",
            "-d",
            body,
            url,
        ])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "POST {url} {body} failed");
}

/// One instant query; None when Prometheus is unreachable or returns nothing.
/// When Prometheus first answers `q` with a value `want` accepts (within a minute).
pub fn wait_prom(url: &str, q: &str, want: impl Fn(f64) -> bool) -> Instant {
    wait_until(
        &format!("Prometheus to return the new value of {q}"),
        Duration::from_secs(60),
        || {
            prom_query(url, q)
                .filter(|v| want(*v))
                .map(|_| Instant::now())
        },
    )
}

pub fn prom_query(prometheus: &str, q: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "5",
            "-G",
            &format!("{prometheus}/api/v1/query"),
            "--data-urlencode",
        ])
        .arg(format!("query={q}"))
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let result = v["data"]["result"].as_array()?;
    let s = result.first()?["value"][1].as_str()?;
    s.parse().ok().filter(|x: &f64| x.is_finite())
}

/// Controls the test exporter's series.
pub struct Exporter<'a>(pub &'a str);

impl Exporter<'_> {
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels_json(labels);
        curl_json(
            &format!("http://{}/gauge", self.0),
            &format!(r#"{{"name":"{name}","labels":{labels},"value":{value}}}"#),
        );
    }
    pub fn counter(&self, name: &str, labels: &[(&str, &str)], per_second: f64) {
        let labels = labels_json(labels);
        curl_json(
            &format!("http://{}/counter", self.0),
            &format!(r#"{{"name":"{name}","labels":{labels},"perSecond":{per_second}}}"#),
        );
    }
    pub fn latency(&self, labels: &[(&str, &str)], seconds: f64) {
        self.requests(labels, seconds, 50.0);
    }

    /// `per_second` requests that each take `seconds`: `seconds × per_second` in flight.
    pub fn requests(&self, labels: &[(&str, &str)], seconds: f64, per_second: f64) {
        let labels = labels_json(labels);
        curl_json(
            &format!("http://{}/latency", self.0),
            &format!(
                r#"{{"name":"http_request_duration_seconds","labels":{labels},"seconds":{seconds},"perSecond":{per_second}}}"#
            ),
        );
    }
}

fn labels_json(labels: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map).to_string()
}

pub fn exporter() -> Exporter<'static> {
    Exporter(&cluster().exporter)
}

/// A namespace of one test, deleted when the test ends.
pub struct Namespace(pub String);

impl Namespace {
    pub fn new(name: &str) -> Self {
        let c = cluster();
        let _ = run_kubectl(
            &c.kubeconfig,
            &[
                "delete",
                "namespace",
                name,
                "--wait=true",
                "--timeout=60s",
                "--ignore-not-found",
            ],
            None,
        );
        must(run_kubectl(
            &c.kubeconfig,
            &["create", "namespace", name],
            None,
        ));
        wait_until("default ServiceAccount", Duration::from_secs(30), || {
            kubectl(&["get", "serviceaccount", "default", "-n", name])
                .status
                .success()
                .then_some(())
        });
        Self(name.to_string())
    }
}

impl Drop for Namespace {
    /// A failed test's namespace is described, then deleted too: left running, its pods hold
    /// the real node's CPU and pods and fail the tests after it for no reason of their own.
    fn drop(&mut self) {
        if std::thread::panicking() {
            describe_namespace(&self.0);
        }
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"]);
    }
}

/// What a failing test needs to see of its namespace: pods (restarts, last exit), and the
/// events, warnings first.
pub fn describe_namespace(ns: &str) {
    let pods = kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "-o",
        "custom-columns=POD:.metadata.name,PHASE:.status.phase,NODE:.spec.nodeName,READY:.status.containerStatuses[*].ready,RESTARTS:.status.containerStatuses[*].restartCount,LAST:.status.containerStatuses[*].lastState.terminated.reason,WAITING:.status.containerStatuses[*].state.waiting.reason",
    ]);
    eprintln!(
        "----- pods in {ns} -----\n{}",
        String::from_utf8_lossy(&pods.stdout)
    );
    let events = kubectl(&["get", "events", "-n", ns, "--sort-by=.lastTimestamp"]);
    let text = String::from_utf8_lossy(&events.stdout);
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("----- events in {ns} (last 40) -----");
    for l in &lines[lines.len().saturating_sub(40)..] {
        eprintln!("{l}");
    }
    let nodes = kubectl(&["describe", "nodes", "-l", "headroom.dev/test-node=real"]);
    let text = String::from_utf8_lossy(&nodes.stdout);
    for l in text
        .lines()
        .filter(|l| l.starts_with("Non-terminated Pods"))
    {
        eprintln!("----- real node: {l}");
    }
    if let Some(at) = text.find("Allocated resources") {
        eprintln!(
            "----- real node -----\n{}",
            &text[at..text.len().min(at + 600)]
        );
    }
}

/// One `headroom run` process watching one namespace, under the operator's ServiceAccount.
pub struct Operator {
    child: Option<Child>,
    pub log: PathBuf,
    pub listen: String,
    namespace: String,
    prometheus: String,
    /// With leader election: (identity, lease name); the Lease lives in headroom-system,
    /// where deploy/rbac.yaml lets the operator's ServiceAccount hold it.
    election: Option<(String, String)>,
    /// More `headroom run` flags.
    extra: Vec<String>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Operator {
    pub fn start(namespace: &str) -> Self {
        Self::start_with(namespace, &cluster().prometheus_url)
    }

    pub fn start_with(namespace: &str, prometheus: &str) -> Self {
        Self::launch(namespace, prometheus, None, vec![])
    }

    /// An operator with more `headroom run` flags.
    pub fn start_args(namespace: &str, args: &[&str]) -> Self {
        let extra = args.iter().map(|a| a.to_string()).collect();
        Self::launch(namespace, &cluster().prometheus_url, None, extra)
    }

    /// One replica of an elected operator: `identity` competes for the Lease `lease`
    /// (4s duration). It is ready as soon as it stands by.
    pub fn start_elected(namespace: &str, identity: &str, lease: &str) -> Self {
        Self::start_elected_args(namespace, identity, lease, &[])
    }

    /// `start_elected` with more arguments (`--lease-duration` replaces the 4s).
    pub fn start_elected_args(namespace: &str, identity: &str, lease: &str, args: &[&str]) -> Self {
        let election = Some((identity.to_string(), lease.to_string()));
        let extra = args.iter().map(|a| a.to_string()).collect();
        Self::launch(namespace, &cluster().prometheus_url, election, extra)
    }

    /// One replica of shard `shard` of `shards`, over all namespaces, elected through the
    /// Lease `<lease>-<shard>`.
    pub fn start_sharded(identity: &str, lease: &str, shard: u32, shards: u32) -> Self {
        let election = Some((identity.to_string(), lease.to_string()));
        let extra = vec![
            "--shards".to_string(),
            shards.to_string(),
            "--shard".to_string(),
            shard.to_string(),
        ];
        Self::launch("", &cluster().prometheus_url, election, extra)
    }

    fn launch(
        namespace: &str,
        prometheus: &str,
        election: Option<(String, String)>,
        extra: Vec<String>,
    ) -> Self {
        let dir = repo().join("target/e2e-logs");
        let _ = std::fs::create_dir_all(&dir);
        let log = match &election {
            Some((identity, _)) => format!("operator-{namespace}-{identity}.log"),
            None => format!("operator-{namespace}.log"),
        };
        let mut op = Operator {
            child: None,
            log: dir.join(log),
            listen: format!("127.0.0.1:{}", free_port()),
            namespace: namespace.to_string(),
            prometheus: prometheus.to_string(),
            election,
            extra,
        };
        op.spawn(&cluster().operator_kubeconfig);
        op
    }

    fn spawn(&mut self, kubeconfig: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("operator log");
        let err = log.try_clone().expect("operator log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_headroom"));
        cmd.arg("run");
        // An empty namespace: all of them (the sharding test).
        if !self.namespace.is_empty() {
            cmd.args(["--namespace", &self.namespace]);
        }
        cmd.args([
            "--prometheus-url",
            &self.prometheus,
            "--listen",
            &self.listen,
        ])
        .args(["--query-timeout", "2s"])
        // The test Prometheus scrapes every second.
        .args(["--scrape-interval", "1s"])
        .args(&self.extra);
        if let Some((identity, lease)) = &self.election {
            cmd.args(["--leader-election", "--lease-namespace", "headroom-system"])
                .args(["--lease-name", lease])
                .env("POD_NAME", identity);
            if !self.extra.iter().any(|a| a == "--lease-duration") {
                cmd.args(["--lease-duration", "4s"]);
            }
        }
        let child = cmd
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,headroom=debug")
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start headroom run");
        self.child = Some(child);
        let url = format!("http://{}/readyz", self.listen);
        wait_until("operator /readyz", Duration::from_secs(30), || {
            Command::new("curl")
                .args(["-sf", &url])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| ())
        });
    }

    /// Kills the process (SIGKILL, as a crash would) and starts a fresh one.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn(&cluster().operator_kubeconfig);
    }

    /// SIGKILL, as a crash would, without a restart.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as Kubernetes stops a pod; returns how the process exited.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.as_ref()?.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        // The child stays owned until it exits, so a timeout still kills it on drop.
        Some(self.exit_within(Duration::from_secs(30)))
    }

    /// How the process exited by itself within `timeout`.
    pub fn exit_within(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let c = self.child.as_mut().expect("a running operator");
        let status = wait_until("the operator to exit", timeout, || {
            c.try_wait().ok().flatten()
        });
        self.child = None;
        status
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://{}/metrics", self.listen)])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "----- operator log {} (last 60 lines) -----",
                self.log.display()
            );
            for l in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{l}");
            }
            // And the control plane's side of the story.
            dump_logs(&cluster().state.join("logs"));
        }
    }
}

/// kwok stage annotations: pods are created at once and become Ready after `ready`.
pub fn kwok_timing(ready: &str) -> String {
    let mut a = String::new();
    for stage in [
        "pod-create",
        "pod-init-container-running",
        "pod-init-container-completed",
    ] {
        a.push_str(&format!(
            "{stage}.stage.kwok.x-k8s.io/delay: 0s, {stage}.stage.kwok.x-k8s.io/jitter-delay: 0s, "
        ));
    }
    a.push_str(&format!("pod-ready.stage.kwok.x-k8s.io/delay: {ready}, pod-ready.stage.kwok.x-k8s.io/jitter-delay: {ready}"));
    a
}

/// A Deployment whose pods become Ready on the kwok node one second after they start.
pub fn deployment(name: &str, ns: &str, replicas: i32) -> String {
    let timing = kwok_timing("1s");
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{{timing}}}
    spec:
      containers: [{{name: app, image: registry.example/app:1}}]
"#
    )
}

pub fn spec_replicas(ns: &str, kind: &str, name: &str) -> i64 {
    kubectl_ok(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.replicas}",
    ])
    .trim()
    .parse()
    .unwrap_or(-1)
}

/// The External metric an HPA last read (`status.currentMetrics[0]`), once it has read one.
pub fn hpa_external_reading(ns: &str, name: &str) -> Option<String> {
    let out = kubectl(&["get", "hpa", name, "-n", ns, "-o", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["status"]["currentMetrics"][0]["external"]["current"]["averageValue"]
        .as_str()
        .map(String::from)
}

pub fn policy(ns: &str, name: &str) -> Value {
    let out = kubectl(&["get", "scalingpolicy", name, "-n", ns, "-o", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// (status, reason, message) of a condition, if present.
pub fn condition(p: &Value, type_: &str) -> Option<(String, String, String)> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Messages of the Events with `reason` about the policy.
/// Who holds the Lease `name` in headroom-system ("" when nobody does).
pub fn lease_holder(name: &str) -> String {
    let out = kubectl(&[
        "get",
        "lease",
        name,
        "-n",
        "headroom-system",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `reportingInstance` of each Event with `reason`: which operator replica wrote it.
pub fn event_reporters(ns: &str, reason: &str) -> Vec<String> {
    event_field(ns, reason, "reportingInstance")
}

/// The notes of the Events with `reason`.
/// What limited the policy's last decision (`status.limitedBy`).
pub fn limited_by(ns: &str, name: &str) -> String {
    policy(ns, name)["status"]["limitedBy"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn events(ns: &str, reason: &str) -> Vec<String> {
    event_field(ns, reason, "note")
}

fn event_field(ns: &str, reason: &str, field: &str) -> Vec<String> {
    let out = kubectl_ok(&["get", "events.events.k8s.io", "-n", ns, "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|e| e["reason"] == reason)
                .filter_map(|e| e[field].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// A Prometheus of one test (same scrape config as the shared one), so stopping it in a
/// fault test does not disturb the other tests.
pub struct PrivatePrometheus {
    child: Option<Child>,
    pub url: String,
    port: u16,
    data: PathBuf,
    pid_file: PathBuf,
}

impl PrivatePrometheus {
    pub fn start(name: &str) -> Self {
        Self::start_with_history(name, None)
    }

    /// Started on a TSDB that already holds `openmetrics` (text ending in `# EOF`), written
    /// with `promtool tsdb create-blocks-from openmetrics` as a user backfills history.
    pub fn start_with_history(name: &str, openmetrics: Option<&str>) -> Self {
        let c = cluster();
        let port = free_port();
        let mut p = PrivatePrometheus {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            data: c.state.join(format!("prometheus-{name}")),
            pid_file: c.state.join(format!("pids/prometheus-{name}.pid")),
        };
        if let Some(text) = openmetrics {
            let _ = std::fs::remove_dir_all(&p.data);
            std::fs::create_dir_all(&p.data).expect("prometheus data dir");
            let file = c.state.join(format!("history-{name}.om"));
            std::fs::write(&file, text).expect("write the history");
            let out = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&p.data)
                .output()
                .expect("run promtool");
            assert!(
                out.status.success(),
                "promtool: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let _ = std::fs::remove_file(&file);
        }
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let c = cluster();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                c.state.join("prometheus/prometheus.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", self.data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let _ = std::fs::write(&self.pid_file, child.id().to_string());
        self.child = Some(child);
        let ready = format!("{}/-/ready", self.url);
        wait_until("private Prometheus ready", Duration::from_secs(60), || {
            Command::new("curl")
                .args(["-sf", &ready])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|_| ())
        });
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for PrivatePrometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.pid_file);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The backlog query of a queue in a namespace, as a RabbitMQ exporter would expose it.
pub fn backlog_query(ns: &str, queue: &str) -> String {
    format!(r#"sum(rabbitmq_queue_messages_ready{{namespace="{ns}",queue="{queue}"}})"#)
}

pub fn set_backlog(ns: &str, queue: &str, value: f64) {
    exporter().gauge(
        "rabbitmq_queue_messages_ready",
        &[("namespace", ns), ("queue", queue)],
        value,
    );
}

/// A policy on one queue signal (100 messages per replica), evaluated every 2s, targeting
/// the Deployment `target`; `extra` is appended to the spec.
pub fn queue_policy(ns: &str, name: &str, target: &str, query: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {target}}}
  minReplicas: 1
  maxReplicas: 10
  interval: 2s
  signals:
    - name: backlog
      queue:
        query: '{query}'
        targetPerReplica: 100
{extra}"#
    )
}

/// A policy scaling the Deployment `web` on the p95 of `http_request_duration_seconds`
/// for `service: web` against 300ms, evaluated every 2s; `extra` is appended to the spec.
pub fn latency_policy(ns: &str, max: i32, window: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: headroom.dev/v1alpha1
kind: ScalingPolicy
metadata: {{name: web, namespace: {ns}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: {max}
  interval: 2s
  signals:
    - name: p95
      latency: {{metric: http_request_duration_seconds, selector: {{service: web}}, window: {window}, target: 300ms}}
{extra}"#
    )
}
