//! The mail worker: `worker.concurrency` jobs at once, each making a fresh code, storing its MAC
//! and mailing it; failures retried with exponential backoff or dead-lettered.
mod maintenance;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use crate::domain::{EmailAddress, OtpCode};
use crate::mail::{Mailer, SendError};
use crate::metrics::Metrics;
use crate::queue::{Job, Queue, now_ms};
use crate::store::{Codes, StoreError};

/// Most jobs one claim takes, so a busy worker needs few round trips per job.
const CLAIM_BATCH: usize = 32;

/// What became of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retried,
    DeadLettered,
    DroppedExpired,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::DroppedExpired => "dropped_expired",
        }
    }
}

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

/// Processes single jobs; shared by the concurrent tasks of one worker.
pub struct JobRunner {
    queue: Arc<Queue>,
    codes: Codes,
    mailer: Arc<Mailer>,
    metrics: Metrics,
    config: WorkerConfig,
}

impl JobRunner {
    pub async fn process(&self, raw: String) -> Outcome {
        let job = Job::parse(&raw);
        let span = info_span!(
            "job",
            otel.name = "send code",
            otel.kind = "consumer",
            job_id = job.as_ref().map(|j| j.id.as_str()).unwrap_or("malformed"),
            trace_id = tracing::field::Empty,
        );
        if let Ok(job) = &job {
            crate::telemetry::adopt(&span, &job.trace);
        }
        async {
            let outcome = match job {
                Ok(job) => self.deliver(&raw, job).await,
                Err(e) => self.settle_dead(&raw, format!("malformed job: {e}")).await,
            };
            self.metrics
                .jobs
                .with_label_values(&[outcome.label()])
                .inc();
            outcome
        }
        .instrument(span)
        .await
    }

    async fn deliver(&self, raw: &str, job: Job) -> Outcome {
        let ttl_ms = u64::try_from(self.codes.policy().code_ttl.as_millis()).unwrap_or(u64::MAX);
        if job.age_ms(now_ms()) > ttl_ms {
            info!(
                age_ms = job.age_ms(now_ms()),
                "job older than the code lifetime; dropped"
            );
            self.settle(|| self.queue.ack(raw)).await;
            return Outcome::DroppedExpired;
        }
        let address = match EmailAddress::parse(&job.email) {
            Ok(a) => a,
            Err(e) => {
                return self
                    .settle_dead_job(raw, job, format!("invalid address: {e}"))
                    .await;
            }
        };
        match self.send_code(&address).await {
            Ok(()) => {
                info!(to = %address.masked(), attempt = job.attempt + 1, "code mailed");
                self.settle(|| self.queue.ack(raw)).await;
                Outcome::Sent
            }
            Err(SendError::Permanent(e)) => {
                self.metrics
                    .smtp_errors
                    .with_label_values(&["permanent"])
                    .inc();
                warn!(to = %address.masked(), error = %e, "permanent failure; dead-lettered");
                self.settle_dead_job(raw, job, e).await
            }
            Err(SendError::Transient(e)) => {
                self.metrics
                    .smtp_errors
                    .with_label_values(&["transient"])
                    .inc();
                self.retry_or_dead(raw, job, e).await
            }
        }
    }

    async fn send_code(&self, address: &EmailAddress) -> Result<(), SendError> {
        let code = OtpCode::generate(self.codes.policy().digits);
        let message = self.mailer.compose(address, &code)?;
        // Store first: a mail must never carry a code that cannot verify.
        self.codes
            .store(address, &code)
            .instrument(info_span!("store code"))
            .await
            .map_err(|e| SendError::Transient(format!("storing the code: {e}")))?;
        let started = Instant::now();
        let result = self
            .mailer
            .send(message)
            .instrument(info_span!("smtp send", otel.kind = "client"))
            .await;
        self.metrics
            .smtp_duration
            .observe(started.elapsed().as_secs_f64());
        result
    }

    async fn retry_or_dead(&self, raw: &str, mut job: Job, error: String) -> Outcome {
        job.attempt += 1;
        if job.attempt >= self.config.max_attempts {
            warn!(attempts = job.attempt, error = %error, "giving up; dead-lettered");
            return self.settle_dead_job(raw, job, error).await;
        }
        // Exponential backoff: base * 2^(attempt-1).
        let delay = self
            .config
            .retry_base
            .saturating_mul(1 << (job.attempt - 1).min(20));
        let due = now_ms().saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        warn!(attempt = job.attempt, retry_in_ms = delay.as_millis() as u64, error = %error, "send failed; will retry");
        job.last_error = Some(error);
        self.settle(|| self.queue.retry(raw, &job, due)).await;
        Outcome::Retried
    }

    async fn settle_dead_job(&self, raw: &str, mut job: Job, error: String) -> Outcome {
        job.last_error = Some(error);
        let annotated = job.to_json();
        self.settle(|| self.queue.dead_letter(raw, &annotated))
            .await;
        Outcome::DeadLettered
    }

    async fn settle_dead(&self, raw: &str, error: String) -> Outcome {
        warn!(error = %error, "dead-lettered");
        let annotated = serde_json::json!({ "raw": raw, "last_error": error }).to_string();
        self.settle(|| self.queue.dead_letter(raw, &annotated))
            .await;
        Outcome::DeadLettered
    }

    /// Queue bookkeeping must not be skipped: while Redis is away, keep trying (the job stays
    /// on this worker's processing list meanwhile, so a crash still leaves it to the reaper).
    async fn settle<F, Fut>(&self, op: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let mut wait = Duration::from_millis(100);
        for _ in 0..60 {
            match op().await {
                Ok(()) => return,
                Err(e) => {
                    warn!(error = %e, "queue update failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        warn!("queue update abandoned; the job stays on the processing list for the reaper");
    }
}
