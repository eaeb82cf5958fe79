//! The database hold: when the database is the bottleneck, more app servers only add load
//! and connections, so scale-up stops (scale-down still applies).

use super::DatabaseEvidence;
use super::step::Step;
use crate::decision::Limit;

pub fn apply(s: &mut Step, db: &DatabaseEvidence, hold: bool) {
    let bound = db.bound();
    if bound && hold && s.desired > s.current {
        let current = s.current;
        s.set(
            current,
            Limit::DatabaseBound,
            format!(
                "database-bound ({}): holding {current} replicas; more app servers would only add load and connections. Cache hot reads, add indexes, or add a read replica",
                db.describe()
            ),
        );
    }
    let message = if bound {
        db.describe()
    } else {
        "database is not the bottleneck".into()
    };
    s.found("DatabaseBound", bound, message);
}
