//! The idle-queue benchmark (`--family idle`): queue workers that are idle most of the day
//! (a nightly export, webhook retries in bursts, a trickle of single jobs), scaled from and
//! to zero by Headroom (minReplicas 0) and by KEDA at its defaults (polling 30 s, cooldown
//! 300 s, the HPA from one replica up), beside the HPA, which cannot go below one.

use super::autoscaler::Kind;
use super::draws::{between, log_between};
use super::model::Params;
use super::rng::Rng;
use super::traffic::Trace;
use super::{Policy, run_probed, setup};

const KINDS: [Kind; 3] = [Kind::Headroom, Kind::Keda, Kind::Hpa];
const SHAPES: [&str; 3] = ["nightly", "retries", "trickle"];
const SECONDS: usize = 6 * 3600;

/// One generated idle queue.
pub struct Case {
    pub trace: Trace,
    pub params: Params,
    pub scrape_seconds: usize,
    pub about: String,
}

/// Jobs arriving in each second of six hours, mostly none.
fn jobs(rng: &mut Rng, shape: &str) -> (Vec<f64>, String) {
    let mut jobs = vec![0.0; SECONDS];
    let mut add = |at: usize, total: f64, over: usize| {
        let end = (at + over).min(SECONDS);
        for j in jobs.iter_mut().take(end).skip(at) {
            *j += total / over as f64;
        }
    };
    let about = match shape {
        "nightly" => {
            let at = between(rng, 3600.0, 5.0 * 3600.0) as usize;
            let (total, over) = (
                log_between(rng, 2_000.0, 40_000.0),
                between(rng, 60.0, 600.0),
            );
            add(at, total.round(), over as usize);
            format!("one batch of {total:.0} jobs over {over:.0}s")
        }
        "retries" => {
            let period = between(rng, 300.0, 1800.0);
            let size = log_between(rng, 20.0, 500.0);
            let mut t = between(rng, 0.0, period);
            while (t as usize) < SECONDS {
                let over = between(rng, 5.0, 30.0) as usize;
                add(t as usize, (size * between(rng, 0.5, 1.5)).round(), over);
                t += period * between(rng, 0.8, 1.2);
            }
            format!("bursts of ~{size:.0} jobs every ~{period:.0}s")
        }
        _ => {
            let gap = between(rng, 60.0, 900.0);
            let mut t = 0.0;
            loop {
                t += -gap * (1.0 - rng.uniform()).ln();
                if t as usize >= SECONDS {
                    break;
                }
                add(t as usize, 1.0, 1);
            }
            format!("single jobs every ~{gap:.0}s")
        }
    };
    (jobs, about)
}

pub fn case(seed: u64, index: usize) -> Case {
    let mut rng = Rng::new(seed.wrapping_mul(7_000_003).wrapping_add(index as u64));
    let shape = SHAPES[index % SHAPES.len()];
    let (jobs, about) = jobs(&mut rng, shape);
    let params = Params {
        startup_seconds: between(&mut rng, 20.0, 120.0) as usize,
        ..Params::default()
    };
    let scrape_seconds = if rng.uniform() < 0.5 { 15 } else { 30 };
    // A small steady web tier beside them: the figures are the workers'.
    let requests = vec![50.0; SECONDS];
    Case {
        about: format!(
            "{shape}: {about}; start-up {}s, scrape {scrape_seconds}s",
            params.startup_seconds
        ),
        trace: Trace {
            name: format!("idle-{index}"),
            noise: vec![1.0; SECONDS],
            requests,
            jobs,
            ..Default::default()
        },
        params,
        scrape_seconds,
    }
}

/// What one autoscaler did to the workers of one case.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Workers {
    pub replica_minutes: f64,
    /// The oldest message's age, at its worst.
    pub max_age_seconds: f64,
    /// Longest wait from a message at zero workers to the first worker asked for.
    pub activation_seconds: Option<f64>,
    /// Seconds with messages waiting and no worker asked for.
    pub unattended_seconds: f64,
}

pub struct Row {
    pub about: String,
    pub by_kind: Vec<(Kind, Workers)>,
}

pub fn run_case(seed: u64, index: usize, web: &Policy, worker: &Policy) -> Row {
    let c = case(seed, index);
    let mut s = setup(&c.trace.name, web.clone(), worker.clone());
    s.params = c.params;
    s.scrape_seconds = c.scrape_seconds;
    let by_kind = KINDS
        .iter()
        .map(|k| {
            let mut w = Workers::default();
            let mut waiting_since: Option<usize> = None;
            let outcome = run_probed(*k, &c.trace, &s, &mut |_| {}, &mut |now, snap, app| {
                let asked = app.workers.replicas();
                if snap.backlog > 0.0 && asked == 0 {
                    w.unattended_seconds += 1.0;
                    waiting_since.get_or_insert(now);
                } else if let Some(from) = waiting_since.take() {
                    let wait = (now - from) as f64;
                    w.activation_seconds = Some(w.activation_seconds.unwrap_or(0.0).max(wait));
                }
            });
            w.replica_minutes = outcome.worker_replica_minutes;
            w.max_age_seconds = outcome.max_queue_age_seconds;
            (*k, w)
        })
        .collect();
    Row {
        about: c.about,
        by_kind,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

fn of(row: &Row, kind: Kind) -> Workers {
    row.by_kind
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, w)| *w)
        .unwrap_or_default()
}

