//! One observer for every policy. Asks that arrive within a short window go out together:
//! an exact text once however many policies ask it, and a templated query once per shape,
//! over every namespace that asks it, split by label set afterwards. Answers are shared for
//! half a scrape interval (Prometheus has no newer sample before then), and each Prometheus
//! gets a bounded number of queries at a time, of which one namespace's own queries take at
//! most its share: a tenant's slow queries wait behind each other, not in front of others'.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::Prometheus;
use super::ask::{Ask, Grouped, Template, member, pods_reading};
use super::limits::{BACKLOG_GRACE, WAITING_PER_SLOT};
use crate::plan::{QueryError, Sample};
use crate::telemetry::Metrics;

/// Who may share answers: one Prometheus with one set of credentials. A policy's own
/// Prometheus (its address or token) is shared only within the policy's namespace.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Source {
    pub address: String,
    pub token: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Text(Source, String, Option<(u64, u64)>),
    Group(Source, Template),
    /// One namespace's part of a shape that was split (`Shared::split`), in its share.
    GroupIn(Source, Template, String),
}

#[derive(Clone, Debug)]
enum Answer {
    Value(f64),
    Series(Vec<(f64, f64)>),
    /// A grouped result, the namespaces its query covered and those of them refused.
    Grouped(Arc<Grouped>, Arc<BTreeSet<String>>, Arc<Refused>),
}

/// Namespaces whose part of a grouped answer was over a limit, and why.
type Refused = BTreeMap<String, QueryError>;

type Reply = Result<Answer, QueryError>;

struct Pending {
    key: Key,
    /// Whose share a query uses (grouped ones are the operator's, shared by all, until their
    /// shape is split).
    namespace: Option<String>,
    prometheus: Prometheus,
    reply: oneshot::Sender<Reply>,
}

/// A namespace's evaluations and its background reads (forecasts, calibrations) have a share
/// each: its own learning never holds the slots its evaluations wait for.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Lane {
    Evaluation,
    Background,
}

/// Background reads of a namespace in flight at a time.
const BACKGROUND_SHARE: usize = 1;

/// One namespace's share of the queries in flight.
struct Share {
    slots: Arc<Semaphore>,
    waiting: AtomicU64,
    /// When an ask last found a slot free: the backlog is no older than this.
    last_free: Mutex<Instant>,
}

/// What a query holds while it runs: a slot of its namespace's share (when it has one) and
/// one of its Prometheus' slots.
struct Admitted {
    _share: Option<OwnedSemaphorePermit>,
    _prometheus: OwnedSemaphorePermit,
}

fn stopped<E>(_: E) -> QueryError {
    QueryError::Unavailable("the observer has stopped".into())
}

/// How long a namespace stays in a shape's grouped query after it last asked.
const NAMESPACE_TTL: Duration = Duration::from_secs(600);
/// A grouped query slower than this (and than `SLOW_PER_NAMESPACE` for each namespace it
/// covers) is split: each namespace then asks its part alone, in its own share, for
/// `SPLIT_FOR`. Whoever made it slow waits for itself; the others answer at once.
const SLOW_GROUPED: Duration = Duration::from_secs(1);
const SLOW_PER_NAMESPACE: Duration = Duration::from_millis(10);
const SPLIT_FOR: Duration = Duration::from_secs(600);
/// Queries in flight per Prometheus.
const PER_PROMETHEUS: usize = 8;

struct Shared {
    cache: Mutex<HashMap<Key, (Instant, Reply)>>,
    namespaces: Mutex<HashMap<(Source, Template), BTreeMap<String, Instant>>>,
    /// Shapes whose grouped query was slow, until when they are asked per namespace.
    split: Mutex<HashMap<(Source, Template), Instant>>,
    limits: Mutex<HashMap<Source, Arc<Semaphore>>>,
    /// Each namespace's shares, across every Prometheus and address it asks: spelling one
    /// Prometheus many ways, or asking many, does not widen them.
    shares: Mutex<HashMap<(String, Lane), Arc<Share>>>,
    /// Milliseconds an answer is shared.
    fresh_for: AtomicU64,
    metrics: Metrics,
}

