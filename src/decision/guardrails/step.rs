//! The proposal as the rules pass it along: each rule may raise it, hold it or cap it, and
//! the one that changed it last explains it.

use super::Finding;
use crate::decision::Limit;

pub struct Step {
    pub current: i32,
    pub ready: i32,
    pub max: i32,
    pub desired: i32,
    pub limited_by: Limit,
    pub reason: String,
    pub findings: Vec<Finding>,
}

impl Step {
    /// Raises the proposal to `n` (never past maxReplicas) when that is more.
    pub fn raise_to(&mut self, n: i32, limit: Limit, why: impl FnOnce(i32) -> String) {
        let n = n.min(self.max);
        if n > self.desired {
            self.desired = n;
            self.limited_by = limit;
            self.reason = why(n);
        }
    }

    /// Lowers the proposal to `cap` when it is more.
    pub fn cap_at(&mut self, cap: i32, limit: Limit, why: String) {
        if self.desired > cap {
            self.desired = cap;
            self.limited_by = limit;
            self.reason = why;
        }
    }

    /// Sets the proposal to `n`, whatever it was.
    pub fn set(&mut self, n: i32, limit: Limit, why: String) {
        self.desired = n;
        self.limited_by = limit;
        self.reason = why;
    }

    pub fn found(&mut self, reason: &'static str, active: bool, message: String) {
        self.findings.push(Finding {
            reason,
            active,
            message,
        });
    }
}