/// The summary table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{} idle-queue traces (workers only)\nautoscaler worker-replica-min p50  oldest message max p50/p90  longest start from zero p50\n",
        rows.len()
    );
    for k in KINDS {
        let col = |f: &dyn Fn(Workers) -> Option<f64>| {
            rows.iter()
                .filter_map(|r| f(of(r, k)))
                .collect::<Vec<f64>>()
        };
        let ages = col(&|w| Some(w.max_age_seconds));
        let p90 = {
            let mut a = ages.clone();
            a.sort_by(f64::total_cmp);
            a.get(((a.len() as f64 - 1.0) * 0.9).round().max(0.0) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        out.push_str(&format!(
            "{:<10} {:>18.1}  {:>13.0}s / {:>5.0}s  {:>20}\n",
            k.name(),
            median(col(&|w| Some(w.replica_minutes))),
            median(ages),
            p90,
            match col(&|w| w.activation_seconds) {
                v if v.is_empty() => "never at zero".to_string(),
                v => format!("{:.0}s", median(v)),
            }
        ));
    }
    let ratio = |f: &dyn Fn(Workers) -> f64, against: Kind| {
        median(
            rows.iter()
                .map(|r| (f(of(r, Kind::Headroom)) + 0.1) / (f(of(r, against)) + 0.1))
                .collect(),
        )
    };
    for against in [Kind::Keda, Kind::Hpa] {
        let older = rows
            .iter()
            .filter(|r| {
                of(r, Kind::Headroom).max_age_seconds > of(r, against).max_age_seconds + 1.0
            })
            .count();
        out.push_str(&format!(
            "headroom vs {:<4}: worker replica-min ratio p50 {:.2}; oldest message ratio p50 {:.2}; oldest message older on {older} of {}\n",
            against.name(),
            ratio(&|w| w.replica_minutes, against),
            ratio(&|w| w.max_age_seconds, against),
            rows.len()
        ));
    }
    out
}

/// The Markdown report, with the targets and every trace.
pub fn report(rows: &[Row], seed: u64) -> String {
    let mut md = format!(
        "# Idle queues: scale to zero\n\n{} generated six-hour worker traces (seed {seed}): one nightly batch, bursts of retries, or a trickle of single jobs; pod start-up 20-120 s, scrape 15 or 30 s. Worker policy: deploy/examples/worker-idle.yaml (or `--policy`). KEDA at its defaults: pollingInterval 30 s, cooldownPeriod 300 s, its HPA from 1 up.\n\n```\n{}```\n\n## Traces\n\n| trace | drawn | headroom worker-min | keda | hpa | headroom oldest s | keda | hpa |\n|---|---|---|---|---|---|---|---|\n",
        rows.len(),
        table(rows)
    );
    for (i, r) in rows.iter().enumerate() {
        let (h, k, p) = (of(r, Kind::Headroom), of(r, Kind::Keda), of(r, Kind::Hpa));
        md.push_str(&format!(
            "| idle-{i} | {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0} |\n",
            r.about,
            h.replica_minutes,
            k.replica_minutes,
            p.replica_minutes,
            h.max_age_seconds,
            k.max_age_seconds,
            p.max_age_seconds
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{EXAMPLE_WEB, parse_policy};

    const IDLE: &str = include_str!("../../deploy/examples/worker-idle.yaml");

    #[test]
    fn idle_workers_cost_about_what_keda_costs_and_messages_wait_less() {
        let (Ok(web), Ok(worker)) = (parse_policy(EXAMPLE_WEB, "web"), parse_policy(IDLE, "idle"))
        else {
            panic!("example policies");
        };
        // A nightly batch and a burst of retries: both go to zero between them, Headroom
        // within an interval of the first message, KEDA within its 30 s poll.
        for index in [0, 1] {
            let r = run_case(1, index, &web, &worker);
            let (h, k, p) = (
                of(&r, Kind::Headroom),
                of(&r, Kind::Keda),
                of(&r, Kind::Hpa),
            );
            assert!(
                h.replica_minutes < p.replica_minutes,
                "{}: {h:?} vs hpa {p:?}",
                r.about
            );
            assert!(
                h.replica_minutes <= k.replica_minutes * 1.1,
                "{}: {h:?} vs keda {k:?}",
                r.about
            );
            let start = h.activation_seconds.unwrap_or(f64::INFINITY);
            assert!(start <= 15.0 + 30.0 + 1.0, "{}: {h:?}", r.about);
            assert!(
                h.max_age_seconds <= k.max_age_seconds + 1.0,
                "{}: {h:?} vs keda {k:?}",
                r.about
            );
        }
    }

    #[test]
    fn cases_are_mostly_idle_and_deterministic() {
        for i in 0..3 {
            let (a, b) = (case(1, i), case(1, i));
            assert_eq!(a.trace.jobs, b.trace.jobs);
            let busy = a.trace.jobs.iter().filter(|j| **j > 0.0).count();
            assert!(busy > 0 && busy < SECONDS / 4, "{}: {busy}", a.about);
        }
    }
}
