//! The operator's query limits against a stand-in Prometheus that a noisy tenant controls:
//! padded series, many series, slow queries.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::Uri;
use axum::routing::any;
use futures::future::join_all;

use super::ask::{Ask, Template};
use super::limits::BACKLOG_GRACE;
use super::{Batcher, Limits, Prometheus, Source};
use crate::plan::{QueryError, Sample};
use crate::telemetry::Metrics;

const PAD: usize = 200 << 10;

fn vector(series: &[String]) -> String {
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        series.join(",")
    )
}

fn series(namespace: &str, service: &str, extra: &str) -> String {
    format!(
        r#"{{"metric":{{"namespace":"{namespace}","service":"{service}"{extra}}},"value":[1,"0.2"]}}"#
    )
}

/// Answers by what the query names: `padded` one series with a 200 KiB label, `slow` after
/// 0.6 s, `many` 50 series; grouped queries a series per namespace named, the noisy
/// namespace's padded (`noisy`), numerous (`crowd`) or after 1.5 s (`sluggish`). Every
/// request is kept.
async fn stand_in() -> (String, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
    let seen = Arc::new(Mutex::new(vec![]));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (s, f) = (seen.clone(), in_flight.clone());
    let app = Router::new().route(
        "/api/v1/query",
        any(move |uri: Uri, body: String| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                let asked = format!("{} {body}", uri.query().unwrap_or_default());
                if let Ok(mut s) = s.lock() {
                    s.push(asked.clone());
                }
                let pad = format!(r#","pad":"{}""#, "x".repeat(PAD));
                let grouped = asked.contains("by+%28") || asked.contains("by%20%28");
                let text = if grouped {
                    let mut all = vec![];
                    if asked.contains("shop") {
                        all.push(series("shop", "web", ""));
                    }
                    if asked.contains("noisy") {
                        all.push(series("noisy", "web", &pad));
                    }
                    if asked.contains("crowd") {
                        all.extend((0..50).map(|i| series("crowd", &format!("s{i}"), "")));
                    }
                    if asked.contains("sluggish") {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        all.push(series("sluggish", "web", ""));
                    }
                    vector(&all)
                } else if asked.contains("padded") {
                    vector(&[series("shop", "web", &pad)])
                } else if asked.contains("many") {
                    vector(
                        &(0..50)
                            .map(|i| series("shop", &format!("s{i}"), ""))
                            .collect::<Vec<_>>(),
                    )
                } else {
                    if asked.contains("slow") {
                        f.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(600)).await;
                        f.fetch_sub(1, Ordering::SeqCst);
                    }
                    vector(&[series("shop", "web", "")])
                };
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    text,
                )
            }
        }),
    );
    (serve(app).await, seen, in_flight)
}

/// Serves `app` on a free local port; its base URL.
pub(super) async fn serve(app: Router) -> String {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn limits() -> Limits {
    Limits {
        max_response_bytes: 64 << 10,
        max_series: 10,
        namespace_share: 1,
        ..Limits::default()
    }
}

fn setup(address: &str) -> (Batcher, Source, Prometheus, Metrics) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let metrics = Metrics::default();
    let batcher = Batcher::new(
        Duration::from_millis(20),
        Duration::from_millis(1),
        metrics.clone(),
    );
    let source = Source {
        address: address.into(),
        token: None,
        tenant: None,
    };
    let Ok(p) = Prometheus::new(address, Duration::from_secs(5), None, limits()) else {
        panic!("client")
    };
    (batcher, source, p, metrics)
}

fn text(promql: &str, namespace: &str) -> Ask {
    Ask::Text {
        promql: promql.into(),
        range: None,
        namespace: namespace.into(),
    }
}

fn over(r: &Result<Sample, QueryError>, flag: &str) -> bool {
    matches!(r, Err(QueryError::OverLimit(m)) if m.contains(flag))
}

