//! The `headroom simulate` command: scenario selection, policies, outputs, the benchmark.

use std::fmt::Write;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{
    EXAMPLE_WEB, EXAMPLE_WORKER, EXAMPLE_WORKER_IDLE, Kind, LAUNCH_STEP_SECONDS, Outcome, Policy,
    SCENARIOS, Trace, latency_target, parse_policy, read_trace, report, run, scenario, setup,
};
use crate::api::SignalKind;
use crate::plan::parse_time;

pub struct Options {
    pub scenario: String,
    pub policies: Vec<PathBuf>,
    pub trace: Option<PathBuf>,
    pub json: bool,
    pub seed: u64,
    /// The calendar time (RFC 3339) of the scenario's first second; without it, schedule
    /// windows do not apply.
    pub start: Option<String>,
    pub out_dir: PathBuf,
    /// Write the benchmark's Markdown report here (runs every scenario).
    pub report: Option<PathBuf>,
    /// Run the policy over generated traces of this family (or `all`) instead.
    pub family: Option<String>,
    /// How many generated traces.
    pub count: usize,
    /// Replay only this generated trace, with its plot.
    pub case: Option<usize>,
}

fn policies(paths: &[PathBuf]) -> Result<(Policy, Policy), String> {
    let mut web = parse_policy(EXAMPLE_WEB, "deploy/examples/web.yaml")?;
    let mut worker = parse_policy(EXAMPLE_WORKER, "deploy/examples/worker.yaml")?;
    for p in paths {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("--policy {}: {e}", p.display()))?;
        let policy = parse_policy(&text, &p.display().to_string())?;
        // A policy on latency or CPU drives the web tier; a backlog-only one the workers.
        let is_web = policy.spec.signals.iter().any(|s| {
            matches!(
                s.kind(),
                Some(SignalKind::Latency(_) | SignalKind::Cpu(_) | SignalKind::Concurrency(_))
            )
        });
        if is_web {
            web = policy;
        } else {
            worker = policy;
        }
    }
    Ok((web, worker))
}

