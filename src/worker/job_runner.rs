//! One job's life: a fresh code, its MAC stored, the mail sent, and the queue told the outcome.
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{Instrument, info, info_span, warn};

use super::WorkerConfig;
use crate::domain::{EmailAddress, OtpCode};
use crate::mail::{Mailer, SendError};
use crate::metrics::Metrics;
use crate::queue::{Job, Queue, now_ms};
use crate::store::{Codes, StoreError};

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

/// Processes single jobs; shared by the concurrent tasks of one worker.
pub struct JobRunner {
    pub(super) queue: Arc<Queue>,
    pub(super) codes: Codes,
    pub(super) mailer: Arc<Mailer>,
    pub(super) metrics: Metrics,
    pub(super) config: WorkerConfig,
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