#[tokio::test]
async fn a_padded_response_is_refused_naming_the_cap_and_the_timeout_is_sent() {
    let (address, seen, _) = stand_in().await;
    let (batcher, source, p, _) = setup(&address);
    let r = batcher
        .answer(
            &source,
            &p,
            &text(r#"sum(padded{namespace="shop"})"#, "shop"),
        )
        .await;
    assert!(over(&r, "--max-response-bytes"), "{r:?}");
    let shown = format!("{:?}", r);
    assert!(shown.contains("64KiB"), "{shown}");
    let ok = batcher
        .answer(&source, &p, &text(r#"sum(up{namespace="shop"})"#, "shop"))
        .await;
    assert_eq!(ok, Ok(Sample::Value(0.2)));
    let seen = seen.lock().map(|s| s.join("\n")).unwrap_or_default();
    assert!(seen.contains("timeout=4500ms"), "{seen}");
}

#[tokio::test]
async fn too_many_series_are_refused_naming_the_cap() {
    let (address, _, _) = stand_in().await;
    let (batcher, source, p, _) = setup(&address);
    let r = batcher
        .answer(&source, &p, &text(r#"many{namespace="shop"}"#, "shop"))
        .await;
    assert!(over(&r, "--max-series"), "{r:?}");
}

fn member(namespace: &str) -> Ask {
    Ask::Member {
        template: Template::RateSum {
            metric: "http_request_duration_seconds".into(),
            window: "1m".into(),
            keys: vec!["service".into()],
        },
        namespace: namespace.into(),
        labels: BTreeMap::from([("service".into(), "web".into())]),
    }
}

#[tokio::test]
async fn one_namespace_over_a_cap_in_a_grouped_query_costs_only_itself() {
    let (address, _, _) = stand_in().await;
    let (batcher, source, p, _) = setup(&address);
    // Padded: the grouped answer is over the cap; each namespace is then asked alone.
    let asks = [member("shop"), member("noisy")];
    let r = join_all(asks.iter().map(|a| batcher.answer(&source, &p, a))).await;
    assert_eq!(r[0], Ok(Sample::Value(0.2)));
    assert!(over(&r[1], "--max-response-bytes"), "{:?}", r[1]);
    // Numerous: only that namespace's members are dropped.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let asks = [member("shop"), member("crowd")];
    let r = join_all(asks.iter().map(|a| batcher.answer(&source, &p, a))).await;
    assert_eq!(r[0], Ok(Sample::Value(0.2)));
    assert!(over(&r[1], "--max-series"), "{:?}", r[1]);
    let shown = format!("{:?}", r[1]);
    assert!(shown.contains("50 series for namespace crowd"), "{shown}");
}

fn until(t: Instant) -> Duration {
    t.saturating_duration_since(Instant::now())
}

/// The noisy namespace asks a different slow query (numbered from `first`) through each of
/// `sources`, all at once.
fn slow_noisy_asks(
    batcher: &Arc<Batcher>,
    p: &Prometheus,
    sources: impl Iterator<Item = Source>,
    first: usize,
) -> Vec<tokio::task::JoinHandle<Result<Sample, QueryError>>> {
    sources
        .enumerate()
        .map(|(i, s)| (i + first, s))
        .map(|(i, s)| {
            let (b, p) = (batcher.clone(), p.clone());
            tokio::spawn(async move {
                b.answer(&s, &p, &text(&format!("slow{{q=\"{i}\"}}"), "noisy"))
                    .await
            })
        })
        .collect()
}

#[tokio::test]
async fn a_namespace_has_one_share_however_many_ways_it_names_its_prometheus() {
    let (address, _, in_flight) = stand_in().await;
    let (batcher, source, p, _) = setup(&address);
    let batcher = Arc::new(batcher);
    // Ten sources (its own token for each, say) reaching the same Prometheus: still one
    // query of the noisy namespace at a time. Seven asked at once wait their turn (600 ms
    // each); the three asked once that backlog has lasted, four or more still waiting, are
    // refused.
    let sources: Vec<Source> = (0..10)
        .map(|i| Source {
            token: Some(format!("token-{i}")),
            tenant: Some("noisy".into()),
            ..source.clone()
        })
        .collect();
    let asked = Instant::now();
    let mut noisy = slow_noisy_asks(&batcher, &p, sources[..7].iter().cloned(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        in_flight.load(Ordering::SeqCst),
        1,
        "one slot, across sources"
    );
    let healthy = batcher
        .answer(&source, &p, &text(r#"sum(up{namespace="shop"})"#, "shop"))
        .await;
    assert_eq!(healthy, Ok(Sample::Value(0.2)));
    tokio::time::sleep(until(asked + BACKLOG_GRACE + Duration::from_millis(100))).await;
    noisy.extend(slow_noisy_asks(
        &batcher,
        &p,
        sources[7..].iter().cloned(),
        7,
    ));
    let refused = join_all(noisy)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(r) if over(r, "--namespace-queries")))
        .count();
    assert_eq!(refused, 3);
}

#[tokio::test]
async fn forecast_and_calibration_reads_take_a_share_apart_from_evaluations() {
    let (address, _, _) = stand_in().await;
    let (batcher, source, p, _) = setup(&address);
    let batcher = Arc::new(batcher);
    // Six background reads of a second each of the noisy namespace: one runs, five wait. A
    // seventh asked once the backlog has lasted (four still waiting) is refused naming the
    // flag.
    let started = Instant::now();
    let reads: Vec<_> = (0..6)
        .map(|_| {
            let (b, s) = (batcher.clone(), source.clone());
            tokio::spawn(async move {
                // The sleep starts when the read does (a Sleep made now would end at t0 + 1 s).
                let read = async { tokio::time::sleep(Duration::from_secs(1)).await };
                b.in_share("noisy", &s, read).await
            })
        })
        .collect();
    tokio::time::sleep(until(started + BACKLOG_GRACE + Duration::from_millis(100))).await;
    let seventh = batcher.in_share("noisy", &source, async {}).await;
    assert!(
        matches!(&seventh, Err(QueryError::OverLimit(m)) if m.contains("--namespace-queries")),
        "{seventh:?}"
    );
    // Its own evaluations and another namespace's are answered at once, not behind them.
    for ns in ["noisy", "shop"] {
        let asked = Instant::now();
        let query = format!(r#"sum(up{{namespace="{ns}"}})"#);
        let answer = batcher.answer(&source, &p, &text(&query, ns)).await;
        assert_eq!(answer, Ok(Sample::Value(0.2)));
        assert!(asked.elapsed() < Duration::from_millis(150), "{ns}");
    }
    // Each is timed from its start, not from its wait (the last waited 5 s).
    let read = Duration::from_millis(1000)..Duration::from_millis(1400);
    for r in join_all(reads).await {
        assert!(
            matches!(&r, Ok(Ok(((), took))) if read.contains(took)),
            "{r:?}"
        );
    }
    // One at a time: six reads of a second took six.
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_namespace_uses_only_its_share_and_the_others_do_not_wait() {
    let (address, _, in_flight) = stand_in().await;
    let (batcher, source, p, metrics) = setup(&address);
    let batcher = Arc::new(batcher);
    // The noisy namespace asks 7 different slow queries (600 ms each) at once; its share is
    // one at a time, so they wait their turn. The three it asks once that backlog has lasted,
    // four or more still waiting, are refused.
    let asked = Instant::now();
    let mut noisy = slow_noisy_asks(&batcher, &p, std::iter::repeat_n(source.clone(), 7), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(in_flight.load(Ordering::SeqCst), 1, "one slot of its share");
    let healthy = batcher
        .answer(&source, &p, &text(r#"sum(up{namespace="shop"})"#, "shop"))
        .await;
    assert_eq!(healthy, Ok(Sample::Value(0.2)));
    // Answered while the noisy namespace's queries still run one after another (4.2 s).
    assert_eq!(
        in_flight.load(Ordering::SeqCst),
        1,
        "the healthy namespace waited behind the noisy one"
    );
    tokio::time::sleep(until(asked + BACKLOG_GRACE + Duration::from_millis(100))).await;
    noisy.extend(slow_noisy_asks(
        &batcher,
        &p,
        std::iter::repeat_n(source.clone(), 3),
        7,
    ));
    let mut refused = 0;
    for r in join_all(noisy).await {
        match r {
            Ok(r) if over(&r, "--namespace-queries") => refused += 1,
            Ok(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 3);
    let text = metrics.render();
    assert!(
        text.contains(r#"headroom_namespace_query_refusals_total{namespace="noisy"} 3"#),
        "{text}"
    );
    assert!(text.contains(r#"headroom_namespace_queries_total{namespace="noisy"} 7"#));
    let covered: BTreeSet<&str> = ["noisy", "shop"].into();
    assert!(
        covered
            .iter()
            .all(|ns| text.contains(&format!("namespace=\"{ns}\"")))
    );
}

#[tokio::test]
async fn a_burst_of_quick_queries_from_one_namespace_waits_its_turn_and_is_not_refused() {
    let (address, _, _) = stand_in().await;
    let (batcher, source, p, metrics) = setup(&address);
    // Twelve policies of one namespace due at once, each with a query of its own: more than
    // its share holds (one at a time, four waiting), but each is answered in milliseconds.
    // On a fleet of 200 web policies (20 a namespace) such bursts were refused and read as
    // Unknown indicators.
    let asks: Vec<Ask> = (0..12)
        .map(|i| text(&format!(r#"sum(up{{namespace="shop",q="{i}"}})"#), "shop"))
        .collect();
    let answers = join_all(asks.iter().map(|a| batcher.answer(&source, &p, a))).await;
    assert!(
        answers.iter().all(|a| *a == Ok(Sample::Value(0.2))),
        "{answers:?}"
    );
    let text = metrics.render();
    assert!(
        !text.contains(r#"headroom_namespace_query_refusals_total{namespace="shop"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_costly_query_is_refused_before_it_is_sent_on_every_path() {
    let (address, seen, _) = stand_in().await;
    let (_, _, p, _) = setup(&address);
    // Calibrations and forecasts call the client directly, not through an evaluation.
    let r = p
        .range_between("count_over_time(x[30d])", 0, 3600, 60.0)
        .await;
    assert!(
        matches!(&r, Err(QueryError::OverLimit(m)) if m.contains("--max-query-lookback")),
        "{r:?}"
    );
    let r = p.scalar("max_over_time(x[1h:100ms])").await;
    assert!(
        matches!(&r, Err(QueryError::OverLimit(m)) if m.contains("--min-subquery-step")),
        "{r:?}"
    );
    assert!(seen.lock().map(|s| s.is_empty()).unwrap_or(false));
}

#[tokio::test]
async fn responses_held_at_once_are_bounded_across_clients_naming_the_flag() {
    let (address, _, _) = stand_in().await;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A per-response cap that lets a padded answer through: only the shared bound stops it.
    let wide = Limits {
        max_response_bytes: 4 << 20,
        ..limits()
    };
    let bound = super::InFlight::new(100 << 10);
    let client = |a: &str| match Prometheus::new(a, Duration::from_secs(5), None, wide) {
        Ok(p) => p.bounded_by(bound.clone()),
        Err(e) => panic!("client: {e}"),
    };
    // Two spellings of one Prometheus, as two sources would be: one bound for both.
    let (a, b) = (client(&address), client(&format!("{address}/")));
    let padded = a.scalar(r#"sum(padded{namespace="shop"})"#).await;
    assert!(
        matches!(&padded, Err(QueryError::OverLimit(m)) if m.contains("--max-response-bytes-in-flight") && m.contains("100KiB")),
        "{padded:?}"
    );
    // An ordinary answer is never refused by it, and nothing stays held.
    assert_eq!(b.scalar(r#"sum(up{namespace="shop"})"#).await, Ok(0.2));
    assert_eq!(bound.held(), 0);
    // Unbounded (the default), the same padded answer is read.
    let free = Prometheus::new(&address, Duration::from_secs(5), None, wide);
    let read = match free {
        Ok(p) => p.scalar(r#"sum(padded{namespace="shop"})"#).await,
        Err(e) => panic!("client: {e}"),
    };
    assert_eq!(read, Ok(0.2));
}

#[tokio::test]
async fn a_namespace_that_makes_a_grouped_query_slow_is_split_out_and_waits_alone() {
    let (address, seen, _) = stand_in().await;
    let (batcher, source, p, metrics) = setup(&address);
    let ask = |ns: &'static str| {
        let (b, s, p) = (&batcher, &source, &p);
        async move {
            let started = Instant::now();
            let r = b.answer(s, p, &member(ns)).await;
            (r, started.elapsed())
        }
    };
    // One grouped query covers both: everyone waits for the slow part.
    let (shop, slow) = futures::join!(ask("shop"), ask("sluggish"));
    assert_eq!(shop.0, Ok(Sample::Value(0.2)));
    assert_eq!(slow.0, Ok(Sample::Value(0.2)));
    assert!(shop.1 >= Duration::from_millis(1400), "{:?}", shop.1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // Split from then on: each namespace asks its own part in its own share.
    let (shop, slow) = futures::join!(ask("shop"), ask("sluggish"));
    assert_eq!(shop.0, Ok(Sample::Value(0.2)));
    assert_eq!(slow.0, Ok(Sample::Value(0.2)));
    assert!(
        shop.1 < Duration::from_millis(700),
        "the healthy namespace waited {:?} for the slow one",
        shop.1
    );
    assert!(slow.1 >= Duration::from_millis(1400), "{:?}", slow.1);
    let seen = seen.lock().map(|s| s.join("\n")).unwrap_or_default();
    let alone = seen
        .lines()
        .filter(|l| l.contains("shop") && !l.contains("sluggish"))
        .count();
    assert!(alone >= 1, "no query for shop alone:\n{seen}");
    // Each namespace is charged its part of the grouped query, then its own split query.
    let text = metrics.render();
    for ns in ["shop", "sluggish"] {
        assert!(
            text.contains(&format!(
                r#"headroom_namespace_queries_total{{namespace="{ns}"}} 2"#
            )),
            "{text}"
        );
    }
}
