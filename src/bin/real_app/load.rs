//! The open-loop load: requests at a fixed rate per phase, whatever the app answers, so a slow
//! app builds a queue as real users would. Prints one JSON line per phase.

use std::time::{Duration, Instant};

fn phase(s: &str) -> Result<(f64, f64), String> {
    let (rate, secs) = s
        .split_once(':')
        .ok_or_else(|| format!("phase {s:?}: expected RATE:SECONDS, e.g. 20:120"))?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("phase {s:?}: rate must be a number"))?;
    let secs: f64 = secs
        .parse()
        .map_err(|_| format!("phase {s:?}: seconds must be a number"))?;
    if !(rate > 0.0 && rate <= 10_000.0 && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "phase {s:?}: rate must be in (0, 10000], seconds in (0, 86400]"
        ));
    }
    Ok((rate, secs))
}

pub async fn load(url: &str, phases: &[String]) -> Result<(), String> {
    let phases: Vec<(f64, f64)> = phases.iter().map(|p| phase(p)).collect::<Result<_, _>>()?;
    // A connection per request, as many separate users open: a Service balances connections,
    // so a few kept-alive ones would pin the load to the pods that were there first.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    for (i, (rate, secs)) in phases.into_iter().enumerate() {
        let started = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / rate);
        let mut tasks = tokio::task::JoinSet::new();
        let mut next = started;
        while started.elapsed().as_secs_f64() < secs {
            tokio::time::sleep_until(next.into()).await;
            next += gap;
            let (client, url) = (client.clone(), url.to_string());
            tasks.spawn(async move {
                let t = Instant::now();
                let ok = client
                    .get(url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                (ok, t.elapsed().as_secs_f64())
            });
        }
        let mut times = vec![];
        let mut failed = 0usize;
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok((true, t)) => times.push(t),
                _ => failed += 1,
            }
        }
        times.sort_by(f64::total_cmp);
        let p95 = times
            .get(((times.len() as f64 * 0.95) as usize).min(times.len().saturating_sub(1)))
            .copied();
        println!(
            "{}",
            serde_json::json!({"phase": i, "rate": rate, "seconds": secs, "ok": times.len(),
                               "failed": failed, "p95Seconds": p95})
        );
    }
    Ok(())
}
