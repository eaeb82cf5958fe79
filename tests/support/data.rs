//! The real data tier on the real node (tests/cluster/data/): PostgreSQL 15 with
//! pg_stat_statements and postgres_exporter, PgBouncer (transaction pooling) and its exporter,
//! Redis 7 and redis_exporter, as pods of the test's namespace, scraped through their
//! annotations like the app. The web app (`serve`) reads through PgBouncer and pushes a job to
//! Redis per request; the worker (`work`) takes the jobs off. Their numbers are the real
//! systems' own: the database's CPU through the kubelet's cAdvisor, the rest from the exporters.

use std::sync::OnceLock;
use std::time::Duration;

use super::real::*;
use super::*;

pub const DATA_IMAGE: &str = "localhost/headroom-data:check";

/// The data tier's image (host programs on a tiny base), built once and loaded into the node.
pub fn data_image() {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        let archive = script("tests/cluster/data/image.sh", &[DATA_IMAGE]);
        let load = std::process::Command::new("bash")
            .arg(repo().join("tests/cluster/node/load-image.sh"))
            .args([
                repo().join(&archive).to_str().unwrap_or_default(),
                DATA_IMAGE,
            ])
            .status()
            .expect("run load-image.sh");
        assert!(load.success(), "the data image could not be loaded");
    });
}

/// The database's size: its CPU limit (the knob that makes it the bottleneck) and its
/// max_connections.
pub struct Database {
    pub cpu: &'static str,
    pub max_connections: u32,
    /// PgBouncer's server connections to PostgreSQL.
    pub pool: u32,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            cpu: "500m",
            max_connections: 50,
            pool: 20,
        }
    }
}

const USR: &str = r#"{name: usr, hostPath: {path: /usr, type: Directory}}"#;
const SECURITY: &str = r#"securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: {drop: [ALL]}}"#;

/// PostgreSQL: initialized on first start (role `app`, database `orders` with 10,000 items,
/// pg_stat_statements), then run as the container's one process.
const POSTGRES_START: &str = r#"set -eu
bin=/usr/lib/postgresql/15/bin
$bin/initdb -D "$PGDATA" -U postgres --auth=trust --no-locale -E UTF8 >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/tmp'
max_connections = $MAX_CONNECTIONS
shared_buffers = 32MB
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
echo "host all all 0.0.0.0/0 trust" >>"$PGDATA/pg_hba.conf"
$bin/pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
$bin/psql -h /tmp -U postgres -v ON_ERROR_STOP=1 -q <<'SQL'
CREATE ROLE app LOGIN;
CREATE DATABASE orders OWNER app;
\c orders
CREATE EXTENSION pg_stat_statements;
CREATE TABLE items (id int PRIMARY KEY, payload text NOT NULL);
INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 10000) AS i;
ALTER TABLE items OWNER TO app;
SQL
$bin/pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
exec $bin/postgres -D "$PGDATA"
"#;

/// PgBouncer in transaction mode in front of the database Service (kubelet's service
/// variables: the test cluster has no DNS).
const PGBOUNCER_START: &str = r#"set -eu
printf '"app" ""\n"pgbouncer" ""\n' >/tmp/users.txt
cat >/tmp/pgbouncer.ini <<INI
[databases]
orders = host=$POSTGRES_SERVICE_HOST port=5432 dbname=orders
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir = /tmp
auth_type = trust
auth_file = /tmp/users.txt
pool_mode = transaction
default_pool_size = $POOL
max_client_conn = 2000
admin_users = pgbouncer
stats_users = pgbouncer
ignore_startup_parameters = extra_float_digits,options
INI
exec pgbouncer /tmp/pgbouncer.ini
"#;

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

