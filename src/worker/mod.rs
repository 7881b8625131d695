//! The mail worker: up to `worker.concurrency` jobs at once, each under a lease the maintenance
//! loop renews; an idle worker blocks on wake-ups instead of polling.
mod in_flight;
mod job_runner;
mod maintenance;

pub use job_runner::{JobRunner, Outcome};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use in_flight::InFlight;

use crate::codes::Codes;
use crate::health::Health;
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::queue::{Queue, RetryPolicy};
use crate::telemetry::LogThrottle;

/// Most jobs one claim takes, so a busy worker needs few round trips per job.
const CLAIM_BATCH: usize = 32;

pub struct WorkerConfig {
    pub concurrency: usize,
    pub retry: RetryPolicy,
    /// How often leases are renewed (and expired ones reaped).
    pub renew_every: Duration,
    /// How long a lease lasts without renewal (`worker.reap_after_secs`).
    pub lease: Duration,
    /// Traces are exported: the SMTP send and the activation get spans of their own. Without an
    /// exporter they would add nothing to the log lines (the job's span names the job).
    pub traced: bool,
}

pub struct Worker {
    runner: Arc<JobRunner>,
    in_flight: InFlight,
    /// One "taking jobs failed" line a second for all partitions' consumers: in an outage each
    /// of them fails every backoff.
    quiet: LogThrottle,
}

/// The worker's background duties, run as a task of its own so the supervisor can name it.
pub struct Maintenance {
    queue: Queue,
    in_flight: InFlight,
    metrics: Metrics,
    renew_every: Duration,
}

impl Maintenance {
    /// Runs until `stop`, which must come after the worker drained.
    pub async fn run(self, stop: CancellationToken) {
        maintenance::run(
            self.queue,
            self.in_flight,
            self.metrics,
            self.renew_every,
            stop,
        )
        .await;
    }
}

impl Worker {
    /// `queue` must have been built with `config.lease` as its lease.
    pub fn new(
        queue: Queue,
        codes: Codes,
        mailer: Mailer,
        metrics: Metrics,
        health: Health,
        config: WorkerConfig,
    ) -> Self {
        Self {
            runner: Arc::new(JobRunner {
                queue,
                codes,
                mailer,
                metrics,
                health,
                config,
            }),
            in_flight: InFlight::default(),
            quiet: LogThrottle::new(),
        }
    }

    pub fn maintenance(&self) -> Maintenance {
        let r = &self.runner;
        Maintenance {
            queue: r.queue.clone(),
            in_flight: self.in_flight.clone(),
            metrics: r.metrics.clone(),
            renew_every: r.config.renew_every,
        }
    }

    /// Runs until `shutdown`, then finishes the jobs in flight and returns. One consumer per
    /// queue partition; all share the worker's `concurrency` slots, which a waiting consumer
    /// gets in turn (the semaphore is fair), so busy partitions share the worker evenly.
    pub async fn run(self, shutdown: CancellationToken) {
        let r = &self.runner;
        let concurrency = r.config.concurrency;
        let partitions = r.queue.partitions().count();
        info!(concurrency, partitions, "worker started");
        let slots = Arc::new(Semaphore::new(concurrency));
        let consumers = (0..partitions).map(|p| self.consume(p, &slots, &shutdown));
        futures_util::future::join_all(consumers).await;
        info!("worker draining in-flight jobs");
        let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
        let _drained = slots.acquire_many(all).await;
        info!("worker stopped");
    }

    /// Takes the jobs of one partition until `shutdown`; idle, it blocks on the partition's
    /// wake list.
    async fn consume(
        &self,
        partition: usize,
        slots: &Arc<Semaphore>,
        shutdown: &CancellationToken,
    ) {
        let r = &self.runner;
        let mut waker = r.queue.waker(partition);
        let mut backoff = Duration::from_millis(100);
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
            let mut permits = vec![first];
            while permits.len() < CLAIM_BATCH {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let failed = match r.queue.claim(partition, permits.len()).await {
                Ok(leases) if leases.is_empty() => {
                    drop(permits);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        woke = waker.wait() => woke.err(),
                    }
                }
                Ok(leases) => {
                    for (lease, permit) in leases.into_iter().zip(permits) {
                        let held = self.in_flight.hold(lease);
                        let runner = self.runner.clone();
                        tokio::spawn(async move {
                            runner.process(held).await;
                            drop(permit);
                        });
                    }
                    None
                }
                Err(e) => Some(e),
            };
            match failed {
                None => backoff = Duration::from_millis(100),
                Some(e) => {
                    if let Some(held_back) = self.quiet.admit(r.queue.clock().now_ms()) {
                        warn!(error = %e, partition, held_back, "taking jobs failed; retrying");
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
