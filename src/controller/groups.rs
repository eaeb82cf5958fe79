//! Policies grouped by something their spec names (the database whose connections they
//! share, the target they scale), kept from the policy watch, so one evaluation looks at its
//! group instead of at every policy.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub struct Groups {
    members: HashMap<String, BTreeSet<String>>,
    of: HashMap<String, String>,
}

impl Groups {
    /// Puts `key` in `group` (None: in none), leaving the one it was in.
    pub fn set(&mut self, key: &str, group: Option<String>) {
        if self.of.get(key) == group.as_ref() {
            return;
        }
        self.remove(key);
        if let Some(g) = group {
            self.members
                .entry(g.clone())
                .or_default()
                .insert(key.to_string());
            self.of.insert(key.to_string(), g);
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(g) = self.of.remove(key)
            && let Some(m) = self.members.get_mut(&g)
        {
            m.remove(key);
            if m.is_empty() {
                self.members.remove(&g);
            }
        }
    }

    pub fn members(&self, group: &str) -> impl Iterator<Item = &String> {
        self.members.get(group).into_iter().flatten()
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.of.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(g: &Groups, group: &str) -> Vec<String> {
        g.members(group).cloned().collect()
    }

    #[test]
    fn members_follow_their_specs_and_leave() {
        let mut g = Groups::default();
        g.set("ns/a", Some("ns/orders".into()));
        g.set("ns/b", Some("ns/orders".into()));
        g.set("ns/c", None);
        assert_eq!(members(&g, "ns/orders"), ["ns/a", "ns/b"]);
        g.set("ns/b", Some("ns/users".into()));
        assert_eq!(members(&g, "ns/orders"), ["ns/a"]);
        assert_eq!(members(&g, "ns/users"), ["ns/b"]);
        g.remove("ns/a");
        assert!(members(&g, "ns/orders").is_empty());
        assert_eq!(g.keys().count(), 1);
    }
}