/// The tier's manifests: Services first, so the pods get their variables.
pub fn tier(ns: &str, db: &Database) -> String {
    let postgres_start = indent(POSTGRES_START, 4);
    let pgbouncer_start = indent(PGBOUNCER_START, 4);
    let (cpu, max, pool) = (db.cpu, db.max_connections, db.pool);
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: postgres, namespace: {ns}}}
spec: {{selector: {{app: postgres}}, ports: [{{port: 5432}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: pgbouncer, namespace: {ns}}}
spec: {{selector: {{app: pgbouncer}}, ports: [{{port: 6432}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: redis, namespace: {ns}}}
spec: {{selector: {{app: redis}}, ports: [{{port: 6379}}]}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: data-start, namespace: {ns}}}
data:
  postgres.sh: |
{postgres_start}  pgbouncer.sh: |
{pgbouncer_start}  pgbouncer-exporter.yml: |
    exporter_host: 0.0.0.0
    exporter_port: 9127
    pgbouncers:
      - {{dsn: "postgresql://pgbouncer:@127.0.0.1:6432/pgbouncer", exclude_databases: [pgbouncer]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: postgres, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: postgres}}}}
  template:
    metadata:
      labels: {{app: postgres}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "9187"}}
    spec:
      nodeSelector: {{headroom.dev/test-node: real}}
      terminationGracePeriodSeconds: 2
      volumes: [{USR}, {{name: data, emptyDir: {{}}}}, {{name: start, configMap: {{name: data-start}}}}]
      containers:
        - name: postgres
          image: {DATA_IMAGE}
          imagePullPolicy: Never
          command: [sh, /start/postgres.sh]
          env: [{{name: PGDATA, value: /data/pg}}, {{name: MAX_CONNECTIONS, value: "{max}"}}]
          volumeMounts: [{{name: usr, mountPath: /usr, readOnly: true}}, {{name: data, mountPath: /data}}, {{name: start, mountPath: /start}}]
          ports: [{{containerPort: 5432}}]
          resources: {{requests: {{cpu: {cpu}, memory: 128Mi}}, limits: {{cpu: {cpu}, memory: 512Mi}}}}
          readinessProbe: {{exec: {{command: [/usr/lib/postgresql/15/bin/pg_isready, -q, -h, 127.0.0.1]}}, periodSeconds: 1}}
          {SECURITY}
        - name: exporter
          image: {DATA_IMAGE}
          imagePullPolicy: Never
          command: [/opt/headroom/postgres_exporter, --collector.stat_statements, --web.listen-address=:9187, --log.level=warn]
          env: [{{name: DATA_SOURCE_NAME, value: "postgresql://postgres@127.0.0.1:5432/orders?sslmode=disable"}}]
          ports: [{{containerPort: 9187}}]
          resources: {{requests: {{cpu: 20m, memory: 32Mi}}, limits: {{memory: 128Mi}}}}
          {SECURITY}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: pgbouncer, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: pgbouncer}}}}
  template:
    metadata:
      labels: {{app: pgbouncer}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "9127"}}
    spec:
      nodeSelector: {{headroom.dev/test-node: real}}
      terminationGracePeriodSeconds: 2
      volumes: [{USR}, {{name: start, configMap: {{name: data-start}}}}]
      containers:
        - name: pgbouncer
          image: {DATA_IMAGE}
          imagePullPolicy: Never
          command: [sh, /start/pgbouncer.sh]
          env: [{{name: POOL, value: "{pool}"}}]
          volumeMounts: [{{name: usr, mountPath: /usr, readOnly: true}}, {{name: start, mountPath: /start}}]
          ports: [{{containerPort: 6432}}]
          resources: {{requests: {{cpu: 50m, memory: 32Mi}}, limits: {{memory: 128Mi}}}}
          readinessProbe: {{tcpSocket: {{port: 6432}}, periodSeconds: 1}}
          {SECURITY}
        - name: exporter
          image: {DATA_IMAGE}
          imagePullPolicy: Never
          command: [/usr/bin/python3, -m, prometheus_pgbouncer_exporter.cli, --config, /start/pgbouncer-exporter.yml]
          env: [{{name: PYTHONPATH, value: /opt/headroom/python}}]
          volumeMounts: [{{name: usr, mountPath: /usr, readOnly: true}}, {{name: start, mountPath: /start}}]
          ports: [{{containerPort: 9127}}]
          resources: {{requests: {{cpu: 20m, memory: 32Mi}}, limits: {{memory: 128Mi}}}}
          {SECURITY}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: redis, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: redis}}}}
  template:
    metadata:
      labels: {{app: redis}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "9121"}}
    spec:
      nodeSelector: {{headroom.dev/test-node: real}}
      terminationGracePeriodSeconds: 2
      volumes: [{USR}]
      containers:
        - name: redis
          image: {DATA_IMAGE}
          imagePullPolicy: Never
          command: [redis-server, --bind, 0.0.0.0, --port, "6379", --protected-mode, "no", --save, "", --appendonly, "no", --dir, /tmp]
          volumeMounts: [{{name: usr, mountPath: /usr, readOnly: true}}]
          ports: [{{containerPort: 6379}}]
          resources: {{requests: {{cpu: 50m, memory: 32Mi}}, limits: {{memory: 256Mi}}}}
          readinessProbe: {{tcpSocket: {{port: 6379}}, periodSeconds: 1}}
          {SECURITY}
        - name: exporter
          image: {DATA_IMAGE}
          imagePullPolicy: Never
          command: [prometheus-redis-exporter, --redis.addr=redis://127.0.0.1:6379, "--check-single-keys=db0=jobs,db0=emails,db0=exports", --web.listen-address=:9121]
          volumeMounts: [{{name: usr, mountPath: /usr, readOnly: true}}]
          ports: [{{containerPort: 9121}}]
          resources: {{requests: {{cpu: 20m, memory: 32Mi}}, limits: {{memory: 128Mi}}}}
          {SECURITY}
"#
    )
}

