//! Pings Redis on a fixed period, so `email_otp_redis_up` and `/status` show reachability without
//! readiness depending on it: in an outage the API keeps answering its JSON 503 instead of every
//! replica leaving the load balancer.
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Health;
use crate::store::Store;

pub const PING_EVERY: Duration = Duration::from_secs(2);

/// Runs until `stop`; never fails, a failed ping is a reading.
pub async fn run(store: Store, health: Health, stop: CancellationToken) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut policy_checked = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        let up = store.ping().await.is_ok();
        let latency = up.then(|| started.elapsed());
        debug!(
            up,
            latency_ms = latency.map(|l| l.as_secs_f64() * 1000.0),
            "redis ping"
        );
        health.record_redis(latency);
        if up && !policy_checked {
            policy_checked = warn_unless_noeviction(&store).await;
        }
    }
}

/// Any policy but `noeviction` lets Redis drop codes, counters or queued jobs under memory
/// pressure. A warning, not a refusal: managed Redis services may not let the operator change it.
/// Returns whether the check is done (false: ask again on the next ping).
async fn warn_unless_noeviction(store: &Store) -> bool {
    match store.eviction_policy().await {
        Ok(Some(policy)) if policy != "noeviction" => {
            warn!(
                %policy,
                "Redis maxmemory-policy is not noeviction: under memory pressure it can evict codes, \
                 failure counters and queued jobs; set maxmemory-policy noeviction"
            );
            true
        }
        Ok(Some(_)) => {
            // Once per process: says the check ran (the warning above would say what it found).
            info!("Redis maxmemory-policy is noeviction");
            true
        }
        Ok(None) => true,
        Err(_) => false,
    }
}
