//! The app's database: a pool of `--pool-size` connections (the policy's poolSizePerReplica),
//! through PgBouncer in the tests. Each request runs a cheap indexed read and, when asked, an
//! expensive aggregate whose size is the knob that makes the database the bottleneck. Simple
//! queries only: PgBouncer's transaction pooling cannot keep named prepared statements.

use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};

use crate::metrics::Metrics;

/// Rows of the `items` table the tests' database is created with.
const ITEMS: u64 = 10_000;

pub struct Db {
    pool: Pool,
}

impl Db {
    pub fn new(url: &str, size: usize) -> Result<Db, String> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| format!("--database-url: {e}"))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("--database-url: {e}"))?;
        Ok(Db { pool })
    }

    /// One request's work: wait for a connection (timed), then its queries (each timed).
    pub async fn request(&self, m: &Metrics, id: u64, expensive_rows: u64) -> Result<(), ()> {
        let waited = Instant::now();
        let client = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => {
                m.db_error(match e {
                    PoolError::Timeout(_) => "pool_timeout",
                    // PostgreSQL past max_connections: "sorry, too many clients already".
                    PoolError::Backend(e)
                        if e.code()
                            == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS) =>
                    {
                        "too_many_connections"
                    }
                    _ => "connect",
                });
                return Err(());
            }
        };
        m.pool_wait.observe(waited.elapsed().as_secs_f64());
        let cheap = format!("SELECT payload FROM items WHERE id = {}", id % ITEMS + 1);
        run(&client, m, "cheap", &cheap).await?;
        if expensive_rows > 0 {
            let expensive = format!(
                "SELECT sum(length(md5(i::text))) FROM generate_series(1, {expensive_rows}) AS i"
            );
            run(&client, m, "expensive", &expensive).await?;
        }
        Ok(())
    }
}

async fn run(
    client: &tokio_postgres::Client,
    m: &Metrics,
    which: &'static str,
    sql: &str,
) -> Result<(), ()> {
    let started = Instant::now();
    let result = client.simple_query(sql).await;
    m.query(which, started.elapsed().as_secs_f64());
    result.map(|_| ()).map_err(|_| m.db_error("query"))
}