pub struct Batcher {
    tx: mpsc::UnboundedSender<Pending>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Pending>>>,
    window: Duration,
    shared: Arc<Shared>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Batcher {
    /// `window`: how long the first ask of a batch waits for others; `fresh_for`: how long
    /// an answer is shared.
    pub fn new(window: Duration, fresh_for: Duration, metrics: Metrics) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            window,
            shared: Arc::new(Shared {
                cache: Mutex::default(),
                namespaces: Mutex::default(),
                split: Mutex::default(),
                limits: Mutex::default(),
                shares: Mutex::default(),
                fresh_for: AtomicU64::new(millis(fresh_for)),
                metrics,
            }),
        }
    }

    /// Shares answers for `d` from now on (the scrape interval was learned).
    pub fn share_for(&self, d: Duration) {
        self.shared.fresh_for.store(millis(d), Ordering::Relaxed);
    }

    /// Runs `read` (a forecast's or a calibration's range reads) in `namespace`'s share for
    /// background reads and one of `source`'s slots: refused at once when too many of its
    /// reads already wait. Gives what it read and how long the read took (not the wait).
    pub async fn in_share<T>(
        &self,
        namespace: &str,
        source: &Source,
        read: impl std::future::Future<Output = T>,
    ) -> Result<(T, Duration), QueryError> {
        let lane = (namespace, Lane::Background, BACKGROUND_SHARE);
        let _admitted = self.shared.admit(source, Some(lane)).await?;
        let started = Instant::now();
        let out = read.await;
        Ok((out, started.elapsed()))
    }

    /// The answer to one ask.
    pub async fn answer(
        &self,
        source: &Source,
        prometheus: &Prometheus,
        ask: &Ask,
    ) -> Result<Sample, QueryError> {
        match ask {
            Ask::Text {
                promql,
                range,
                namespace,
            } => {
                let range = range.map(|(span, step)| (span.to_bits(), step.to_bits()));
                let key = Key::Text(source.clone(), promql.clone(), range);
                match self.fetch(key, prometheus, None, Some(namespace)).await? {
                    Answer::Value(v) => Ok(Sample::Value(v)),
                    Answer::Series(s) => Ok(Sample::Series(s)),
                    Answer::Grouped(..) => Err(QueryError::Rejected("unexpected grouped".into())),
                }
            }
            Ask::Member {
                template,
                namespace,
                labels,
            } => {
                let g = self.group(source, template, namespace, prometheus).await?;
                member(&g, template, namespace, labels).map(Sample::Value)
            }
            Ask::Cpu {
                reading,
                window,
                namespace,
                pods,
            } => {
                let (over, under) = reading.templates(window);
                let divisor = async {
                    match &under {
                        Some(t) => self.group(source, t, namespace, prometheus).await.map(Some),
                        None => Ok(None),
                    }
                };
                let (over, under) =
                    futures::join!(self.group(source, &over, namespace, prometheus), divisor);
                pods_reading(*reading, &*over?, under?.as_deref(), namespace, pods)
                    .map(Sample::Value)
            }
        }
    }

    async fn group(
        &self,
        source: &Source,
        template: &Template,
        namespace: &str,
        prometheus: &Prometheus,
    ) -> Result<Arc<Grouped>, QueryError> {
        lock(&self.shared.namespaces)
            .entry((source.clone(), template.clone()))
            .or_default()
            .insert(namespace.to_string(), Instant::now());
        // A split shape is this namespace's own query, in its own share.
        let (key, share) = if self.shared.is_split(source, template) {
            let key = Key::GroupIn(source.clone(), template.clone(), namespace.to_string());
            (key, Some(namespace))
        } else {
            (Key::Group(source.clone(), template.clone()), None)
        };
        match self.fetch(key, prometheus, Some(namespace), share).await? {
            Answer::Grouped(_, _, refused) if refused.contains_key(namespace) => {
                Err(refused.get(namespace).cloned().unwrap_or(QueryError::Empty))
            }
            Answer::Grouped(g, _, _) => Ok(g),
            _ => Err(QueryError::Rejected("expected a grouped result".into())),
        }
    }

    /// `covering`: the namespace a grouped answer must cover; `share`: whose share a text
    /// query uses.
    async fn fetch(
        &self,
        key: Key,
        prometheus: &Prometheus,
        covering: Option<&str>,
        share: Option<&str>,
    ) -> Reply {
        if let Some(hit) = self.shared.cached(&key, covering) {
            self.shared.metrics.observation_cache(true);
            return hit;
        }
        self.shared.metrics.observation_cache(false);
        self.start();
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key,
            namespace: share.map(str::to_string),
            prometheus: prometheus.clone(),
            reply,
        };
        self.tx.send(pending).map_err(stopped)?;
        answer.await.unwrap_or_else(|e| Err(stopped(e)))
    }

    /// Starts the flushing task on first use, inside the caller's runtime.
    fn start(&self) {
        if let Some(rx) = lock(&self.rx).take() {
            tokio::spawn(flush(rx, self.window, self.shared.clone()));
        }
    }
}