fn progress_bar(label: String, total_seconds: usize) -> impl FnMut(f64) {
    // Only for a person watching: logs and pipes get no carriage-return noise.
    let show = total_seconds > 6 * 3600 && std::io::stderr().is_terminal();
    move |f: f64| {
        if show {
            let n = (f * 30.0) as usize;
            eprint!(
                "\r{label:<10} [{}{}] {:>3.0}%",
                "#".repeat(n),
                " ".repeat(30 - n.min(30)),
                f * 100.0
            );
            if f >= 1.0 {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}

fn run_all(trace: &Trace, web: &Policy, worker: &Policy, start_unix: Option<i64>) -> Vec<Outcome> {
    let mut s = setup(&trace.name, web.clone(), worker.clone());
    s.start_unix = start_unix;
    Kind::ALL
        .iter()
        .map(|k| {
            run(
                *k,
                trace,
                &s,
                &mut progress_bar(k.name().to_string(), trace.seconds()),
            )
        })
        .collect()
}

/// Headroom against the HPA at its own replica-minutes on one trace.
fn equal_cost_line(
    trace: &Trace,
    web: &Policy,
    worker: &Policy,
    start_unix: Option<i64>,
    results: &[Outcome],
) -> String {
    let mut s = setup(&trace.name, web.clone(), worker.clone());
    s.start_unix = start_unix;
    let ladder = super::equal_cost::ladder(trace, &s);
    super::equal_cost::line(results, &ladder).unwrap_or_default()
}

fn write_svg(dir: &Path, name: &str, results: &[Outcome], target: f64) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}.svg"));
    std::fs::write(&path, report::svg(name, results, target))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Runs the command; returns what to print on stdout.
pub fn command(o: &Options) -> Result<String, String> {
    let (web, worker) = policies(&o.policies)?;
    if let Some(family) = &o.family {
        return family_command(o, family, &web, &worker);
    }
    if let Some(path) = &o.report {
        if o.start.is_some() {
            return Err("--start: not used with --report; the benchmark places its planned launch on the web policy's first dated schedule window".into());
        }
        return benchmark(path, &o.out_dir, &web, &worker, o.seed);
    }
    let start_unix = o
        .start
        .as_deref()
        .map(|s| parse_time(s, "--start"))
        .transpose()
        .map_err(|e| e.to_string())?;
    let trace = match &o.trace {
        Some(p) => read_trace(p)?,
        None => scenario(&o.scenario, o.seed).ok_or_else(|| {
            format!(
                "--scenario: unknown scenario {:?}; expected one of {}",
                o.scenario,
                SCENARIOS.join(", ")
            )
        })?,
    };
    let results = run_all(&trace, &web, &worker, start_unix);
    let svg = write_svg(&o.out_dir, &trace.name, &results, latency_target(&web.spec))?;
    let equal = equal_cost_line(&trace, &web, &worker, start_unix, &results);
    let clock = clock_note([&web, &worker], o.start.as_deref());
    if o.json {
        eprintln!("plot: {}", svg.display());
        if let Some(c) = clock {
            eprintln!("{c}");
        }
        return Ok(format!("{}\n", report::json(&trace.name, &results)));
    }
    Ok(format!(
        "{}{equal}{}plot: {}\n",
        report::table(&trace.name, &results),
        clock.map(|c| format!("{c}\n")).unwrap_or_default(),
        svg.display()
    ))
}

/// `--family`: the distribution over generated traces, and with `--report` its Markdown.
fn family_command(
    o: &Options,
    family: &str,
    web: &Policy,
    worker: &Policy,
) -> Result<String, String> {
    if !(1..=10_000).contains(&o.count) {
        return Err(format!("--count: must be 1..10000, got {}", o.count));
    }
    if family == "idle" {
        return idle_command(o, web, worker);
    }
    if let Some(index) = o.case {
        return replay_case(o, family, index, web, worker);
    }
    let started = super::cpu_time();
    let results = super::generalize::run_family(family, o.count, o.seed, web, worker)?;
    let cpu = super::cpu_time() - started;
    if let Some(path) = &o.report {
        let md = super::generalize::report(&results, family, o.seed, cpu);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(format!(
            "{}wrote {}\n",
            super::generalize::table(&results),
            path.display()
        ));
    }
    Ok(super::generalize::table(&results))
}

/// `--family idle`: queue workers idle most of the day, from and to zero against KEDA. The
/// worker policy is deploy/examples/worker-idle.yaml unless `--policy` names one.
fn idle_command(o: &Options, web: &Policy, worker: &Policy) -> Result<String, String> {
    let idle_example;
    let worker = if o.policies.is_empty() {
        idle_example = parse_policy(EXAMPLE_WORKER_IDLE, "deploy/examples/worker-idle.yaml")?;
        &idle_example
    } else {
        worker
    };
    let rows: Vec<super::idle::Row> = (0..o.count)
        .map(|i| super::idle::run_case(o.seed, i, web, worker))
        .collect();
    let table = super::idle::table(&rows);
    if let Some(path) = &o.report {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, super::idle::report(&rows, o.seed))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(format!("{table}wrote {}\n", path.display()));
    }
    Ok(table)
}

/// `--family F --case I`: one generated trace, as a scenario is shown.
fn replay_case(
    o: &Options,
    family: &str,
    index: usize,
    web: &Policy,
    worker: &Policy,
) -> Result<String, String> {
    let r = super::generalize::run_case(family, o.seed, index, web, worker)?;
    let name = r.case.trace.name.clone();
    let svg = write_svg(&o.out_dir, &name, &r.outcomes, latency_target(&web.spec))?;
    let learned: String = r
        .outcomes
        .iter()
        .filter(|o| !o.learned.is_empty())
        .map(|o| {
            format!(
                "{} predicted {} raises; learned: {}\n",
                o.autoscaler,
                o.predicted_at.len(),
                o.learned.join("; ")
            )
        })
        .collect();
    Ok(format!(
        "{}\n{}{learned}plot: {}\n",
        r.case.about,
        report::table(&name, &r.outcomes),
        svg.display()
    ))
}

/// Says whether the policies' schedule windows took part, when they have any.
fn clock_note(policies: [&Policy; 2], start: Option<&str>) -> Option<String> {
    let scheduled = policies
        .iter()
        .filter_map(|p| p.plan.guardrails.as_ref())
        .any(|g| !g.schedule.is_empty());
    match (scheduled, start) {
        (false, _) => None,
        (true, Some(s)) => Some(format!(
            "schedule: windows applied, the scenario starting at {s}"
        )),
        (true, None) => Some(
            "schedule: windows not applied; --start places the scenario on the calendar".into(),
        ),
    }
}

/// A planned launch: the launch scenario's step lands on the start of the web policy's first
/// dated schedule window, as when a team books its launch day.
fn planned_launch_start(web: &Policy) -> Option<i64> {
    let first = web
        .plan
        .guardrails
        .as_ref()?
        .schedule
        .iter()
        .find_map(|w| w.fixed_start())?;
    Some(first - LAUNCH_STEP_SECONDS)
}

fn find(r: &[Outcome], k: Kind) -> Option<&Outcome> {
    r.iter().find(|o| o.autoscaler == k.name())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Every scenario, the table, and the targets with their measured figures.
fn benchmark(
    path: &Path,
    out_dir: &Path,
    web: &Policy,
    worker: &Policy,
    seed: u64,
) -> Result<String, String> {
    let started = Instant::now();
    let mut md = String::from(
        "# Decision quality\n\nEvery built-in scenario through every autoscaler (`headroom simulate`), one-second steps, seed ",
    );
    let _ = write!(
        md,
        "{seed}. Policies: deploy/examples (or `--policy`).\n\n{}",
        report::MARKDOWN_HEADER
    );
    let mut all = vec![];
    let mut equal = vec![];
    for name in SCENARIOS {
        let trace = scenario(name, seed).ok_or_else(|| format!("missing scenario {name}"))?;
        let results = run_all(&trace, web, worker, None);
        write_svg(out_dir, name, &results, latency_target(&web.spec))?;
        md.push_str(&report::markdown_rows(name, &results));
        equal.push((name, equal_cost_line(&trace, web, worker, None, &results)));
        all.push((name, results));
        if name == "launch"
            && let Some(start) = planned_launch_start(web)
        {
            let planned = "launch-planned";
            let results = run_all(&trace, web, worker, Some(start));
            write_svg(out_dir, planned, &results, latency_target(&web.spec))?;
            md.push_str(&report::markdown_rows(planned, &results));
            all.push((planned, results));
        }
    }
    md.push_str("\n## At equal cost\n\nThe HPA run again with its targets tighter and looser; its SLO read at Headroom's replica-minutes, on its frontier (the best HPA for no more cost).\n\n");
    for (name, line) in &equal {
        let _ = write!(md, "- {name}: {line}");
    }
    md.push_str("\n## Targets\n\n");
    for (name, r) in &all {
        let (Some(h), Some(hpa)) = (find(r, Kind::Headroom), find(r, Kind::Hpa)) else {
            continue;
        };
        let line = match *name {
            "viral" | "launch" | "launch-planned" => {
                let slo = h.slo_violation_minutes <= 0.5 * hpa.slo_violation_minutes;
                let cost = h.replica_minutes <= hpa.replica_minutes;
                let label = match *name {
                    "launch" => "launch, unannounced (no schedule window applies)",
                    "launch-planned" => {
                        "launch, planned (the step lands on the web policy's first dated schedule window)"
                    }
                    _ => name,
                };
                format!(
                    "- {label}: SLO-violation minutes {:.1} vs hpa {:.1} (target <= 50%: {}); replica-minutes {:.1} vs hpa {:.1} (target <=: {})",
                    h.slo_violation_minutes,
                    hpa.slo_violation_minutes,
                    verdict(slo),
                    h.replica_minutes,
                    hpa.replica_minutes,
                    verdict(cost)
                )
            }
            "steady" => format!(
                "- steady: reversals within 10 minutes {} (target 0: {})",
                h.reversals,
                verdict(h.reversals == 0)
            ),
            "database-bound" => format!(
                "- database-bound: SLO-violation minutes {:.1} vs hpa {:.1} ({}); replica-minutes {:.1} vs hpa {:.1} ({}); connection-overflow minutes {:.1} (target 0: {})",
                h.slo_violation_minutes,
                hpa.slo_violation_minutes,
                verdict(h.slo_violation_minutes <= hpa.slo_violation_minutes),
                h.replica_minutes,
                hpa.replica_minutes,
                verdict(h.replica_minutes < hpa.replica_minutes),
                h.connection_overflow_minutes,
                verdict(h.connection_overflow_minutes == 0.0)
            ),
            "creeping" => {
                // The forecast and the concurrency signal may scale first (concurrency grows
                // with the service time); run once more without both to show the
                // CreepingLatency guardrail on its own.
                let alone = web.edit(|s| {
                    if let Some(g) = &mut s.guardrails {
                        g.forecast = None;
                    }
                    s.signals.retain(|x| x.concurrency.is_none());
                })?;
                let trace =
                    scenario(name, seed).ok_or_else(|| format!("missing scenario {name}"))?;
                let s = setup(name, alone, worker.clone());
                let c = run(Kind::Headroom, &trace, &s, &mut |_| {});
                let at = |t: Option<usize>| t.map_or("never".to_string(), |t| format!("{t} s"));
                format!(
                    "- creeping: with the example policy, first SLO violation {} (hpa: {}, {:.1} SLO-violation minutes); without its forecast and concurrency signal, CreepingLatency first scaled up at {} and the first SLO violation came at {} ({})",
                    at(h.first_slo_violation),
                    at(hpa.first_slo_violation),
                    hpa.slo_violation_minutes,
                    at(c.creeping_at),
                    at(c.first_slo_violation),
                    verdict(match (c.creeping_at, c.first_slo_violation) {
                        (Some(a), Some(v)) => a < v,
                        (Some(_), None) => true,
                        _ => false,
                    })
                )
            }
            "diurnal" => {
                let worst = r
                    .iter()
                    .filter(|o| o.autoscaler != "static")
                    .map(|o| o.cpu_seconds)
                    .fold(0.0, f64::max);
                format!(
                    "- speed: the 24-hour diurnal scenario took at most {worst:.2} s of CPU per autoscaler (target < 1 s: {})",
                    verdict(worst < 1.0)
                )
            }
            _ => continue,
        };
        md.push_str(&line);
        md.push('\n');
    }
    // The headroom estimate against the model: calibrate on a normal day, predict, then
    // raise the load until a threshold is really crossed.
    let checks: Vec<super::breaking::Check> = SCENARIOS
        .iter()
        .filter_map(|name| super::breaking::check(name, &setup(name, web.clone(), worker.clone())))
        .collect();
    let met = checks.iter().filter(|c| c.matches()).count();
    let _ = write!(
        md,
        "\n## Traffic headroom\n\nEach scenario's web policy, calibrated on three hours of a day at the scenario's first-hour load (±35 % swing, ±10 % noise, minute means of the model's series), predicts what crosses its threshold first and at what factor on today's load; the same run then ramps to a steady factor × load with Headroom scaling, and a bisection finds the smallest factor at which a threshold is crossed. Target: within 20 % and the same resource.\n\n{}\n- headroom estimate: {met} of {} scenarios within 20 % and the same resource ({})\n",
        super::breaking::table(&checks),
        checks.len(),
        verdict(met == checks.len())
    );
    let _ = writeln!(
        md,
        "\nPlots: {}/<scenario>.svg. Total wall time {:.1} s.",
        out_dir.display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(format!("{md}\nwrote {}\n", path.display()))
}
