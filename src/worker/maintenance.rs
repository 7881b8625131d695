//! Background duties of each worker: renewing its leases, reaping expired ones (any worker's),
//! promoting due retries.
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::in_flight::InFlight;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::telemetry::LogThrottle;

const PROMOTE_EVERY: Duration = Duration::from_millis(250);

/// Runs until `stop`.
pub async fn run(
    queue: Queue,
    in_flight: InFlight,
    metrics: Metrics,
    renew_every: Duration,
    stop: CancellationToken,
) {
    let mut promote = tokio::time::interval(PROMOTE_EVERY);
    // Promotion runs four times a second: in an outage, one line a second is plenty.
    let quiet = LogThrottle::new();
    let mut renew = tokio::time::interval(renew_every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = renew.tick() => {
                let held = in_flight.snapshot();
                if !held.is_empty()
                    && let Err(e) = queue.extend(&held).await
                {
                    warn!(error = %e, leases = held.len(), "renewing leases failed");
                }
                let (reaped, failed) = queue.reap().await;
                if reaped > 0 {
                    metrics.jobs_reaped.inc_by(reaped.unsigned_abs());
                    info!(jobs = reaped, "returned jobs of expired leases to pending");
                }
                if let Some(e) = failed {
                    warn!(error = %e, "reaping failed");
                }
            }
            _ = promote.tick() => {
                if let (_, Some(e)) = queue.promote_due().await
                    && let Some(held_back) = quiet.admit(queue.clock().now_ms())
                {
                    warn!(error = %e, held_back, "promoting due retries failed");
                }
            }
        }
    }
}
