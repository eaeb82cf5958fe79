//! Jobs on a Redis list, as Sidekiq, Celery and RQ keep them: the web tier pushes one per
//! request, workers pop them (BRPOP) and do real CPU work for each.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncTypedCommands;
use redis::aio::MultiplexedConnection;

use crate::metrics::Metrics;

/// How long a worker's BRPOP waits for a job before it asks again.
const POP_WAIT_SECONDS: f64 = 1.0;

pub async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| format!("--redis-url: {e}"))?;
    // Longer than a blocking pop waits, so a pop is not cut short as a timeout.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs_f64(POP_WAIT_SECONDS + 5.0)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| format!("--redis-url {url}: {e}"))
}

pub async fn publish(conn: &MultiplexedConnection, queue: &str, m: &Metrics, id: u64) -> bool {
    let mut conn = conn.clone();
    let ok = conn.lpush(queue, id).await.is_ok();
    if ok {
        m.published.inc();
    }
    ok
}

/// Takes jobs off `queue` for ever, `work` rounds of CPU each, one at a time.
pub async fn work(url: &str, queue: &str, rounds: u64, m: Arc<Metrics>) -> Result<(), String> {
    let mut conn = connect(url).await?;
    loop {
        match conn.brpop(queue, POP_WAIT_SECONDS).await {
            Ok(Some(_job)) => {
                tokio::task::spawn_blocking(move || crate::burn(rounds))
                    .await
                    .map_err(|e| e.to_string())?;
                m.processed.inc();
            }
            Ok(None) => {}
            // Reconnects after a broker restart, without spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                conn = connect(url).await.unwrap_or(conn);
            }
        }
    }
}
