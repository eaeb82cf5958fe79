//! Spaces background work evenly: at most `rate` starts per second across the operator, so
//! a thousand policies due at once never become a thousand queries at once.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// `rate` starts per second; 0 or less means one a second.
    pub fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        Self {
            spacing: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's turn: the first is served at once, each next one `spacing`
    /// after the one before.
    pub async fn turn(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.spacing);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_by_the_rate() {
        let pacer = std::sync::Arc::new(Pacer::new(4.0));
        let start = Instant::now();
        let mut tasks = vec![];
        for _ in 0..5 {
            let p = pacer.clone();
            tasks.push(tokio::spawn(async move {
                p.turn().await;
                Instant::now()
            }));
        }
        let mut at = vec![];
        for t in tasks {
            at.push(t.await.map(|i| i - start).unwrap_or_default());
        }
        at.sort();
        let millis: Vec<u128> = at.iter().map(|d| d.as_millis()).collect();
        assert_eq!(millis, [0, 250, 500, 750, 1000]);
    }
}
