//! Traffic scenarios: offered web requests and queue jobs per second over time.

use super::rng::Rng;

/// Built-in scenarios, by the names `--scenario` takes.
pub const SCENARIOS: [&str; 6] = [
    "steady",
    "diurnal",
    "launch",
    "viral",
    "creeping",
    "database-bound",
];

/// Offered load, per second of the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub name: String,
    pub requests: Vec<f64>,
    pub jobs: Vec<f64>,
    /// Each second's noise factor, where the trace was generated (empty otherwise): the load
    /// over it is the trend a perfect forecast could know.
    pub noise: Vec<f64>,
    /// Seconds at the start that are history only: in Prometheus, not played or scored.
    pub warmup: usize,
    /// Each second's recurring part of the load (a day's shape, a spike at the same time
    /// each day, hourly batches), where the trace was generated with one (empty otherwise):
    /// what a perfect pattern forecast could know.
    pub pattern: Vec<f64>,
}

impl Trace {
    pub fn seconds(&self) -> usize {
        self.requests.len()
    }
}

const BASE: f64 = 40.0;

/// When the launch scenario's step comes, in seconds from its start.
pub const LAUNCH_STEP_SECONDS: i64 = 3600;

fn build(name: &str, seconds: usize, f: impl Fn(f64) -> f64, jobs_share: f64) -> Trace {
    let requests: Vec<f64> = (0..seconds).map(|t| f(t as f64).max(0.0)).collect();
    let jobs = requests.iter().map(|r| r * jobs_share).collect();
    Trace {
        name: name.into(),
        requests,
        jobs,
        ..Trace::default()
    }
}

/// A built-in scenario; None for an unknown name.
pub fn scenario(name: &str, seed: u64) -> Option<Trace> {
    let hour = 3600.0;
    Some(match name {
        "steady" => {
            // ±10% noise that changes every 10 seconds.
            let mut rng = Rng::new(seed);
            let noise: Vec<f64> = (0..=720)
                .map(|_| 0.1 * rng.normal().clamp(-3.0, 3.0))
                .collect();
            build(
                name,
                7200,
                move |t| BASE * (1.0 + noise[(t / 10.0) as usize]),
                0.25,
            )
        }
        "diurnal" => build(
            name,
            86_400,
            |t| BASE * (0.95 - 0.6 * (std::f64::consts::TAU * t / 86_400.0).cos()),
            0.25,
        ),
        // A launch-day step: 5x for two hours.
        "launch" => build(
            name,
            4 * 3600,
            |t| {
                let step = LAUNCH_STEP_SECONDS as f64;
                if (step..step + 2.0 * hour).contains(&t) {
                    5.0 * BASE
                } else {
                    BASE
                }
            },
            0.25,
        ),
        // Viral: 50x within two hours, then decay with a 45-minute half-life.
        "viral" => build(
            name,
            6 * 3600,
            |t| {
                let start = 0.5 * hour;
                let peak = 2.5 * hour;
                if t < start {
                    BASE
                } else if t < peak {
                    BASE * 50f64.powf((t - start) / (peak - start))
                } else {
                    BASE * (1.0 + 49.0 * 0.5f64.powf((t - peak) / (0.75 * hour)))
                }
            },
            0.25,
        ),
        // Flat traffic; the model's service time grows instead.
        "creeping" => build(name, 3 * 3600, |_| BASE * 2.0, 0.25),
        // Flat traffic against a database near saturation (see Params::for_scenario).
        "database-bound" => build(name, 3 * 3600, |_| BASE * 1.2, 0.25),
        _ => return None,
    })
}

/// A CSV trace: `seconds,requests_per_second,jobs_per_second`, any spacing, interpolated.
/// Longest trace `simulate --trace` replays: 31 days of one-second steps.
pub const MAX_TRACE_SECONDS: f64 = 31.0 * 86_400.0;
/// Most rows a trace may have.
pub const MAX_TRACE_ROWS: usize = 1_000_000;
/// Highest rate a trace may ask for, per second.
pub const MAX_TRACE_RATE: f64 = 1e9;

/// A trace file, named for its file's stem (`--trace`).
pub fn read_trace(path: &std::path::Path) -> Result<Trace, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--trace {}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "trace".into());
    from_csv(&name, &text).map_err(|e| format!("--trace {}: {e}", path.display()))
}

