//! One job's life: mail the job's code, make the code valid once the relay accepted the mail,
//! and tell the queue the outcome.
use std::time::{Duration, Instant};

use tracing::{Instrument, Span, info, info_span, warn};

use super::WorkerConfig;
use super::in_flight::Held;
use crate::codes::{Activation, Codes};
use crate::domain::{EmailAddress, OtpCode, mask_addresses};
use crate::health::Health;
use crate::mail::{Mailer, SendError};
use crate::metrics::Metrics;
use crate::queue::{Job, Lease, Queue, RetryPlan, Settled};
use crate::store::StoreError;

pub use crate::outcome::Job as Outcome;
use crate::outcome::Outcome as _;

/// The outcome of a queue update that ended a lease as `done` would have.
fn ended_as(done: Outcome, settled: Option<Settled>) -> Outcome {
    match settled {
        Some(Settled::Done) => done,
        Some(Settled::LeaseLost) => Outcome::LeaseLost,
        None => Outcome::Abandoned,
    }
}

/// Processes single jobs; shared by the concurrent tasks of one worker.
pub struct JobRunner {
    pub(super) queue: Queue,
    pub(super) codes: Codes,
    pub(super) mailer: Mailer,
    pub(super) metrics: Metrics,
    pub(super) health: Health,
    pub(super) config: WorkerConfig,
}

