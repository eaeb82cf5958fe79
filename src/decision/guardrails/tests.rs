//! One test per rule, then their interactions.

use super::*;
use crate::decision::{
    self, DEFAULT_DOWNSCALE_STABILIZATION_SECONDS, History, SignalValue, Tolerance,
};

fn input(current: i32, value: f64) -> Input {
    Input {
        min_replicas: 1,
        max_replicas: 20,
        behavior: None,
        tolerance: Tolerance::default(),
        current_replicas: current,
        ready_replicas: current,
        signals: vec![SignalValue {
            name: "q".into(),
            target_type: TargetType::AverageValue,
            target: 100.0,
            value: Some(value),
            up_only: false,
            lookback_seconds: None,
        }],
        history: History::default(),
        downscale_stabilization_seconds: DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    }
}

fn run(i: &Input, g: &GuardrailInput) -> Guarded {
    apply(&decision::decide(i), i, g)
}

fn panic(short_value: f64, last_spike_age: Option<f64>) -> PanicInput {
    PanicInput {
        threshold: 2.0,
        stable_window_seconds: 60.0,
        short: vec![ShortReading {
            name: "q".into(),
            target_type: TargetType::AverageValue,
            target: 100.0,
            value: Some(short_value),
            up_only: false,
        }],
        last_spike_age,
    }
}

fn db_bound() -> DatabaseEvidence {
    DatabaseEvidence {
        cpu_over_act_fraction: Some(0.8),
        regularly: 0.5,
        cpu: Some(0.85),
        cpu_act: 0.7,
        window_seconds: 1800.0,
        query_p95: Some(0.2),
        query_act: 0.5,
    }
}

/// A budget with room for `replicas` of 10 connections and nobody else in it.
fn budget(replicas: i64) -> Budget {
    Budget {
        usable: Some(replicas * 10),
        name: "me".into(),
        pool_size: 10,
        others: vec![],
    }
}

fn finding<'a>(g: &'a Guarded, reason: &str) -> &'a Finding {
    g.findings.iter().find(|f| f.reason == reason).unwrap()
}

#[test]
fn without_guardrails_the_hpa_decision_stands() {
    let i = input(2, 400.0);
    let g = run(&i, &GuardrailInput::default());
    assert_eq!((g.desired, g.limited_by), (4, Limit::None));
    assert!(g.findings.is_empty());
}

#[test]
fn panic_jumps_to_what_the_short_window_needs_in_one_step() {
    // The stable window still says 400 (rate-limited to 4); the short window says 1500.
    let i = input(2, 400.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(1500.0, None)),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (15, Limit::Panic));
    assert!(g.spike_now && finding(&g, "Panic").active);
}

#[test]
fn panic_stays_within_max_replicas() {
    let i = input(2, 400.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(5000.0, None)),
            ..Default::default()
        },
    );
    assert_eq!(g.desired, 20);
}

#[test]
fn panic_blocks_scale_down_for_a_stable_window_after_the_spike() {
    let i = input(10, 100.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(100.0, Some(30.0))),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (10, Limit::Panic));
    assert!(!g.spike_now && finding(&g, "Panic").active);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(100.0, Some(61.0))),
            ..Default::default()
        },
    );
    assert!(g.desired < 10 || g.limited_by == Limit::Stabilization);
    assert!(!finding(&g, "Panic").active);
}

#[test]
fn a_total_is_a_spike_only_against_what_the_ready_replicas_carry() {
    // 1500 queued for 8 replicas of 100 each is 1.9x: busy, not a spike.
    let i = input(8, 1500.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(1500.0, None)),
            ..Default::default()
        },
    );
    assert!(!g.spike_now);
    // The same backlog on 2 replicas is 7.5x.
    let i = input(2, 1500.0);
    assert!(
        run(
            &i,
            &GuardrailInput {
                panic: Some(panic(1500.0, None)),
                ..Default::default()
            }
        )
        .spike_now
    );
}

#[test]
fn a_short_window_below_twice_the_target_is_not_a_panic() {
    let i = input(2, 150.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(190.0, None)),
            ..Default::default()
        },
    );
    assert!(!g.spike_now && g.limited_by != Limit::Panic);
}