/// How the web tier reaches PostgreSQL.
#[derive(Clone, Copy)]
pub enum Via {
    /// PgBouncer in transaction mode: it queues clients past its pool.
    PgBouncer,
    /// PostgreSQL itself: past max_connections it refuses ("too many clients already").
    Direct,
}

/// The web tier on the data tier: the real app (`app`'s CPU and probes) as Deployment and
/// Service `name`, reading `via` PgBouncer or directly with a pool of `pool_size`, and pushing
/// a job per request on the Redis list `queue`.
pub fn web_via(ns: &str, name: &str, pool_size: u32, queue: &str, via: Via) -> String {
    let database = match via {
        Via::PgBouncer => "$(PGBOUNCER_SERVICE_HOST):6432",
        Via::Direct => "$(POSTGRES_SERVICE_HOST):5432",
    };
    app_with(
        ns,
        name,
        &format!(
            r#"[serve, --listen, "0.0.0.0:8080", --pool-size, "{pool_size}", --database-url, "postgres://app@{database}/orders", --redis-url, "redis://$(REDIS_SERVICE_HOST):6379", --queue, {queue}]"#
        ),
    )
}

/// The web tier through PgBouncer.
pub fn web(ns: &str, name: &str, pool_size: u32, queue: &str) -> String {
    web_via(ns, name, pool_size, queue, Via::PgBouncer)
}

/// A queue worker as Deployment `name`: takes the web tier's jobs off the Redis list `queue`,
/// about 50 ms of CPU each (`app`'s CPU and probes).
pub fn worker(ns: &str, name: &str, queue: &str) -> String {
    app_with(
        ns,
        name,
        &format!(
            r#"[work, --listen, "0.0.0.0:8080", --redis-url, "redis://$(REDIS_SERVICE_HOST):6379", --queue, {queue}, --work, "10000000"]"#
        ),
    )
}

/// Deploys the tier and waits until each part is Ready.
pub fn start_tier(ns: &str, db: &Database) {
    data_image();
    apply(&tier(ns, db)).expect("the data tier");
    for name in ["postgres", "pgbouncer", "redis"] {
        wait_ready(ns, name, 1, Duration::from_secs(120));
    }
}

pub fn wait_ready(ns: &str, name: &str, want: i64, timeout: Duration) {
    wait_until(&format!("{name} Ready"), timeout, || {
        (ready_replicas(ns, name) >= want).then_some(())
    });
}
