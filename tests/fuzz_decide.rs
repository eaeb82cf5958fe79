//! A fuzz-style run of `decide`: thousands of generated documents, well-formed, malformed and
//! hostile. None may crash it; every answer keeps the invariants; every refusal names a field.

use headroom::decide::{decide_json, decide_policy};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Documents per contract; docs/src/testing.md reports the total.
const CASES: u32 = 5000;

/// Mostly plausible numbers, sometimes hostile ones.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        24 => (1i64..50).prop_map(Value::from),
        8 => (0.0f64..1e3).prop_map(Value::from),
        1 => (-5i64..5).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => (-1e300f64..1e300).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => Just(json!("12")),
        1 => Just(json!([1, 2])),
    ]
}

fn signal() -> impl Strategy<Value = Value> {
    (
        "[a-z]{1,3}",
        prop_oneof![8 => Just("Value"), 8 => Just("AverageValue"), 1 => Just("Bogus")],
        number(),
        number(),
        any::<bool>(),
        prop::option::of(number()),
    )
        .prop_map(|(name, t, target, value, up, lookback)| {
            let mut s = json!({"name": name, "targetType": t, "target": target, "value": value, "upOnly": up});
            if let Some(l) = lookback {
                s["lookbackSeconds"] = l;
            }
            s
        })
}

fn contract_doc() -> impl Strategy<Value = String> {
    (
        prop_oneof![4 => (0i64..3).prop_map(Value::from), 1 => number()],
        number(),
        number(),
        prop::option::of(number()),
        prop::collection::vec(signal(), 0..4),
        prop::collection::vec((number(), number()), 0..3),
        prop::collection::vec((number(), number()), 0..3),
        prop::option::of(number()),
        0u8..20,
    )
        .prop_map(|(min, max, current, ready, signals, recs, events, tol, mangle)| {
            let mut doc = json!({
                "minReplicas": min, "maxReplicas": max, "currentReplicas": current,
                "signals": signals,
                "history": {
                    "recommendations": recs.iter().map(|(r, a)| json!({"replicas": r, "ageSeconds": a})).collect::<Vec<_>>(),
                    "scaleEvents": events.iter().map(|(r, a)| json!({"replicaChange": r, "ageSeconds": a})).collect::<Vec<_>>(),
                },
            });
            if let Some(r) = ready {
                doc["readyReplicas"] = r;
            }
            if let Some(t) = tol {
                doc["tolerance"] = t;
            }
            mangle_text(doc.to_string(), mangle)
        })
}

/// Most documents stay whole; some get a second document, a cut, or an unknown field.
fn mangle_text(text: String, how: u8) -> String {
    match how {
        0 => format!("{text} {{}}"),
        1 => text[..text.len() / 2].to_string(),
        2 => text.replacen('{', "{\"surprise\": 1, ", 1),
        _ => text,
    }
}

fn observation_doc() -> impl Strategy<Value = String> {
    let keys = [
        "p95",
        "p95@short",
        "cpu",
        "cpu@short",
        "databaseCpu",
        "databaseCpu/regularly",
        "slowQuery",
        "errorRate",
        "connectionBudget/maxConnections",
        "forecast/cpu",
        "nope",
    ];
    (
        number(),
        prop::option::of(number()),
        prop::collection::vec((0usize..keys.len(), number()), 0..12),
        prop::collection::vec((number(), number(), number()), 0..3),
        0u8..20,
    )
        .prop_map(move |(current, ready, values, claims, mangle)| {
            let mut v = serde_json::Map::new();
            for (k, x) in values {
                v.insert(keys[k].to_string(), x);
            }
            let mut doc = json!({
                "currentReplicas": current,
                "values": v,
                "memory": {"connectionBudget": claims.iter().enumerate().map(|(i, (p, h, n))| json!({
                    "name": format!("o{i}"), "poolSizePerReplica": p, "held": h, "need": n})).collect::<Vec<_>>()},
            });
            if let Some(r) = ready {
                doc["readyReplicas"] = r;
            }
            mangle_text(doc.to_string(), mangle)
        })
}

fn int(doc: &Value, key: &str, default: i64) -> i64 {
    doc.get(key).and_then(Value::as_i64).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn the_decide_contract_never_crashes_and_keeps_its_bounds(text in contract_doc()) {
        match decide_json(&text) {
            Ok(out) => {
                let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let (min, max, current) = (int(&doc, "minReplicas", 1), int(&doc, "maxReplicas", 0), int(&doc, "currentReplicas", 0));
                let d = i64::from(out.desired_replicas);
                if current == 0 && min != 0 {
                    prop_assert_eq!(d, 0);
                } else {
                    prop_assert!((min..=max).contains(&d), "{} outside [{}, {}] for {}", d, min, max, text);
                }
            }
            Err(e) => prop_assert!(!e.field.is_empty() && !e.message.is_empty()),
        }
    }

    #[test]
    fn decide_for_a_policy_never_crashes_and_keeps_its_bounds(text in observation_doc()) {
        let policy = include_str!("../deploy/examples/web.yaml");
        match decide_policy(policy, &text) {
            Ok(out) => {
                let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let current = int(&doc, "currentReplicas", 0);
                let d = i64::from(out.desired_replicas);
                if current == 0 {
                    prop_assert_eq!(d, 0);
                } else {
                    prop_assert!((2..=40).contains(&d), "{} for {}", d, text);
                }
                // Every signal is missing or invalid unless both were given: never below current.
                let given = doc["values"].as_object().map(|v| v.contains_key("p95") && v.contains_key("cpu")).unwrap_or(false);
                if !given && current > 0 {
                    prop_assert!(d >= current.clamp(2, 40), "{} < {} for {}", d, current, text);
                }
            }
            Err(e) => prop_assert!(!e.field.is_empty() && !e.message.is_empty()),
        }
    }
}