#[test]
fn database_bound_holds_scale_up_and_says_what_to_do() {
    let i = input(4, 900.0);
    let g = run(
        &i,
        &GuardrailInput {
            database: Some(db_bound()),
            database_hold: true,
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (4, Limit::DatabaseBound));
    assert!(
        g.reason.contains("read replica")
            && g.reason
                .contains("databaseCpu regularly over 0.7 (0.85 for 80% of 30m)"),
        "{}",
        g.reason
    );
    assert!(finding(&g, "DatabaseBound").active);
}

#[test]
fn database_bound_with_the_app_cpu_saturated_grows_only_as_cpu_asks() {
    // The queue signal asks for 9; the app's CPU at a 70 % target asks for 6 at 95 %.
    let i = input(4, 900.0);
    let with_cpu = |percent| {
        run(
            &i,
            &GuardrailInput {
                database: Some(db_bound()),
                database_hold: true,
                app_cpu: Some(AppCpu {
                    percent,
                    target: 70.0,
                }),
                ..Default::default()
            },
        )
    };
    let g = with_cpu(95.0);
    assert_eq!((g.desired, g.limited_by), (6, Limit::DatabaseBound));
    assert!(g.reason.contains("app CPU saturated (95%)"), "{}", g.reason);
    // Below saturation the app only waits on its database: the hold keeps 4.
    let g = with_cpu(85.0);
    assert_eq!((g.desired, g.limited_by), (4, Limit::DatabaseBound));
}

#[test]
fn database_bound_still_lets_scale_down_through() {
    let mut i = input(6, 100.0);
    i.behavior = Some(Default::default());
    i.downscale_stabilization_seconds = 0;
    let g = run(
        &i,
        &GuardrailInput {
            database: Some(db_bound()),
            database_hold: true,
            ..Default::default()
        },
    );
    assert_eq!(g.desired, 1);
}

#[test]
fn database_hold_can_be_opted_out_and_needs_regular_saturation() {
    let i = input(4, 900.0);
    let g = run(
        &i,
        &GuardrailInput {
            database: Some(db_bound()),
            database_hold: false,
            ..Default::default()
        },
    );
    assert!(g.desired > 4 && finding(&g, "DatabaseBound").active);
    // One hot sample is not "regularly": 20% of the window over Act does not hold.
    let brief = DatabaseEvidence {
        cpu_over_act_fraction: Some(0.2),
        ..db_bound()
    };
    let g = run(
        &i,
        &GuardrailInput {
            database: Some(brief),
            database_hold: true,
            ..Default::default()
        },
    );
    assert!(g.desired > 4 && !finding(&g, "DatabaseBound").active);
    // A slow common query alone makes it database-bound.
    let slow = DatabaseEvidence {
        cpu_over_act_fraction: Some(0.0),
        query_p95: Some(0.7),
        ..db_bound()
    };
    assert_eq!(
        run(
            &i,
            &GuardrailInput {
                database: Some(slow),
                database_hold: true,
                ..Default::default()
            }
        )
        .desired,
        4
    );
}

#[test]
fn a_budget_claim_needs_what_the_signals_ask_not_what_the_rate_limit_allows() {
    // From 1 replica the legacy rate limit allows 4 this round; the backlog asks for 8.
    let i = input(1, 800.0);
    let g = run(
        &i,
        &GuardrailInput {
            budget: Some(budget(20)),
            ..Default::default()
        },
    );
    assert_eq!(g.desired, 4);
    assert_eq!(g.budget_claim.map(|c| (c.held, c.need)), Some((4, 8)));
}

#[test]
fn connection_budget_caps_with_its_reason() {
    let i = input(4, 900.0);
    let g = run(
        &i,
        &GuardrailInput {
            budget: Some(budget(6)),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (6, Limit::ConnectionBudget));
}

#[test]
fn a_budget_whose_max_cannot_be_read_holds_growth_but_not_a_scale_down() {
    let unread = Budget {
        usable: None,
        ..budget(6)
    };
    let up = run(
        &input(4, 900.0),
        &GuardrailInput {
            budget: Some(unread.clone()),
            ..Default::default()
        },
    );
    assert_eq!((up.desired, up.limited_by), (4, Limit::ConnectionBudget));
    assert!(
        finding(&up, "ConnectionBudget")
            .message
            .contains("max_connections not read"),
        "{:?}",
        up.findings
    );
    let down = run(
        &input(4, 100.0),
        &GuardrailInput {
            budget: Some(unread),
            ..Default::default()
        },
    );
    assert!(
        down.desired < 4,
        "a scale-down still applies: {}",
        down.desired
    );
}

#[test]
fn cost_ceiling_caps_and_reports_hourly_cost() {
    let i = input(4, 900.0);
    let g = run(
        &i,
        &GuardrailInput {
            cost: Some(Cost {
                per_replica_hour: 0.5,
                max_hourly: Some(3.0),
            }),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (6, Limit::CostCeiling));
    assert_eq!(g.hourly_cost, Some(2.0));
}

#[test]
fn scheduled_floor_raises_ahead_of_a_launch() {
    let i = input(2, 100.0);
    let w = Window {
        start: 10_000,
        end: 20_000,
        min_replicas: 12,
        lead_seconds: 300,
        release_seconds: 600,
    };
    let g = run(
        &i,
        &GuardrailInput {
            now_unix: 9_800,
            schedule: vec![w.clone()],
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (12, Limit::ScheduledFloor));
    // Before the lead time, the HPA decision (1) stands.
    let g = run(
        &i,
        &GuardrailInput {
            now_unix: 9_000,
            schedule: vec![w],
            ..Default::default()
        },
    );
    assert_eq!(g.desired, 1);
}

fn creeping_input(slope_per_min: f64, noise: f64, load_growth: f64) -> CreepingInput {
    let latency = (0..30)
        .map(|m| {
            let jitter = if m % 2 == 0 { noise } else { -noise };
            (m as f64 * 60.0, 0.154 + slope_per_min * m as f64 + jitter)
        })
        .collect();
    let requests = (0..30)
        .map(|m| (m as f64 * 60.0, 100.0 + load_growth * m as f64))
        .collect();
    CreepingInput {
        signal: "p95".into(),
        target: 0.3,
        startup_seconds: 60.0,
        min_t: 3.0,
        flat_load: 0.1,
        latency,
        requests,
    }
}

#[test]
fn creeping_latency_adds_one_step_before_the_breach() {
    // 154ms rising 5ms/min for 30 minutes: 298.5ms now, over 300ms within the minute a pod needs.
    let i = input(4, 400.0);
    let g = run(
        &i,
        &GuardrailInput {
            creeping: Some(creeping_input(0.005, 0.0005, 0.0)),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (5, Limit::CreepingLatency));
    assert!(g.reason.contains("rising"), "{}", g.reason);
}

#[test]
fn creeping_latency_ignores_noise_growing_load_and_distant_breaches() {
    let i = input(4, 400.0);
    let cases = [
        ("noise", creeping_input(0.0001, 0.02, 0.0)),
        (
            "load is growing: that is traffic, not a regression",
            creeping_input(0.005, 0.0005, 2.0),
        ),
        ("breach is far off", creeping_input(0.001, 0.0001, 0.0)),
    ];
    for (why, c) in cases {
        let g = run(
            &i,
            &GuardrailInput {
                creeping: Some(c),
                ..Default::default()
            },
        );
        assert_eq!(g.desired, 4, "{why}");
        assert!(!finding(&g, "CreepingLatency").active, "{why}");
    }
}

#[test]
fn database_hold_beats_panic_and_says_so() {
    let i = input(4, 400.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(3000.0, None)),
            database: Some(db_bound()),
            database_hold: true,
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (4, Limit::DatabaseBound));
    assert!(finding(&g, "Panic").active && finding(&g, "DatabaseBound").active);
}

#[test]
fn budget_beats_panic() {
    let i = input(4, 400.0);
    let g = run(
        &i,
        &GuardrailInput {
            panic: Some(panic(3000.0, None)),
            budget: Some(budget(9)),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (9, Limit::ConnectionBudget));
}

#[test]
fn cost_ceiling_beats_scheduled_floor() {
    let i = input(2, 100.0);
    let w = Window {
        start: 0,
        end: 100,
        min_replicas: 12,
        lead_seconds: 0,
        release_seconds: 0,
    };
    let g = run(
        &i,
        &GuardrailInput {
            now_unix: 50,
            schedule: vec![w],
            cost: Some(Cost {
                per_replica_hour: 1.0,
                max_hourly: Some(8.0),
            }),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (8, Limit::CostCeiling));
}

#[test]
fn guardrails_are_deterministic() {
    let i = input(4, 400.0);
    let g = GuardrailInput {
        panic: Some(panic(3000.0, None)),
        creeping: Some(creeping_input(0.005, 0.0005, 0.0)),
        budget: Some(budget(9)),
        ..Default::default()
    };
    assert_eq!(run(&i, &g), run(&i, &g));
}

#[test]
fn creeping_latency_waits_a_start_up_time_between_steps() {
    let mut i = input(5, 500.0);
    i.history.scale_events.push(crate::decision::ScaleEvent {
        replica_change: 1,
        age_seconds: 20.0,
    });
    let g = run(
        &i,
        &GuardrailInput {
            creeping: Some(creeping_input(0.005, 0.0005, 0.0)),
            ..Default::default()
        },
    );
    assert_eq!(g.desired, 5);
    assert!(finding(&g, "CreepingLatency").active);
    i.history.scale_events[0].age_seconds = 61.0;
    let g = run(
        &i,
        &GuardrailInput {
            creeping: Some(creeping_input(0.005, 0.0005, 0.0)),
            ..Default::default()
        },
    );
    assert_eq!(g.desired, 6);
}

fn rising(per_minute: f64, t_noise: f64) -> ForecastInput {
    let samples = (0..30)
        .map(|m| {
            let jitter = if m % 2 == 0 { t_noise } else { -t_noise };
            (
                m as f64 * 10.0,
                300.0 + per_minute * m as f64 / 6.0 + jitter,
            )
        })
        .collect();
    ForecastInput {
        horizon_seconds: 90.0,
        min_t: 3.0,
        series: vec![ForecastSeries {
            name: "q".into(),
            target_type: TargetType::AverageValue,
            target: 100.0,
            samples,
        }],
    }
}

#[test]
fn forecast_sizes_for_a_rising_load_before_it_arrives() {
    // The backlog grows 60 a minute and is at ~590 now (6 replicas); 90s ahead it is ~680.
    let i = input(4, 590.0);
    let g = run(
        &i,
        &GuardrailInput {
            forecast: Some(rising(60.0, 0.5)),
            ..Default::default()
        },
    );
    assert_eq!(g.limited_by, Limit::Forecast);
    assert_eq!(g.desired, 7, "{}", g.reason);
    assert!(finding(&g, "Forecast").active);
}

#[test]
fn forecast_ignores_noise_and_falling_loads() {
    let i = input(4, 380.0);
    for (why, f) in [
        ("noise", rising(0.5, 40.0)),
        ("falling", rising(-60.0, 0.5)),
    ] {
        let g = run(
            &i,
            &GuardrailInput {
                forecast: Some(f),
                ..Default::default()
            },
        );
        assert_ne!(g.limited_by, Limit::Forecast, "{why}");
        assert!(!finding(&g, "Forecast").active, "{why}");
    }
}

#[test]
fn database_hold_beats_forecast() {
    let i = input(4, 380.0);
    let g = run(
        &i,
        &GuardrailInput {
            forecast: Some(rising(60.0, 0.5)),
            database: Some(db_bound()),
            database_hold: true,
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (4, Limit::DatabaseBound));
}

#[test]
fn latency_trend_bands() {
    assert_eq!(
        latency_trend(&creeping_input(0.0001, 0.02, 0.0)).0,
        Band::Healthy
    );
    assert_eq!(
        latency_trend(&creeping_input(0.005, 0.0005, 2.0)).0,
        Band::Watch
    );
    let (band, hint) = latency_trend(&creeping_input(0.005, 0.0005, 0.0));
    assert_eq!(band, Band::Act);
    assert!(hint.contains("request rate is flat"), "{hint}");
}

fn predicted(rise: f64, pattern_rise: f64, enforce: bool) -> PredictedRise {
    PredictedRise {
        rise,
        pattern_rise,
        horizon_seconds: 300.0,
        pattern: "24h".into(),
        min_rise: 1.2,
        tolerance: 0.1,
        enforce,
    }
}

#[test]
fn a_predicted_rise_sizes_for_it_now_and_observe_only_reports() {
    // 4 replicas at 400/100: on target. The pattern says 2.5x within 5 minutes.
    let i = input(4, 400.0);
    let g = |p| GuardrailInput {
        predicted: Some(p),
        ..Default::default()
    };
    let up = run(&i, &g(predicted(2.5, 2.5, true)));
    assert_eq!(
        (up.desired, up.limited_by),
        (10, Limit::Predicted),
        "{up:?}"
    );
    assert_eq!(up.predicted, Some(10));
    assert!(
        up.findings
            .iter()
            .any(|f| f.reason == "Predicted" && f.active)
    );
    let seen = run(&i, &g(predicted(2.5, 2.5, false)));
    assert_eq!((seen.desired, seen.predicted), (4, Some(10)), "{seen:?}");
    assert!(
        seen.findings
            .iter()
            .any(|f| !f.active && f.message.starts_with("observing"))
    );
    // Noise under the least rise, or no rise in the pattern: nothing.
    for p in [predicted(1.15, 1.15, true), predicted(2.5, 1.0, true)] {
        let quiet = run(&i, &g(p));
        assert_eq!((quiet.desired, quiet.predicted), (4, None), "{quiet:?}");
    }
}

#[test]
fn a_rise_still_to_come_holds_the_fleet_and_one_that_came_adds_nothing() {
    let g = |p| GuardrailInput {
        predicted: Some(p),
        ..Default::default()
    };
    // Load fell to 200 (2 replicas' worth), but the pattern's rise is still ahead: hold 4.
    let held = run(&input(4, 200.0), &g(predicted(1.0, 2.0, true)));
    assert_eq!(
        (held.desired, held.limited_by),
        (4, Limit::Predicted),
        "{held:?}"
    );
    // The rise came: the load now is the peak, and the signals size it.
    let came = run(&input(4, 800.0), &g(predicted(1.0, 2.0, true)));
    assert_eq!(came.desired, 8, "{came:?}");
    assert_ne!(came.limited_by, Limit::Predicted);
}

#[test]
fn a_predicted_rise_never_passes_the_caps_or_the_database_hold() {
    let i = input(4, 400.0);
    let mut g = GuardrailInput {
        predicted: Some(predicted(10.0, 10.0, true)),
        ..Default::default()
    };
    assert_eq!(run(&i, &g).desired, 20, "maxReplicas");
    g.cost = Some(Cost {
        per_replica_hour: 1.0,
        max_hourly: Some(6.0),
    });
    let capped = run(&i, &g);
    assert_eq!((capped.desired, capped.limited_by), (6, Limit::CostCeiling));
    g.cost = None;
    g.budget = Some(budget(7));
    let shared = run(&i, &g);
    assert_eq!(
        (shared.desired, shared.limited_by),
        (7, Limit::ConnectionBudget)
    );
    g.budget = None;
    g.database_hold = true;
    g.database = Some(DatabaseEvidence {
        cpu_over_act_fraction: Some(0.9),
        regularly: 0.5,
        cpu_act: 0.7,
        window_seconds: 1800.0,
        query_act: 0.5,
        ..Default::default()
    });
    let held = run(&i, &g);
    assert_eq!(
        (held.desired, held.limited_by),
        (4, Limit::DatabaseBound),
        "{held:?}"
    );
}

/// A worker at zero that its backlog starts: the from-zero decision for `wanted` replicas.
fn from_zero(wanted: i32) -> (Decision, Input) {
    let mut i = input(0, 500.0);
    i.min_replicas = 0;
    let base = Decision {
        desired_replicas: wanted,
        reason: format!("demand at zero (q); starting {wanted} replicas"),
        limited_by: Limit::Activated,
        proposals: vec![],
        recommendation: Some(wanted),
    };
    (base, i)
}

#[test]
fn the_database_hold_holds_growth_not_the_first_replica() {
    let (base, i) = from_zero(5);
    let g = apply(
        &base,
        &i,
        &GuardrailInput {
            database: Some(db_bound()),
            database_hold: true,
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (1, Limit::DatabaseBound));
    assert!(g.findings.iter().all(|f| f.reason != "HeldAtZero"));
}

#[test]
fn a_worker_held_at_zero_while_work_waits_says_so() {
    let (base, i) = from_zero(3);
    let g = apply(
        &base,
        &i,
        &GuardrailInput {
            budget: Some(budget(0)),
            ..Default::default()
        },
    );
    assert_eq!((g.desired, g.limited_by), (0, Limit::ConnectionBudget));
    let f = finding(&g, "HeldAtZero");
    assert!(
        f.active
            && f.message.starts_with(
                "work is waiting: 3 replica(s) wanted from zero, held at 0 by ConnectionBudget"
            ),
        "{}",
        f.message
    );
}
