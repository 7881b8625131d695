//! Background duties of each worker: heartbeat, reaping dead workers' jobs, promoting due retries.
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::WorkerConfig;
use crate::metrics::Metrics;
use crate::queue::Queue;

const PROMOTE_EVERY: Duration = Duration::from_millis(250);

pub async fn run(
    queue: Arc<Queue>,
    metrics: Metrics,
    config: WorkerConfig,
    shutdown: CancellationToken,
) {
    let mut promote = tokio::time::interval(PROMOTE_EVERY);
    let mut beat = tokio::time::interval(config.heartbeat);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = beat.tick() => {
                if let Err(e) = queue.heartbeat(config.reap_after).await {
                    warn!(error = %e, "heartbeat failed");
                }
                match queue.reap().await {
                    Ok(0) => {}
                    Ok(n) => {
                        metrics.jobs_reaped.inc_by(n.unsigned_abs());
                        info!(jobs = n, "returned jobs of a dead worker to pending");
                    }
                    Err(e) => warn!(error = %e, "reaping failed"),
                }
            }
            _ = promote.tick() => {
                if let Err(e) = queue.promote_due().await {
                    warn!(error = %e, "promoting due retries failed");
                }
            }
        }
    }
}
