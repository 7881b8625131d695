//! The reliable queue. A job is in exactly one place: the pending list, the processing zset
//! (under a lease with a deadline), the delayed zset (a retry) or the dead list. A worker renews
//! the leases of the jobs it works on; any lease not renewed in time (its worker died, stalled,
//! was stopped or gave up after a Redis error) is reaped back to pending, so no job is stranded.
//! The queue is split into partitions (`partitions.rs`), each a complete queue on its own slot.
mod backoff;
mod depth;
mod job;
mod keys;
mod lease;
mod partitions;
mod scripts;
mod waker;

use std::time::Duration;

pub use backoff::{RetryPlan, RetryPolicy, retry_delay};
pub use depth::{Depth, depth};
pub use job::Job;
pub use keys::{QueueKeys, WAKE_TOKENS};
pub use lease::{Lease, MalformedLease};
pub use partitions::{Partitions, slot};
pub use waker::{WAIT, Waker};

pub use crate::config::DeadLetters;

use scripts::SCRIPTS;

use crate::clock::Clock;
use crate::store::{RedisOp, Script, Store, StoreError};

/// Most jobs moved by one promote or reap call; the next tick moves the rest.
const BATCH: &str = "500";

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
    partitions: Partitions,
    clock: Clock,
    lease: Duration,
    dead: DeadLetters,
}

impl Queue {
    /// `lease`: how long a claimed job stays with its worker without a renewal.
    pub fn new(store: Store, partitions: Partitions, clock: Clock, lease: Duration) -> Self {
        Self {
            store,
            partitions,
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

    pub fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    /// The waiter for idle periods of one partition, with its own blocking connection.
    pub fn waker(&self, partition: usize) -> Waker {
        Waker::new(self.store.clone(), self.keys(partition).wake.clone())
    }

    fn keys(&self, partition: usize) -> &QueueKeys {
        self.partitions.keys(partition)
    }

    /// Leases up to `n` pending jobs of one partition, oldest first, in one round trip.
    pub async fn claim(&self, partition: usize, n: usize) -> Result<Vec<Lease>, StoreError> {
        let n = n.to_string();
        let deadline = self.clock.after(self.lease).to_string();
        let k = self.keys(partition);
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
            .map(|m| {
                Lease::in_partition(m, partition).map_err(|e| StoreError::Protocol(e.to_string()))
            })
            .collect()
    }

    /// Ends a lease: the job is done.
    pub async fn ack(&self, lease: &Lease) -> Result<Settled, StoreError> {
        let processing = self.keys(lease.partition()).processing.clone();
        let member = lease.member().to_owned();
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
        let k = self.keys(lease.partition());
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
        let k = self.keys(lease.partition());
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

    /// Renews the leases of jobs still being worked on (one call per partition that has any);
    /// returns how many were still held.
    pub async fn extend(&self, leases: &[Lease]) -> Result<i64, StoreError> {
        let deadline = self.clock.after(self.lease).to_string();
        let mut held = 0;
        for (partition, k) in self.partitions.all() {
            let mut args: Vec<&[u8]> = vec![deadline.as_bytes()];
            args.extend(
                leases
                    .iter()
                    .filter(|l| l.partition() == partition)
                    .map(|l| l.member().as_bytes()),
            );
            if args.len() > 1 {
                let n: i64 = self
                    .store
                    .invoke(&SCRIPTS.extend, &[&k.processing], &args)
                    .await?;
                held += n;
            }
        }
        Ok(held)
    }

    /// Moves due retries back to pending in every partition; returns how many, and the first
    /// error if a partition failed (the others still ran).
    pub async fn promote_due(&self) -> (i64, Option<StoreError>) {
        self.each_partition(&SCRIPTS.promote, |k| [&k.delayed, &k.pending, &k.wake])
            .await
    }

    /// Returns the jobs of expired leases to pending in every partition; returns how many, and
    /// the first error if a partition failed (the others still ran).
    pub async fn reap(&self) -> (i64, Option<StoreError>) {
        self.each_partition(&SCRIPTS.reap, |k| [&k.processing, &k.pending, &k.wake])
            .await
    }

    /// Runs a (now, batch, wake tokens) script on each partition; sums what they moved. A
    /// partition that fails does not stop the others.
    async fn each_partition<'k>(
        &'k self,
        script: &Script,
        keys: impl Fn(&'k QueueKeys) -> [&'k String; 3],
    ) -> (i64, Option<StoreError>) {
        let now = self.clock.now_ms().to_string();
        let args = [now.as_bytes(), BATCH.as_bytes(), WAKE_TOKENS.as_bytes()];
        let (mut moved, mut first_error) = (0, None);
        for (_, k) in self.partitions.all() {
            let [a, b, c] = keys(k);
            match self.store.invoke::<i64>(script, &[a, b, c], &args).await {
                Ok(n) => moved += n,
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        (moved, first_error)
    }
}

#[cfg(test)]
mod tests;
