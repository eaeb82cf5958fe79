//! The database hold: when the database is the bottleneck, more app servers only add load
//! and connections, so scale-up stops (scale-down still applies). It holds growth, not the
//! first replica: a worker at zero with work waiting starts one, or the work never moves.
//!
//! A hot database is the bottleneck only while the app is not saturated itself. When the
//! app's own CPU is at its ceiling too, holding would turn the app tier into the outage, so
//! the app may grow as far as its CPU alone asks (sized on load, not boosted by latency,
//! which a slow database inflates), and no further.

use super::step::Step;
use super::{AppCpu, DatabaseEvidence};
use crate::decision::Limit;

/// App CPU utilization (percent) from which the app counts as saturated.
pub const APP_SATURATED_PERCENT: f64 = 90.0;

pub fn apply(s: &mut Step, db: &DatabaseEvidence, hold: bool, app: Option<&AppCpu>) {
    let bound = db.bound();
    let first = i32::from(s.desired > 0);
    if bound && hold && s.desired > s.current.max(first) {
        let current = s.current.max(first);
        match app.filter(|a| a.percent >= APP_SATURATED_PERCENT) {
            Some(a) => {
                let by_cpu = a.sized(s.ready.max(1)).max(current);
                if s.desired > by_cpu {
                    s.set(
                        by_cpu,
                        Limit::DatabaseBound,
                        format!(
                            "database-bound ({}) and app CPU saturated ({:.0}%): growing only as far as app CPU asks ({by_cpu}); more would only load the database",
                            db.describe(),
                            a.percent
                        ),
                    );
                }
            }
            None => s.set(
                current,
                Limit::DatabaseBound,
                format!(
                    "database-bound ({}): holding {current} replicas; more app servers would only add load and connections. Cache hot reads, add indexes, or add a read replica",
                    db.describe()
                ),
            ),
        }
    }
    let message = if bound {
        db.describe()
    } else {
        "database is not the bottleneck".into()
    };
    s.found("DatabaseBound", bound, message);
}
