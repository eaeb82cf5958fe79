//! Events through kube's Recorder, renewed every 6 minutes. The Recorder keeps each event it
//! sent for 6 minutes, to count repeats into one series, but never gives back the table it
//! grew: a fleet's first round of events left about 4 KB per policy held for good.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

/// The Recorder's own 6 minutes: an event older than that is never counted into a series
/// again, so only a repeat that falls across a renewal starts a new one.
const RENEW_EVERY: Duration = Duration::from_secs(360);

pub struct Events {
    client: Client,
    reporter: Reporter,
    current: Mutex<Current>,
}

struct Current {
    since: Instant,
    recorder: Recorder,
    renewals: u64,
}

impl Events {
    pub fn new(client: Client, reporter: Reporter, now: Instant) -> Self {
        let recorder = Recorder::new(client.clone(), reporter.clone());
        Self {
            client,
            reporter,
            current: Mutex::new(Current {
                since: now,
                recorder,
                renewals: 0,
            }),
        }
    }

    /// Renews the Recorder when due, though nothing is published: its table goes with it.
    pub async fn renew_periodically(&self) {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            self.recorder(Instant::now());
        }
    }

    /// The Recorder to publish with at `now`, and how many times it was renewed.
    pub fn recorder(&self, now: Instant) -> (Recorder, u64) {
        let mut c = match self.current.lock() {
            Ok(c) => c,
            // Nothing is half-written in it: a Recorder is replaced whole.
            Err(poisoned) => poisoned.into_inner(),
        };
        if now.saturating_duration_since(c.since) >= RENEW_EVERY {
            c.recorder = Recorder::new(self.client.clone(), self.reporter.clone());
            c.since = now;
            c.renewals += 1;
        }
        (c.recorder.clone(), c.renewals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        let (service, _handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        Client::new(service, "default")
    }

    #[tokio::test]
    async fn the_recorder_is_renewed_once_its_period_has_passed() {
        let t0 = Instant::now();
        let events = Events::new(client(), "headroom".into(), t0);
        assert_eq!(events.recorder(t0).1, 0);
        assert_eq!(events.recorder(t0 + Duration::from_secs(359)).1, 0);
        assert_eq!(events.recorder(t0 + RENEW_EVERY).1, 1);
        // The period counts from the renewal.
        assert_eq!(events.recorder(t0 + Duration::from_secs(719)).1, 1);
        assert_eq!(events.recorder(t0 + 2 * RENEW_EVERY).1, 2);
    }
}
