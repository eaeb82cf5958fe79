//! What predictive scaling costs a fleet: the memory each policy's histories and forecast
//! hold, and the CPU of one learning, over a week of five-minute steps (the default lookback)
//! and the last 12 hours at 30 s.
//! Prints the figures and writes target/bench/predictive-cost.md; asserts only the memory,
//! which the history's fixed coding bounds (never a wall-clock time).

use std::time::Instant;

use headroom::predict::{Histories, SHORT_POINTS, SHORT_STEP_SECONDS, Settings, learn_all};

const STEP: u32 = 300;
const WEEK: usize = 2016;
const POLICIES: usize = 10_000;
const KINDS: usize = 4;

/// A small deterministic generator: the test needs varied, not random, histories.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Policy `i`'s load at second `t`: a daily shape, an hourly batch, noise alone, or a 90 s
/// burst every 12 minutes, at its own level.
fn load(i: usize, level: f64, t: i64) -> f64 {
    let day = (t % 86_400) as f64 / 86_400.0;
    match i % KINDS {
        0 => level * (0.3 + 0.7 * (0.5 - 0.5 * (std::f64::consts::TAU * day).cos())),
        1 if t % 3600 < 600 => level * 3.0,
        3 if t % 720 < 90 => level * 5.0,
        _ => level,
    }
}

/// Policy `i`'s week at five minutes and its last 12 hours at 30 s.
fn histories(i: usize) -> Histories {
    let mut rng = Lcg(i as u64 + 1);
    let level = 10.0 + 1000.0 * rng.next();
    let mut h = Histories::new(STEP, WEEK);
    let end = WEEK as i64 * i64::from(STEP);
    for t in 0..WEEK as i64 {
        let at = t * i64::from(STEP);
        let mean = (0..10).map(|k| load(i, level, at + k * 30)).sum::<f64>() / 10.0;
        h.long.record(at, mean * (1.0 + 0.2 * (rng.next() - 0.5)));
    }
    let short = i64::from(SHORT_STEP_SECONDS);
    for k in 0..SHORT_POINTS as i64 {
        let at = end - SHORT_POINTS as i64 * short + k * short;
        let mean = (load(i, level, at - 60) + load(i, level, at - 30)) / 2.0;
        h.short.record(at, mean * (1.0 + 0.2 * (rng.next() - 0.5)));
    }
    h
}

#[test]
fn predictive_scaling_costs_a_fleet_a_few_kilobytes_a_policy() {
    let sample = 200;
    let settings = Settings::default();
    let (mut bytes, mut trusted) = (0usize, [0usize; KINDS]);
    let started = Instant::now();
    for i in 0..sample {
        let h = histories(i);
        let l = learn_all(&h, &settings);
        bytes += h.bytes() + l.bytes();
        trusted[i % KINDS] += usize::from(l.trusted);
    }
    let learn_ms = started.elapsed().as_secs_f64() * 1000.0 / sample as f64;
    let per_policy = bytes as f64 / sample as f64;
    let fleet_mib = per_policy * POLICIES as f64 / (1024.0 * 1024.0);
    // Default pacing: 2 learnings a second across the fleet (--forecasts-per-second).
    let first_pass_minutes = POLICIES as f64 / 2.0 / 60.0;
    let report = format!(
        "# Predictive scaling: what it costs a fleet\n\n\
         A week of 5-minute steps (the default lookback) and the last 12 hours at 30 s, {sample} policies \
         (daily, hourly, none, bursts every 12 minutes), trusted: {daily} daily, {hourly} hourly, {none} without a pattern, \
         {bursts} bursts.\n\n\
         - memory per policy (history and forecast): {per_policy:.0} bytes; {POLICIES} policies: {fleet_mib:.1} MiB\n\
         - one learning (period, backtest, forecast): {learn_ms:.1} ms of CPU (this build)\n\
         - at the default --forecasts-per-second 2: a new operator learns {POLICIES} policies in {first_pass_minutes:.0} minutes, \
         at most {busy_ms:.0} ms of CPU a second; then four range queries a second (both histories), each only the steps new since the last\n",
        busy_ms = 2.0 * learn_ms,
        daily = trusted[0],
        hourly = trusted[1],
        none = trusted[2],
        bursts = trusted[3],
    );
    println!("{report}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    std::fs::write(dir.join("predictive-cost.md"), &report)
        .expect("write target/bench/predictive-cost.md");
    assert!(per_policy <= 10.0 * 1024.0, "{per_policy} bytes a policy");
    assert_eq!(trusted[2], 0, "noise alone is never trusted");
    assert_eq!(
        trusted[3],
        sample / KINDS,
        "bursts every 12 minutes are learned"
    );
}