pub fn from_csv(name: &str, text: &str) -> Result<Trace, String> {
    let mut points: Vec<(f64, f64, f64)> = vec![];
    for (i, line) in text.lines().enumerate() {
        if points.len() >= MAX_TRACE_ROWS {
            return Err(format!(
                "line {}: a trace has at most {MAX_TRACE_ROWS} rows",
                i + 1
            ));
        }
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("seconds")) {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |k: usize, what: &str| -> Result<f64, String> {
            cols.get(k)
                .ok_or_else(|| format!("line {}: missing {what}", i + 1))?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!(
                        "line {}: {what} must be a number >= 0, got {:?}",
                        i + 1,
                        cols[k]
                    )
                })
        };
        let p = (
            num(0, "seconds")?,
            num(1, "requests_per_second")?,
            num(2, "jobs_per_second")?,
        );
        if let Some(last) = points.last()
            && p.0 <= last.0
        {
            return Err(format!("line {}: seconds must increase", i + 1));
        }
        if let Some(first) = points.first()
            && p.0 - first.0 > MAX_TRACE_SECONDS
        {
            return Err(format!(
                "line {}: seconds: a trace spans at most {MAX_TRACE_SECONDS} seconds (31 days), got {}",
                i + 1,
                p.0 - first.0
            ));
        }
        if p.1 > MAX_TRACE_RATE || p.2 > MAX_TRACE_RATE {
            return Err(format!(
                "line {}: rates must be at most {MAX_TRACE_RATE} per second",
                i + 1
            ));
        }
        points.push(p);
    }
    let (Some(first), Some(last)) = (points.first().copied(), points.last().copied()) else {
        return Err(
            "the trace has no rows; expected seconds,requests_per_second,jobs_per_second".into(),
        );
    };
    let seconds = (last.0 - first.0).floor() as usize + 1;
    let at = |t: f64, pick: fn(&(f64, f64, f64)) -> f64| -> f64 {
        let t = first.0 + t;
        let i = points.partition_point(|p| p.0 <= t);
        match (points.get(i.wrapping_sub(1)), points.get(i)) {
            (Some(a), Some(b)) => pick(a) + (pick(b) - pick(a)) * (t - a.0) / (b.0 - a.0),
            (Some(a), None) => pick(a),
            (None, Some(b)) => pick(b),
            (None, None) => 0.0,
        }
    };
    Ok(Trace {
        name: name.into(),
        requests: (0..seconds).map(|t| at(t as f64, |p| p.1)).collect(),
        jobs: (0..seconds).map(|t| at(t as f64, |p| p.2)).collect(),
        ..Trace::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_are_bounded_in_length_rows_and_rates() {
        for (csv, says) in [
            ("0,1,1\n1000000000000000,1,1\n", "at most 2678400 seconds"),
            ("0,1,1\n1e300,1,1\n", "at most 2678400 seconds"),
            ("0,1e300,1\n", "rates must be at most"),
            ("0,1,1\n0,1,1\n", "seconds must increase"),
        ] {
            let e = from_csv("t", csv).err().unwrap_or_default();
            assert!(e.contains(says), "{csv}: {e}");
        }
        let many: String = (0..=MAX_TRACE_ROWS).map(|i| format!("{i},1,1\n")).collect();
        let e = from_csv("t", &many).err().unwrap_or_default();
        assert!(e.contains("at most 1000000 rows"), "{e}");
    }

    #[test]
    fn scenarios_have_their_shapes() {
        let launch = scenario("launch", 1).unwrap();
        assert_eq!(launch.requests[0], BASE);
        assert_eq!(launch.requests[3600], 5.0 * BASE);
        let viral = scenario("viral", 1).unwrap();
        assert!((viral.requests[9000] - 50.0 * BASE).abs() < 1e-6);
        let steady = scenario("steady", 7).unwrap();
        assert_eq!(
            steady,
            scenario("steady", 7).unwrap(),
            "deterministic for a seed"
        );
        assert!(scenario("nope", 1).is_none());
        for s in SCENARIOS {
            assert!(scenario(s, 1).is_some(), "{s}");
        }
    }

    #[test]
    fn csv_traces_are_interpolated_and_checked() {
        let t = from_csv(
            "t",
            "seconds,requests_per_second,jobs_per_second\n0,10,1\n10,20,2\n",
        )
        .unwrap();
        assert_eq!(t.seconds(), 11);
        assert_eq!(t.requests[5], 15.0);
        assert_eq!(t.jobs[10], 2.0);
        assert!(
            from_csv("t", "0,10,1\n0,20,2\n")
                .unwrap_err()
                .contains("seconds must increase")
        );
        assert!(
            from_csv("t", "0,ten,1\n")
                .unwrap_err()
                .contains("requests_per_second must be a number")
        );
        assert!(from_csv("t", "seconds,requests_per_second,jobs_per_second\n").is_err());
    }
}
