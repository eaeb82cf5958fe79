//! The status this operator last wrote for each policy: what the next one is compared with,
//! since the watch cache can lag (far, when the API server is overloaded, and then every
//! evaluation would write again and overload it more); and why the API server last refused
//! one, until a write succeeds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::api::ScalingPolicyStatus;

/// Longest the watch cache is taken to lag behind a status this process wrote.
const CACHE_LAG_LIMIT: Duration = Duration::from_secs(30);

#[derive(Default, Debug)]
pub(super) struct Written {
    written: HashMap<String, (ScalingPolicyStatus, Instant)>,
    refused: HashMap<String, String>,
}

impl Written {
    /// The status last written for `key` while the cache's copy (`cached`) has not caught up
    /// with it; once it has, the copy here is dropped.
    pub fn newer_than(
        &mut self,
        key: &str,
        cached: Option<&ScalingPolicyStatus>,
        now: Instant,
    ) -> Option<ScalingPolicyStatus> {
        match self.written.get(key) {
            Some((w, _)) if Some(w) == cached => {
                self.written.remove(key);
                None
            }
            // The cache lags by moments, not this long: another writer changed the status
            // (forged values), and the cache's copy is what is stored. It is compared with
            // the next evaluation, which then writes the operator's own values back.
            Some((_, at)) if now.saturating_duration_since(*at) > CACHE_LAG_LIMIT => {
                self.written.remove(key);
                None
            }
            w => w.map(|(w, _)| w.clone()),
        }
    }

    pub fn wrote(&mut self, key: &str, status: ScalingPolicyStatus, now: Instant) {
        self.refused.remove(key);
        self.written.insert(key.to_string(), (status, now));
    }

    /// Whether a refusal for `why` is news (the first, or another reason than the last).
    pub fn refused(&mut self, key: &str, why: &str) -> bool {
        self.refused.insert(key.to_string(), why.to_string()) != Some(why.to_string())
    }

    pub fn forget(&mut self, key: &str) {
        self.written.remove(key);
        self.refused.remove(key);
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.written.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_status_stands_until_the_cache_has_it_or_cannot_be_lagging() {
        let mut w = Written::default();
        let t0 = Instant::now();
        let mine = ScalingPolicyStatus {
            desired_replicas: Some(4),
            ..Default::default()
        };
        w.wrote("ns/a", mine.clone(), t0);
        let older = ScalingPolicyStatus::default();
        // The cache still has the older one: what was written is newer.
        assert_eq!(w.newer_than("ns/a", Some(&older), t0), Some(mine.clone()));
        // Once the cache has it, the copy here goes.
        assert_eq!(w.newer_than("ns/a", Some(&mine), t0), None);
        assert_eq!(w.keys().count(), 0);
        // A cache that still differs after the lag limit was written by someone else.
        w.wrote("ns/a", mine, t0);
        let later = t0 + CACHE_LAG_LIMIT + Duration::from_secs(1);
        assert_eq!(w.newer_than("ns/a", Some(&older), later), None);
    }

    #[test]
    fn a_refusal_is_news_once_and_leaves_with_the_policy() {
        let mut w = Written::default();
        assert!(w.refused("ns/a", "too large"));
        assert!(!w.refused("ns/a", "too large"));
        w.forget("ns/a");
        assert!(w.refused("ns/a", "too large"));
    }
}