impl Shared {
    fn cached(&self, key: &Key, namespace: Option<&str>) -> Option<Reply> {
        let cache = lock(&self.cache);
        let (at, reply) = cache.get(key)?;
        if at.elapsed() >= self.fresh_for() {
            return None;
        }
        match (reply, namespace) {
            (Ok(Answer::Grouped(_, covered, _)), Some(ns)) if !covered.contains(ns) => None,
            _ => Some(reply.clone()),
        }
    }

    fn limit(&self, source: &Source) -> Arc<Semaphore> {
        lock(&self.limits)
            .entry(source.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_PROMETHEUS)))
            .clone()
    }

    fn is_split(&self, source: &Source, template: &Template) -> bool {
        let mut split = lock(&self.split);
        let key = (source.clone(), template.clone());
        match split.get(&key) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                split.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Splits a shape whose grouped query over `covered` namespaces took `took`.
    fn split_if_slow(&self, key: &Key, covered: usize, took: Duration) {
        let Key::Group(source, template) = key else {
            return;
        };
        let slow = SLOW_GROUPED.max(SLOW_PER_NAMESPACE.saturating_mul(covered as u32));
        if covered > 1 && took > slow {
            lock(&self.split).insert(
                (source.clone(), template.clone()),
                Instant::now() + SPLIT_FOR,
            );
        }
    }

    /// The namespaces a shape's grouped query covers now, dropping those long silent.
    fn namespaces(&self, source: &Source, template: &Template) -> Vec<String> {
        let mut all = lock(&self.namespaces);
        let Some(seen) = all.get_mut(&(source.clone(), template.clone())) else {
            return vec![];
        };
        seen.retain(|_, at| at.elapsed() < NAMESPACE_TTL);
        seen.keys().cloned().collect()
    }

    fn share(&self, namespace: &str, lane: Lane, size: usize) -> Arc<Share> {
        lock(&self.shares)
            .entry((namespace.to_string(), lane))
            .or_insert_with(|| {
                Arc::new(Share {
                    slots: Arc::new(Semaphore::new(size.max(1))),
                    waiting: AtomicU64::new(0),
                    last_free: Mutex::new(Instant::now()),
                })
            })
            .clone()
    }

    /// Waits for a slot of the namespace's share in its lane (when the query has one), then
    /// for one of `source`'s.
    async fn admit(
        &self,
        source: &Source,
        tenant: Option<(&str, Lane, usize)>,
    ) -> Result<Admitted, QueryError> {
        let share = match tenant {
            Some((namespace, lane, size)) => Some(self.enter(namespace, lane, size).await?),
            None => None,
        };
        let prometheus = self.limit(source).acquire_owned().await.map_err(stopped)?;
        Ok(Admitted {
            _share: share,
            _prometheus: prometheus,
        })
    }

    /// Waits for a slot of `namespace`'s share, unless too many of its queries already wait
    /// and have for `BACKLOG_GRACE`: then it is refused at once, so a slow tenant's backlog
    /// does not grow without bound, while a burst of quick ones just waits its turn.
    async fn enter(
        &self,
        namespace: &str,
        lane: Lane,
        size: usize,
    ) -> Result<OwnedSemaphorePermit, QueryError> {
        let share = self.share(namespace, lane, size);
        let allowed = u64::try_from(size.max(1) * WAITING_PER_SLOT).unwrap_or(u64::MAX);
        let now = Instant::now();
        if share.slots.available_permits() > 0 {
            *lock(&share.last_free) = now;
        } else if share.waiting.load(Ordering::Relaxed) >= allowed
            && now.saturating_duration_since(*lock(&share.last_free)) >= BACKLOG_GRACE
        {
            self.metrics.tenants().refused(namespace);
            return Err(QueryError::OverLimit(format!(
                "namespace {namespace} already has {allowed} queries waiting for its share of {size} at a time, for over {}s (--namespace-queries)",
                BACKLOG_GRACE.as_secs()
            )));
        }
        share.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = share.slots.clone().acquire_owned().await;
        share.waiting.fetch_sub(1, Ordering::Relaxed);
        permit.map_err(stopped)
    }

    async fn run(
        &self,
        key: &Key,
        prometheus: &Prometheus,
        namespaces: &BTreeSet<String>,
        tenant: Option<&str>,
    ) -> Reply {
        let source = match key {
            Key::Text(s, ..) | Key::Group(s, _) | Key::GroupIn(s, ..) => s,
        };
        let size = prometheus.limits().namespace_share;
        let lane = tenant.map(|ns| (ns, Lane::Evaluation, size));
        let _admitted = self.admit(source, lane).await?;
        // Another batch may have answered it while this one waited for a permit.
        let covers_all = namespaces
            .iter()
            .all(|ns| self.cached(key, Some(ns)).is_some());
        if covers_all && let Some(hit) = self.cached(key, None) {
            return hit;
        }
        let started = Instant::now();
        let (kind, reply) = match key {
            Key::Text(_, promql, None) => (
                "instant",
                prometheus.scalar(promql).await.map(Answer::Value),
            ),
            Key::Text(_, promql, Some((span, step))) => (
                "range",
                prometheus
                    .range(promql, f64::from_bits(*span), f64::from_bits(*step))
                    .await
                    .map(Answer::Series),
            ),
            Key::Group(_, template) | Key::GroupIn(_, template, _) => {
                ("grouped", group(template, prometheus, namespaces).await)
            }
        };
        self.split_if_slow(key, namespaces.len(), started.elapsed());
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.prometheus_query(kind, reply.is_ok(), seconds);
        let tenants = self.metrics.tenants();
        match tenant {
            Some(ns) => {
                tenants.answered(ns, seconds, matches!(reply, Err(QueryError::OverLimit(_))))
            }
            // A grouped query is charged to the namespaces it covers, in equal parts.
            None => {
                let part = seconds / namespaces.len().max(1) as f64;
                for ns in namespaces {
                    tenants.queried(ns, part);
                }
            }
        }
        lock(&self.cache).insert(key.clone(), (Instant::now(), reply.clone()));
        reply
    }

    fn fresh_for(&self) -> Duration {
        Duration::from_millis(self.fresh_for.load(Ordering::Relaxed))
    }

    fn sweep(&self) {
        let fresh_for = self.fresh_for();
        lock(&self.cache).retain(|_, (at, _)| at.elapsed() < fresh_for);
        // A share nobody holds or waits for is made again when next needed.
        lock(&self.shares).retain(|_, s| Arc::strong_count(s) > 1);
    }
}

