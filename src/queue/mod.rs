//! The reliable queue. A job is in exactly one place: the pending list, the processing zset
//! (under a lease with a deadline), the delayed zset (a retry) or the dead list. A worker renews
//! the leases of the jobs it works on; any lease not renewed in time (its worker died, stalled,
//! was stopped or gave up after a Redis error) is reaped back to pending, so no job is stranded.
mod backoff;
mod job;
mod keys;
mod lease;
mod scripts;
mod waker;

use std::time::Duration;

pub use backoff::{RetryPlan, RetryPolicy, retry_delay};
pub use job::Job;
pub use keys::{QueueKeys, WAKE_TOKENS};
pub use lease::{Lease, MalformedLease};
pub use waker::{WAIT, Waker};

pub use crate::config::DeadLetters;

use scripts::SCRIPTS;

use crate::clock::Clock;
use crate::store::{RedisOp, Store, StoreError};

/// Most jobs moved by one promote or reap call; the next tick moves the rest.
const BATCH: &str = "500";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub pending: i64,
    pub processing: i64,
    pub delayed: i64,
    pub dead: i64,
    pub oldest_pending_age_ms: Option<u64>,
}

/// How a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Done,
    /// The lease had expired and the job was reaped (another worker may have it now).
    LeaseLost,
}

impl Settled {
    fn from_moved(moved: i64) -> Self {
        if moved == 1 {
            Self::Done
        } else {
            Self::LeaseLost
        }
    }
}

#[derive(Clone)]
pub struct Queue {
    store: Store,
    keys: QueueKeys,
    clock: Clock,
    lease: Duration,
    dead: DeadLetters,
}

impl Queue {
    /// `lease`: how long a claimed job stays with its worker without a renewal.
    pub fn new(store: Store, keys: QueueKeys, clock: Clock, lease: Duration) -> Self {
        Self {
            store,
            keys,
            clock,
            lease,
            dead: DeadLetters::default(),
        }
    }

    pub fn with_dead_letters(mut self, dead: DeadLetters) -> Self {
        self.dead = dead;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The waiter for idle periods, with its own blocking connection.
    pub fn waker(&self) -> Waker {
        Waker::new(self.store.clone(), self.keys.wake.clone())
    }

    /// Leases up to `n` pending jobs, oldest first, in one round trip.
    pub async fn claim(&self, n: usize) -> Result<Vec<Lease>, StoreError> {
        let n = n.to_string();
        let deadline = self.clock.after(self.lease).to_string();
        let k = &self.keys;
        let members: Vec<String> = self
            .store
            .invoke(
                &SCRIPTS.claim,
                &[&k.pending, &k.processing, &k.lease_seq],
                &[n.as_bytes(), deadline.as_bytes()],
            )
            .await?;
        members
            .into_iter()
            .map(|m| Lease::from_member(m).map_err(|e| StoreError::Protocol(e.to_string())))
            .collect()
    }

    /// Ends a lease: the job is done.
    pub async fn ack(&self, lease: &Lease) -> Result<Settled, StoreError> {
        let (processing, member) = (self.keys.processing.clone(), lease.member().to_owned());
        let removed: i64 = self
            .store
            .run(RedisOp::Ack, |mut c| async move {
                redis::cmd("ZREM")
                    .arg(processing)
                    .arg(member)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(Settled::from_moved(removed))
    }

    /// Ends a lease by scheduling `next` (the job with its attempt raised) for `due_ms`.
    pub async fn retry(
        &self,
        lease: &Lease,
        next: &Job,
        due_ms: u64,
    ) -> Result<Settled, StoreError> {
        let (next, due) = (next.to_json(), due_ms.to_string());
        let k = &self.keys;
        let moved: i64 = self
            .store
            .invoke(
                &SCRIPTS.retry,
                &[&k.processing, &k.delayed],
                &[lease.member().as_bytes(), next.as_bytes(), due.as_bytes()],
            )
            .await?;
        Ok(Settled::from_moved(moved))
    }

    /// Ends a lease by moving the job, annotated with its last error and `dead_ms` (addresses
    /// masked), to the dead-letter list; also returns how many old entries were dropped.
    pub async fn dead_letter(
        &self,
        lease: &Lease,
        annotated: &str,
    ) -> Result<(Settled, u64), StoreError> {
        let k = &self.keys;
        let max = self.dead.max.to_string();
        let cutoff = self
            .clock
            .now_ms()
            .saturating_sub(crate::clock::millis(self.dead.max_age))
            .to_string();
        let (moved, trimmed): (i64, u64) = self
            .store
            .invoke(
                &SCRIPTS.dead_letter,
                &[&k.processing, &k.dead],
                &[
                    lease.member().as_bytes(),
                    annotated.as_bytes(),
                    max.as_bytes(),
                    cutoff.as_bytes(),
                ],
            )
            .await?;
        Ok((Settled::from_moved(moved), trimmed))
    }

    /// Renews the leases of jobs still being worked on; returns how many were still held.
    pub async fn extend(&self, leases: &[Lease]) -> Result<i64, StoreError> {
        let deadline = self.clock.after(self.lease).to_string();
        let mut args: Vec<&[u8]> = vec![deadline.as_bytes()];
        args.extend(leases.iter().map(|l| l.member().as_bytes()));
        self.store
            .invoke(&SCRIPTS.extend, &[&self.keys.processing], &args)
            .await
    }

    /// Moves due retries back to pending; returns how many.
    pub async fn promote_due(&self) -> Result<i64, StoreError> {
        let now = self.clock.now_ms().to_string();
        let k = &self.keys;
        self.store
            .invoke(
                &SCRIPTS.promote,
                &[&k.delayed, &k.pending, &k.wake],
                &[now.as_bytes(), BATCH.as_bytes(), WAKE_TOKENS.as_bytes()],
            )
            .await
    }

    /// Returns the jobs of expired leases to pending; returns how many.
    pub async fn reap(&self) -> Result<i64, StoreError> {
        let now = self.clock.now_ms().to_string();
        let k = &self.keys;
        self.store
            .invoke(
                &SCRIPTS.reap,
                &[&k.processing, &k.pending, &k.wake],
                &[now.as_bytes(), BATCH.as_bytes(), WAKE_TOKENS.as_bytes()],
            )
            .await
    }
}

/// Reads queue depth by state in one script call; used by `/metrics` in every mode.
pub async fn depth(store: &Store, keys: &QueueKeys) -> Result<Depth, StoreError> {
    let k = [
        keys.pending.as_str(),
        keys.processing.as_str(),
        keys.delayed.as_str(),
        keys.dead.as_str(),
    ];
    let (pending, processing, delayed, dead, oldest): (i64, i64, i64, i64, Option<String>) =
        store.invoke(&SCRIPTS.depth, &k, &[]).await?;
    let now = Clock::System.now_ms();
    let oldest_pending_age_ms = oldest
        .and_then(|raw| Job::parse(&raw).ok())
        .map(|j| j.age_ms(now));
    Ok(Depth {
        pending,
        processing,
        delayed,
        dead,
        oldest_pending_age_ms,
    })
}

#[cfg(test)]
mod tests;
