//! Status stays small whatever a policy holds: every text in it (messages, reasons, errors
//! that quote a query) is cut to `MAX_TEXT` bytes. A 64 KB query echoed into two conditions
//! and a signal's error made a 400 KB status, and a spec at the CRD's limits one over etcd's
//! request limit, which failed every write.

use crate::api::ScalingPolicyStatus;

/// Cuts `text` to at most `max` bytes at a character boundary; whether it was cut.
pub fn clip(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    true
}

/// Bytes a status text keeps: a message and a query's head, not the query.
pub const MAX_TEXT: usize = 512;

const CUT: &str = " …";

fn cut(text: &mut String) {
    if clip(text, MAX_TEXT - CUT.len()) {
        text.push_str(CUT);
    }
}

fn cut_opt(text: &mut Option<String>) {
    if let Some(t) = text {
        cut(t);
    }
}

/// Cuts every text of `s` to `MAX_TEXT` bytes.
pub fn bound(s: &mut ScalingPolicyStatus) {
    cut_opt(&mut s.reason);
    cut_opt(&mut s.verdict);
    for sig in &mut s.signals {
        cut_opt(&mut sig.error);
    }
    for i in &mut s.indicators {
        cut(&mut i.hint);
    }
    for c in &mut s.conditions {
        cut(&mut c.message);
    }
    if let Some(p) = &mut s.predictive {
        cut(&mut p.summary);
    }
    if let Some(h) = &mut s.headroom {
        cut(&mut h.summary);
        cut_opt(&mut h.reason);
        for r in &mut h.resources {
            cut_opt(&mut r.unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Condition, ConditionStatus, SignalStatus};

    #[test]
    fn a_long_query_echoed_into_status_is_cut_to_a_few_hundred_bytes() {
        let query = format!("sum(rate(x{{a=\"{}\"}}[1m]))", "é".repeat(32 * 1024));
        let message = format!("refused: {query}: not confined to the namespace");
        let mut s = ScalingPolicyStatus {
            reason: Some(message.clone()),
            signals: vec![SignalStatus {
                name: "q".into(),
                value: None,
                target: 1.0,
                proposed_replicas: None,
                error: Some(message.clone()),
            }],
            conditions: (0..3)
                .map(|i| Condition {
                    type_: format!("C{i}"),
                    status: ConditionStatus::False,
                    reason: "QueryFailed".into(),
                    message: message.clone(),
                    last_transition_time: None,
                    observed_generation: None,
                })
                .collect(),
            ..Default::default()
        };
        bound(&mut s);
        let texts = [
            s.reason.clone().unwrap_or_default(),
            s.signals[0].error.clone().unwrap_or_default(),
        ];
        for t in texts.iter().chain(s.conditions.iter().map(|c| &c.message)) {
            assert!(t.len() <= MAX_TEXT, "{} bytes", t.len());
            assert!(t.starts_with("refused: sum(rate(x{a=\"é"), "{t}");
            assert!(t.ends_with(CUT));
        }
        let written = serde_json::to_string(&s).unwrap_or_default();
        assert!(written.len() < 4 * 1024, "{} bytes", written.len());
        // Short texts are left as they are.
        let mut short = ScalingPolicyStatus {
            reason: Some("scaled on p95".into()),
            ..Default::default()
        };
        bound(&mut short);
        assert_eq!(short.reason.as_deref(), Some("scaled on p95"));
    }

    #[test]
    fn what_is_written_is_bounded() {
        use super::super::status::{Outcome, to_write};
        let message = format!("spec.signals[0].custom.query: {}", "x".repeat(70_000));
        let s = to_write(
            None,
            Some(1),
            &Outcome::Invalid { message },
            "2026-12-05T00:00:00Z",
            None,
            None,
            None,
        );
        let written = serde_json::to_string(&s).unwrap_or_default();
        assert!(
            s.is_some() && written.len() < 4 * 1024,
            "{} bytes",
            written.len()
        );
    }
}