/// A grouped query over `namespaces`. Over the response cap, each namespace is asked alone,
/// so only the one whose series are too large is refused.
async fn group(
    template: &Template,
    prometheus: &Prometheus,
    namespaces: &BTreeSet<String>,
) -> Reply {
    let all: Vec<String> = namespaces.iter().cloned().collect();
    let by = template.by();
    let max_series = prometheus.limits().max_series;
    let covered = Arc::new(namespaces.clone());
    match prometheus
        .grouped(&template.render(&all), &by, all.len())
        .await
    {
        Err(QueryError::OverLimit(_)) if all.len() > 1 => {
            let mut merged = Grouped::new();
            let mut refused = Refused::new();
            for ns in all {
                match prometheus
                    .grouped(&template.render(std::slice::from_ref(&ns)), &by, 1)
                    .await
                {
                    Ok(g) => merged.extend(g),
                    Err(e) => {
                        refused.insert(ns, e);
                    }
                }
            }
            let (g, over) = capped(merged, max_series);
            refused.extend(over);
            Ok(Answer::Grouped(Arc::new(g), covered, Arc::new(refused)))
        }
        Err(e) => Err(e),
        Ok(g) => {
            let (g, refused) = capped(g, max_series);
            Ok(Answer::Grouped(Arc::new(g), covered, Arc::new(refused)))
        }
    }
}

