//! KEDA's own loop for `minReplicaCount: 0`, beside the HPA it creates (minimum 1). Every
//! `pollingInterval` it asks each trigger whether it is active (its value over its
//! activation threshold). At zero, an active trigger scales to 1 and the HPA takes over from
//! there; with no trigger active for `cooldownPeriod` since the last active one, it scales
//! to zero. A trigger that errors keeps the count as it is.

/// KEDA's defaults.
pub const POLLING_SECONDS: usize = 30;
pub const COOLDOWN_SECONDS: usize = 300;

#[derive(Clone, Debug)]
pub struct KedaZero {
    next: usize,
    /// KEDA keeps it in the ScaledObject's status; none yet counts as long ago.
    last_active: Option<usize>,
}

impl KedaZero {
    pub fn new() -> Self {
        KedaZero {
            next: 0,
            last_active: None,
        }
    }

    /// Whether KEDA polls its triggers at `now`.
    pub fn polls(&mut self, now: usize) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + POLLING_SECONDS;
        true
    }

    /// The replica count KEDA itself sets after a poll: `active` is None when a trigger
    /// could not be read and none of the others was active.
    pub fn after_poll(&mut self, now: usize, active: Option<bool>, current: i32) -> Option<i32> {
        match active {
            Some(true) => {
                self.last_active = Some(now);
                (current == 0).then_some(1)
            }
            Some(false) => {
                let cooled = self.last_active.is_none_or(|t| now - t >= COOLDOWN_SECONDS);
                (current > 0 && cooled).then_some(0)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_one_replica_on_a_poll_and_stops_a_cooldown_after_the_last_active_one() {
        let mut k = KedaZero::new();
        assert!(k.polls(0));
        assert!(!k.polls(29));
        assert!(k.polls(30));
        assert_eq!(k.after_poll(30, Some(true), 0), Some(1));
        assert_eq!(k.after_poll(60, Some(true), 5), None);
        assert_eq!(k.after_poll(300, Some(false), 5), None);
        assert_eq!(k.after_poll(360, Some(false), 5), Some(0));
        // An error never scales, either way.
        assert_eq!(k.after_poll(390, None, 0), None);
        let mut fresh = KedaZero::new();
        assert_eq!(fresh.after_poll(0, Some(false), 1), Some(0));
    }
}
