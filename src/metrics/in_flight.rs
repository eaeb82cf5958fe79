//! One bound on the Prometheus response bytes the operator holds at once, across every
//! source and namespace. The per-response cap bounds one answer; this bounds their sum, so
//! many padded answers at once cannot take the operator past its memory limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::limits::bytes;
use crate::plan::QueryError;

/// What each response may hold without counting against the bound: ordinary answers are a
/// few KiB, so a tenant filling the bound with padded ones cannot refuse another's.
pub const FREE_PER_RESPONSE: usize = 64 << 10;

/// A quarter of the operator's memory limit (its cgroup's), else 256 MiB: the rest is its
/// state, the parsed answers and the watch caches.
pub fn default_in_flight_bound() -> usize {
    cgroup_memory_limit().map_or(256 << 20, |limit| (limit / 4).max(FREE_PER_RESPONSE))
}

/// The memory limit of this process's cgroup (v2, then v1); None when unlimited.
fn cgroup_memory_limit() -> Option<usize> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let text = read("/sys/fs/cgroup/memory.max")
        .or_else(|| read("/sys/fs/cgroup/memory/memory.limit_in_bytes"))?;
    let limit: u64 = text.trim().parse().ok()?;
    // v1 writes "no limit" as a page-rounded i64::MAX.
    (limit < 1 << 60).then(|| usize::try_from(limit).ok())?
}

#[derive(Debug)]
pub struct InFlight {
    limit: usize,
    held: AtomicUsize,
}

impl InFlight {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(InFlight {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// No bound (tools that read one query at a time).
    pub fn unbounded() -> Arc<Self> {
        InFlight::new(usize::MAX)
    }

    /// Bytes held now beyond each response's free part.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// One response's bytes, given back when it is dropped (read, refused or cut off).
pub struct Held {
    bound: Arc<InFlight>,
    counted: usize,
}

impl Held {
    pub fn new(bound: &Arc<InFlight>) -> Self {
        Held {
            bound: bound.clone(),
            counted: 0,
        }
    }

    /// The response now holds `total` bytes; refused when its part beyond the free one would
    /// take the sum over the bound.
    pub fn grow_to(&mut self, total: usize) -> Result<(), QueryError> {
        let want = total.saturating_sub(FREE_PER_RESPONSE);
        let more = want.saturating_sub(self.counted);
        if more == 0 {
            return Ok(());
        }
        let b = &self.bound;
        let taken = b
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                h.checked_add(more).filter(|n| *n <= b.limit)
            });
        match taken {
            Ok(_) => {
                self.counted += more;
                Ok(())
            }
            Err(_) => Err(QueryError::OverLimit(format!(
                "Prometheus' responses held at once would exceed {} (--max-response-bytes-in-flight)",
                bytes(b.limit)
            ))),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.bound.held.fetch_sub(self.counted, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_responses_share_the_bound_and_small_ones_always_pass() {
        let bound = InFlight::new(1 << 20);
        let mut a = Held::new(&bound);
        assert_eq!(a.grow_to(700 << 10), Ok(()));
        let mut b = Held::new(&bound);
        let refused = b.grow_to(700 << 10);
        assert!(
            matches!(&refused, Err(QueryError::OverLimit(m)) if m.contains("1MiB") && m.contains("--max-response-bytes-in-flight")),
            "{refused:?}"
        );
        // An ordinary answer is not counted at all, however full the bound.
        let mut small = Held::new(&bound);
        assert_eq!(small.grow_to(FREE_PER_RESPONSE), Ok(()));
        // What a response held is given back when it is dropped.
        drop(a);
        drop(b);
        assert_eq!(bound.held(), 0);
        let mut c = Held::new(&bound);
        assert_eq!(c.grow_to(1 << 20), Ok(()));
        assert_eq!(bound.held(), (1 << 20) - FREE_PER_RESPONSE);
    }
}
