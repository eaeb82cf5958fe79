//! Sharding across operator replicas: each namespace belongs to one of `count` shards by a
//! stable hash, and a replica evaluates only its shard's policies. A shard's replicas elect
//! one of them through the shard's own Lease, so a standby takes a failed one's shard over
//! within the lease duration. By namespace, so policies sharing a connection budget (always
//! one namespace) are decided by one replica.

/// This replica's shard: `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "--shard must be in 0..{count} (--shards {count}), got {index}"
            ));
        }
        Ok(Self { index, count })
    }

    /// Which shard a namespace belongs to.
    pub fn of(namespace: &str, count: u32) -> u32 {
        (fnv1a(namespace) % u64::from(count.max(1))) as u32
    }

    pub fn owns(&self, namespace: &str) -> bool {
        Self::of(namespace, self.count) == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespace_has_exactly_one_shard_and_they_spread() {
        let shards: Vec<Shard> = (0..3).filter_map(|i| Shard::new(i, 3).ok()).collect();
        let mut per = [0u32; 3];
        for n in 0..3000 {
            let ns = format!("team-{n}");
            let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(&ns)).collect();
            assert_eq!(owners.len(), 1, "{ns}");
            per[owners[0].index as usize] += 1;
        }
        assert!(per.iter().all(|&c| (900..1100).contains(&c)), "{per:?}");
        // Stable: the same namespace, the same shard, in every build.
        assert_eq!(Shard::of("shop", 3), Shard::of("shop", 3));
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_shard_outside_the_count_is_refused() {
        assert!(Shard::new(3, 3).is_err());
        assert!(Shard::new(0, 0).is_err());
        assert_eq!(Shard::new(0, 1).map(|s| s.owns("any")), Ok(true));
    }
}
