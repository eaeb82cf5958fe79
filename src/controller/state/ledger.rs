//! The connection-budget ledgers: by `namespace/database`, each sharing policy's claim, and
//! the claims of deleted policies whose targets still hold connections.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::super::groups::Groups;
use crate::api::TargetRef;
use crate::decision::guardrails::Claim;

#[derive(Default, Debug)]
pub(super) struct Ledger {
    /// By `namespace/database`: each sharing policy's claim.
    ledgers: HashMap<String, BTreeMap<String, Claim>>,
    /// Claims of deleted policies whose targets may still run (and hold connections): by
    /// policy key, their pool and target. They keep their `held` and need nothing, until
    /// the target is gone or at zero, or a policy of that key claims again.
    orphans: HashMap<String, (String, TargetRef)>,
    /// Who shares each connection budget, from the policy watch.
    pub sharers: Groups,
}

impl Ledger {
    /// The claims in `pool` other than `key`'s, and beside them those of `from_status` the
    /// ledger does not know yet (after a restart).
    pub fn neighbours(&self, pool: Option<&str>, key: &str, from_status: Vec<Claim>) -> Vec<Claim> {
        let mut neighbours: Vec<Claim> = pool
            .and_then(|p| self.ledgers.get(p))
            .map(|l| l.values().filter(|c| c.name != key).cloned().collect())
            .unwrap_or_default();
        let known: HashSet<String> = neighbours.iter().map(|c| c.name.clone()).collect();
        neighbours.extend(
            from_status
                .into_iter()
                .filter(|c| c.name != key && !known.contains(&c.name)),
        );
        neighbours
    }

    /// `key` claims `claim` in `pool`, having claimed in `old` before.
    pub fn claim(
        &mut self,
        key: &str,
        old: Option<String>,
        pool: Option<&str>,
        claim: Option<&Claim>,
    ) {
        if let Some(old) = old.filter(|o| Some(o.as_str()) != pool) {
            self.remove(&old, key);
        }
        if let (Some(p), Some(claim)) = (pool, claim) {
            self.orphans.remove(key);
            self.ledgers
                .entry(p.to_string())
                .or_default()
                .insert(key.to_string(), claim.clone());
        }
    }

    /// A deleted policy's claim in `pool` leaves, unless its `target` is given and it held
    /// replicas: then it stays, needing nothing, while the target runs them.
    pub fn forget(&mut self, key: &str, pool: Option<String>, target: Option<&TargetRef>) {
        self.sharers.remove(key);
        let Some(pool) = pool else { return };
        let claim = self.ledgers.get_mut(&pool).and_then(|l| l.get_mut(key));
        match (claim, target) {
            (Some(c), Some(t)) if c.held > 0 => {
                c.need = 0;
                self.orphans.insert(key.to_string(), (pool, t.clone()));
            }
            _ => self.remove(&pool, key),
        }
    }

    pub fn orphans_in(&self, pool: &str) -> Vec<(String, TargetRef)> {
        self.orphans
            .iter()
            .filter(|(_, (p, _))| p == pool)
            .map(|(k, (_, t))| (k.clone(), t.clone()))
            .collect()
    }

    /// The orphans of `pool` with their claims, for status.
    pub fn orphan_claims(&self, pool: &str) -> Vec<(String, TargetRef, Claim)> {
        let ledger = self.ledgers.get(pool);
        let mut listed: Vec<_> = self
            .orphans
            .iter()
            .filter(|(_, (p, _))| p == pool)
            .filter_map(|(k, (_, t))| {
                let c = ledger?.get(k)?;
                Some((k.clone(), t.clone(), c.clone()))
            })
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        listed
    }

    /// An orphan a sharer's status lists (after a restart): counted as held until its
    /// target is read. A key the ledger knows already is left as it is.
    pub fn adopt(&mut self, key: &str, pool: &str, target: TargetRef, claim: Claim) {
        let known =
            self.orphans.contains_key(key) || self.ledgers.values().any(|l| l.contains_key(key));
        if known || claim.held <= 0 {
            return;
        }
        self.orphans
            .insert(key.to_string(), (pool.to_string(), target));
        self.ledgers
            .entry(pool.to_string())
            .or_default()
            .insert(key.to_string(), Claim { need: 0, ..claim });
    }

