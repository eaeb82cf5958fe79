//! How the watches reconnect.

use std::time::Duration;

/// The watches' reconnect backoff: 0.5 s doubling to at most 5 s, so that once the API
/// server is back the caches are fresh within seconds (kube's default reaches 30 s).
#[derive(Clone, Debug, Default)]
pub struct WatchBackoff {
    failures: u32,
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let ms = 500u64.saturating_mul(1u64 << self.failures.min(10));
        self.failures = self.failures.saturating_add(1);
        Some(Duration::from_millis(ms.min(5_000)))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_reconnect_within_five_seconds() {
        let d: Vec<u64> = WatchBackoff::default()
            .take(6)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(d, vec![500, 1000, 2000, 4000, 5000, 5000]);
    }
}