impl JobRunner {
    /// Runs the job under `held`'s lease; the lease is forgotten when this returns.
    pub async fn process(&self, held: Held) -> Outcome {
        let lease = held.lease();
        let job = Job::parse(lease.job());
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
                Ok(job) => self.deliver(lease, job).await,
                Err(e) => {
                    let error = format!("malformed job: {e}");
                    warn!(error = %error, "dead-lettered");
                    let annotated = serde_json::json!({
                        "raw": mask_addresses(lease.job()),
                        "last_error": error,
                        "dead_ms": self.queue.clock().now_ms(),
                    })
                    .to_string();
                    self.dead_letter(lease, &annotated).await
                }
            };
            if matches!(outcome, Outcome::LeaseLost | Outcome::Abandoned) {
                warn!(
                    outcome = outcome.label(),
                    "job left to the reaper; it may be mailed again"
                );
            }
            self.metrics.jobs.inc(outcome);
            outcome
        }
        .instrument(span)
        .await
    }

    async fn deliver(&self, lease: &Lease, job: Job) -> Outcome {
        let now = self.queue.clock().now_ms();
        let expires = job.expires_ms(self.codes.policy().code_ttl);
        if now >= expires {
            info!(
                age_ms = job.age_ms(now),
                "job older than the code lifetime; dropped"
            );
            let settled = self.settle(|| self.queue.ack(lease)).await;
            return ended_as(Outcome::DroppedExpired, settled);
        }
        let address = match EmailAddress::parse(&job.email) {
            Ok(a) => a,
            Err(e) => {
                return self
                    .dead_job(lease, job, format!("invalid address: {e}"))
                    .await;
            }
        };
        let code = self.codes.code_for_job(&job.id);
        let left = Duration::from_millis(expires - now);
        let message = match self.mailer.compose(&address, &code, left) {
            Ok(m) => m,
            Err(e) => return self.dead_job(lease, job, e.to_string()).await,
        };
        let started = Instant::now();
        let sent = self
            .mailer
            .send(message)
            .instrument(self.child_span(|| info_span!("smtp send", otel.kind = "client")))
            .await;
        self.metrics.observe_send(&sent, started.elapsed());
        let class = sent
            .as_ref()
            .map_or_else(|e| e.class().label(), |()| "sent");
        self.health.record_smtp(sent.is_ok(), class);
        match sent {
            Ok(()) => self.activate_and_ack(lease, &job, &address, &code).await,
            Err(e @ SendError::Permanent(..)) => {
                let e = e.into_message();
                warn!(to = %address.masked(), error = %e, "permanent failure; dead-lettered");
                self.dead_job(lease, job, e).await
            }
            Err(e) => self.retry_or_dead(lease, job, e.into_message()).await,
        }
    }

    /// The relay took the mail: only now does its code become valid, so a mail that never went
    /// out leaves the earlier code working. Activation is idempotent per job, so a redelivery
    /// (after a lost lease or a crash) keeps the first activation's try budget.
    async fn activate_and_ack(
        &self,
        lease: &Lease,
        job: &Job,
        address: &EmailAddress,
        code: &OtpCode,
    ) -> Outcome {
        let activated = self
            .settle(|| {
                let expires = job.expires_ms(self.codes.policy().code_ttl);
                let left = expires.saturating_sub(self.queue.clock().now_ms()).max(1);
                self.codes.activate(
                    address,
                    &job.id,
                    job.created_ms,
                    code,
                    Duration::from_millis(left),
                )
            })
            .instrument(self.child_span(|| info_span!("activate code")))
            .await;
        match activated {
            None => return Outcome::Abandoned,
            Some(Activation::Superseded) => {
                info!(to = %address.masked(), "mailed, but a newer code is already valid")
            }
            Some(Activation::Activated | Activation::AlreadyActive) => {
                info!(
                    to = address.masked().as_str(),
                    attempt = job.attempt + 1,
                    "code mailed"
                )
            }
        }
        let settled = self.settle(|| self.queue.ack(lease)).await;
        ended_as(Outcome::Sent, settled)
    }

    async fn retry_or_dead(&self, lease: &Lease, mut job: Job, error: String) -> Outcome {
        job.attempt += 1;
        let now = self.queue.clock().now_ms();
        let expires = job.expires_ms(self.codes.policy().code_ttl);
        match self.config.retry.plan(job.attempt, now, expires) {
            RetryPlan::At { due_ms } => {
                warn!(attempt = job.attempt, retry_in_ms = due_ms - now, error = %error, "send failed; will retry");
                job.last_error = Some(error);
                let settled = self.settle(|| self.queue.retry(lease, &job, due_ms)).await;
                ended_as(Outcome::Retried, settled)
            }
            RetryPlan::AttemptsExhausted => {
                let e = format!("gave up after {} attempts: {error}", job.attempt);
                self.dead_job(lease, job, e).await
            }
            RetryPlan::CodeWouldExpire => {
                let e = format!("the code expires before the next attempt: {error}");
                self.dead_job(lease, job, e).await
            }
        }
    }

    /// Dead letters keep what an operator needs to see why, not whom: the address is masked.
    async fn dead_job(&self, lease: &Lease, mut job: Job, error: String) -> Outcome {
        warn!(error = %error, "dead-lettered");
        job.email = mask_addresses(&job.email);
        job.last_error = Some(error);
        job.dead_ms = Some(self.queue.clock().now_ms());
        self.dead_letter(lease, &job.to_json()).await
    }

    async fn dead_letter(&self, lease: &Lease, annotated: &str) -> Outcome {
        let ended = self
            .settle(|| self.queue.dead_letter(lease, annotated))
            .await;
        if let Some((_, trimmed)) = ended {
            self.metrics.dead_letters_trimmed.inc_by(trimmed);
        }
        ended_as(Outcome::DeadLettered, ended.map(|(settled, _)| settled))
    }

    fn child_span(&self, make: impl FnOnce() -> Span) -> Span {
        if self.config.traced {
            make()
        } else {
            Span::none()
        }
    }

    /// Queue and code updates must not be skipped: while Redis is away, keep trying for up to
    /// one lease. Past that another worker may have reaped the job, so give up (`None`) and let
    /// the lease expire: the job is reaped and delivered again (at least once).
    async fn settle<T, F, Fut>(&self, op: F) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let give_up = Instant::now() + self.config.lease;
        let mut wait = Duration::from_millis(100);
        loop {
            match op().await {
                Ok(v) => return Some(v),
                Err(e) if Instant::now() + wait < give_up => {
                    warn!(error = %e, "redis update failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    warn!(error = %e, "redis update abandoned for this lease");
                    return None;
                }
            }
        }
    }
}