    /// A deleted policy's target runs `replicas` now (None: it is gone).
    pub fn orphan_runs(&mut self, key: &str, replicas: Option<i32>) {
        let Some((pool, _)) = self.orphans.get(key).cloned() else {
            return;
        };
        match replicas.filter(|n| *n > 0) {
            Some(n) => {
                if let Some(c) = self.ledgers.get_mut(&pool).and_then(|l| l.get_mut(key)) {
                    c.held = n;
                }
            }
            None => {
                self.orphans.remove(key);
                self.remove(&pool, key);
            }
        }
    }

    /// The sharers of `pool` other than `me` without a claim in its ledger yet.
    pub fn unledgered(&self, pool: &str, me: &str) -> Vec<String> {
        let ledger = self.ledgers.get(pool);
        self.sharers
            .members(pool)
            .filter(|k| *k != me && !ledger.is_some_and(|l| l.contains_key(*k)))
            .cloned()
            .collect()
    }

    fn remove(&mut self, pool: &str, key: &str) {
        if let Some(l) = self.ledgers.get_mut(pool) {
            l.remove(key);
            if l.is_empty() {
                self.ledgers.remove(pool);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(name: &str, held: i32) -> Claim {
        Claim {
            name: name.into(),
            pool_size: 10,
            held,
            need: held,
        }
    }

    #[test]
    fn a_deleted_claim_stays_while_its_target_runs_and_leaves_at_zero() {
        let mut l = Ledger::default();
        l.claim("ns/a", None, Some("ns/db"), Some(&claim("ns/a", 3)));
        let t = TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "a".into(),
        };
        l.forget("ns/a", Some("ns/db".into()), Some(&t));
        let seen = l.neighbours(Some("ns/db"), "ns/b", vec![]);
        assert_eq!((seen[0].held, seen[0].need), (3, 0));
        l.orphan_runs("ns/a", Some(0));
        assert!(l.neighbours(Some("ns/db"), "ns/b", vec![]).is_empty());
        assert!(l.orphans_in("ns/db").is_empty());
    }

    #[test]
    fn claims_from_status_count_only_where_the_ledger_has_none() {
        let mut l = Ledger::default();
        l.claim("ns/a", None, Some("ns/db"), Some(&claim("ns/a", 2)));
        let seen = l.neighbours(
            Some("ns/db"),
            "ns/c",
            vec![claim("ns/a", 9), claim("ns/b", 4)],
        );
        let held: Vec<i32> = seen.iter().map(|c| c.held).collect();
        assert_eq!(held, [2, 4]);
    }

    #[test]
    fn an_orphan_listed_in_status_is_adopted_once_and_listed_back() {
        let t = TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "a".into(),
        };
        // A restarted operator: the ledger is empty, the sharer's status lists ns/a.
        let mut l = Ledger::default();
        l.adopt("ns/a", "ns/db", t.clone(), claim("ns/a", 4));
        let seen = l.neighbours(Some("ns/db"), "ns/b", vec![]);
        assert_eq!((seen[0].held, seen[0].need), (4, 0));
        let listed = l.orphan_claims("ns/db");
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].0.as_str(), listed[0].2.held), ("ns/a", 4));
        // Listed again by another sharer: what the ledger knows stands.
        l.orphan_runs("ns/a", Some(2));
        l.adopt("ns/a", "ns/db", t.clone(), claim("ns/a", 9));
        assert_eq!(l.neighbours(Some("ns/db"), "ns/b", vec![])[0].held, 2);
        // A live claim is never turned into an orphan; an empty one is not adopted.
        l.claim("ns/c", None, Some("ns/db"), Some(&claim("ns/c", 3)));
        l.adopt("ns/c", "ns/db", t.clone(), claim("ns/c", 5));
        l.adopt("ns/d", "ns/db", t, claim("ns/d", 0));
        let keys: Vec<String> = l.orphan_claims("ns/db").into_iter().map(|o| o.0).collect();
        assert_eq!(keys, ["ns/a"]);
        // Its target gone: it leaves.
        l.orphan_runs("ns/a", None);
        assert!(l.orphan_claims("ns/db").is_empty());
    }
}