/// Drops the members of every namespace with more than `max_series` series, refusing it.
fn capped(mut g: Grouped, max_series: usize) -> (Grouped, Refused) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for labels in g.keys() {
        let ns = labels.first().cloned().unwrap_or_default();
        *counts.entry(ns).or_default() += 1;
    }
    let refused: Refused = counts
        .into_iter()
        .filter(|(_, n)| *n > max_series)
        .map(|(ns, n)| {
            let e = QueryError::OverLimit(format!(
                "the query returned {n} series for namespace {ns}; the limit is {max_series} (--max-series)"
            ));
            (ns, e)
        })
        .collect();
    if !refused.is_empty() {
        g.retain(|labels, _| labels.first().is_none_or(|ns| !refused.contains_key(ns)));
    }
    (g, refused)
}

/// Collects asks for `window` after the first, then runs each distinct one once.
async fn flush(mut rx: mpsc::UnboundedReceiver<Pending>, window: Duration, shared: Arc<Shared>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(window).await;
        let mut batch = vec![first];
        while let Ok(p) = rx.try_recv() {
            batch.push(p);
        }
        shared.sweep();
        type Asked = (Prometheus, Option<String>, Vec<oneshot::Sender<Reply>>);
        let mut by_key: HashMap<Key, Asked> = HashMap::new();
        for p in batch {
            by_key
                .entry(p.key)
                .or_insert_with(|| (p.prometheus, p.namespace, vec![]))
                .2
                .push(p.reply);
        }
        for (key, (prometheus, tenant, replies)) in by_key {
            let shared = shared.clone();
            tokio::spawn(async move {
                let namespaces = match &key {
                    Key::Group(source, template) => {
                        shared.namespaces(source, template).into_iter().collect()
                    }
                    Key::GroupIn(.., ns) => BTreeSet::from([ns.clone()]),
                    Key::Text(..) => BTreeSet::new(),
                };
                let reply = shared
                    .run(&key, &prometheus, &namespaces, tenant.as_deref())
                    .await;
                for r in replies {
                    // The asker may have given up (a timeout); nothing to do then.
                    let _ = r.send(reply.clone());
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::routing::any;
    use futures::future::join_all;

    use super::*;

    /// A stand-in Prometheus that counts queries: grouped ones get a vector by namespace and
    /// service, any other text one sample.
    async fn fake() -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
        let count = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(Mutex::new(vec![]));
        let (c, b) = (count.clone(), bodies.clone());
        let app = Router::new().route("/api/v1/targets", any(targets)).route(
            "/api/v1/query",
            any(move |body: String| {
                let (c, b) = (c.clone(), b.clone());
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    let grouped = body.contains("by+%28") || body.contains("by%20%28");
                    lock(&b).push(body);
                    let result = if grouped {
                        r#"[{"metric":{"namespace":"shop","service":"web"},"value":[1,"0.2"]},
                            {"metric":{"namespace":"blog","service":"web"},"value":[1,"0.4"]}]"#
                    } else {
                        r#"[{"metric":{},"value":[1,"7"]}]"#
                    };
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        format!(
                            r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#
                        ),
                    )
                }
            }),
        );
        (super::super::limits_tests::serve(app).await, count, bodies)
    }

    async fn targets() -> ([(axum::http::HeaderName, &'static str); 1], String) {
        let target = |interval: &str| {
            format!(
                r#"{{"discoveredLabels":{{}},"labels":{{"job":"j"}},"scrapePool":"j","scrapeUrl":"http://127.0.0.1:1/metrics","globalUrl":"http://127.0.0.1:1/metrics","lastError":"","lastScrape":"2026-11-27T10:00:00.000Z","lastScrapeDuration":0.001,"health":"up","scrapeInterval":"{interval}","scrapeTimeout":"10s"}}"#
            )
        };
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            format!(
                r#"{{"status":"success","data":{{"activeTargets":[{},{}],"droppedTargets":[]}}}}"#,
                target("15s"),
                target("30s")
            ),
        )
    }

    #[tokio::test]
    async fn the_scrape_interval_is_the_longest_of_the_active_targets() {
        let (address, _, _) = fake().await;
        let (_, _, p) = setup(&address);
        assert_eq!(p.scrape_interval().await, Ok(Some(Duration::from_secs(30))));
    }

    fn latency(namespace: &str) -> Ask {
        Ask::Member {
            template: Template::Quantile {
                metric: "http_request_duration_seconds".into(),
                quantile: "0.95".into(),
                window: "1m".into(),
                keys: vec!["service".into()],
            },
            namespace: namespace.into(),
            labels: BTreeMap::from([("service".into(), "web".into())]),
        }
    }

    fn setup(address: &str) -> (Batcher, Source, Prometheus) {
        // As main does: one crypto provider, ring. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let batcher = Batcher::new(
            Duration::from_millis(20),
            Duration::from_secs(60),
            Metrics::default(),
        );
        let source = Source {
            address: address.into(),
            token: None,
            tenant: None,
        };
        let p = Prometheus::new(address, Duration::from_secs(5), None, Default::default());
        let Ok(p) = p else { panic!("client") };
        (batcher, source, p)
    }

    #[tokio::test]
    async fn forty_policies_in_two_namespaces_send_one_grouped_query() {
        let (address, count, bodies) = fake().await;
        let (batcher, source, p) = setup(&address);
        let asks: Vec<Ask> = (0..40)
            .map(|i| latency(if i % 2 == 0 { "shop" } else { "blog" }))
            .collect();
        let answers = join_all(asks.iter().map(|a| batcher.answer(&source, &p, a))).await;
        assert_eq!(count.load(Ordering::SeqCst), 1, "{:?}", lock(&bodies));
        for (i, a) in answers.iter().enumerate() {
            let want = if i % 2 == 0 { 0.2 } else { 0.4 };
            assert_eq!(a, &Ok(Sample::Value(want)), "ask {i}");
        }
        let body = lock(&bodies).join("");
        assert!(
            body.contains("blog%7Cshop") || body.contains("blog|shop"),
            "{body}"
        );
        // Within the shared period, the next round is answered from it.
        let again = join_all(asks.iter().map(|a| batcher.answer(&source, &p, a))).await;
        assert_eq!(again, answers);
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // A namespace the answer did not cover is asked for; it has no series of its own.
        let other = batcher.answer(&source, &p, &latency("other")).await;
        assert_eq!(other, Err(QueryError::Empty));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn identical_texts_run_once_and_other_sources_apart() {
        let (address, count, _) = fake().await;
        let (batcher, source, p) = setup(&address);
        let text = Ask::Text {
            promql: "max(pg_cpu)".into(),
            range: None,
            namespace: "shop".into(),
        };
        let answers = join_all((0..10).map(|_| batcher.answer(&source, &p, &text))).await;
        assert!(answers.iter().all(|a| a == &Ok(Sample::Value(7.0))));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        // A tenant's own Prometheus credentials never share an answer with others.
        let tenant = Source {
            tenant: Some("shop".into()),
            ..source
        };
        let _ = batcher.answer(&tenant, &p, &text).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
