//! The mail worker: `worker.concurrency` jobs at once, each making a fresh code, storing its MAC
//! and mailing it; failures retried with exponential backoff or dead-lettered.
mod job_runner;
mod maintenance;

pub use job_runner::{JobRunner, Outcome};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::queue::Queue;
use crate::store::Codes;

/// Most jobs one claim takes, so a busy worker needs few round trips per job.
const CLAIM_BATCH: usize = 32;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub heartbeat: Duration,
    pub reap_after: Duration,
}

pub struct Worker {
    queue: Arc<Queue>,
    fetcher: Queue,
    codes: Codes,
    mailer: Arc<Mailer>,
    metrics: Metrics,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(
        queue: Queue,
        fetcher: Queue,
        codes: Codes,
        mailer: Arc<Mailer>,
        metrics: Metrics,
        config: WorkerConfig,
    ) -> Self {
        Self {
            queue: Arc::new(queue),
            fetcher,
            codes,
            mailer,
            metrics,
            config,
        }
    }

    /// Runs until `shutdown`, then finishes the jobs in flight and returns.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let worker_id = self.queue.worker_id().to_owned();
        info!(
            worker_id,
            concurrency = self.config.concurrency,
            "worker started"
        );
        let maintenance = tokio::spawn(maintenance::run(
            self.queue.clone(),
            self.metrics.clone(),
            self.config.clone(),
            shutdown.clone(),
        ));
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let this = Arc::new(JobRunner {
            queue: self.queue.clone(),
            codes: self.codes.clone(),
            mailer: self.mailer.clone(),
            metrics: self.metrics.clone(),
            config: self.config.clone(),
        });
        // Register before the first fetch, so a crash right after it still leaves the job to the reaper.
        if let Err(e) = self.queue.heartbeat(self.config.reap_after).await {
            warn!(error = %e, "first heartbeat failed; the maintenance loop retries");
        }
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
            let fetched = match self.queue.claim(permits.len()).await {
                Ok(jobs) if jobs.is_empty() => {
                    // Idle: hold one slot and block until a job arrives.
                    permits.truncate(1);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        f = self.fetcher.fetch() => f.map(|job| job.into_iter().collect()),
                    }
                }
                other => other,
            };
            match fetched {
                Ok(jobs) => {
                    backoff = Duration::from_millis(100);
                    for (raw, permit) in jobs.into_iter().zip(permits) {
                        let runner = this.clone();
                        tokio::spawn(async move {
                            runner.process(raw).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => {
                    warn!(error = %e, "fetching jobs failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        info!("worker draining in-flight jobs");
        let all = u32::try_from(self.config.concurrency).unwrap_or(u32::MAX);
        let _drained = slots.acquire_many(all).await;
        let _ = maintenance.await;
        match self.queue.release().await {
            Ok(n) => info!(returned = n, "worker stopped"),
            Err(e) => {
                warn!(error = %e, "worker stopped; its jobs will be reaped by another worker")
            }
        }
    }
}
