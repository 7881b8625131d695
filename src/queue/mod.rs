//! The worker's side of the reliable queue: BLMOVE from pending into this worker's processing
//! list, ack with LREM, retry through the delayed set, dead-letter, heartbeat and reaper.
mod job;

use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

pub use job::{Job, now_ms};

use crate::store::{Keys, SCRIPTS, Store, StoreError};

/// How long one BLMOVE blocks; the dedicated connection waits this plus a margin.
pub const FETCH_BLOCK: Duration = Duration::from_secs(1);
const PROMOTE_BATCH: &str = "500";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub pending: i64,
    pub processing: i64,
    pub delayed: i64,
    pub dead: i64,
    pub oldest_pending_age_ms: Option<u64>,
}

pub struct Queue {
    store: Store,
    keys: Keys,
    worker_id: String,
    processing: String,
    /// Blocking calls get their own connection: on the shared one they would stall every request.
    blocking: Option<MultiplexedConnection>,
}

impl Queue {
    pub fn new(store: Store, keys: Keys, worker_id: String) -> Self {
        let processing = keys.processing(&worker_id);
        Self {
            store,
            keys,
            worker_id,
            processing,
            blocking: None,
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Waits up to `FETCH_BLOCK` for a job and moves it onto this worker's processing list.
    pub async fn fetch(&mut self) -> Result<Option<String>, StoreError> {
        let conn = match &mut self.blocking {
            Some(c) => c,
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(FETCH_BLOCK + Duration::from_secs(2)));
                let c = self
                    .store
                    .client()
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                self.blocking.insert(c)
            }
        };
        let result = redis::cmd("BLMOVE")
            .arg(&self.keys.pending)
            .arg(&self.processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(FETCH_BLOCK.as_secs_f64())
            .query_async::<Option<String>>(conn)
            .await;
        if result.is_err() {
            self.blocking = None;
        }
        Ok(result?)
    }

    /// Takes up to `n` pending jobs without blocking (one script call).
    pub async fn claim(&self, n: usize) -> Result<Vec<String>, StoreError> {
        let n = n.to_string();
        let keys = [self.keys.pending.as_str(), self.processing.as_str()];
        self.store
            .invoke(&SCRIPTS.claim, &keys, &[n.as_bytes()])
            .await
    }

    pub async fn ack(&self, raw: &str) -> Result<(), StoreError> {
        let processing = self.processing.clone();
        let raw = raw.to_owned();
        self.store
            .run(|mut c| async move {
                redis::cmd("LREM")
                    .arg(processing)
                    .arg(-1)
                    .arg(raw)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(drop)
    }

    pub async fn retry(&self, raw: &str, next: &Job, due_ms: u64) -> Result<(), StoreError> {
        let due = due_ms.to_string();
        let keys = [self.processing.as_str(), self.keys.delayed.as_str()];
        let next = next.to_json();
        self.store
            .invoke::<i64>(
                &SCRIPTS.retry,
                &keys,
                &[raw.as_bytes(), next.as_bytes(), due.as_bytes()],
            )
            .await
            .map(drop)
    }

    pub async fn dead_letter(&self, raw: &str, annotated: &str) -> Result<(), StoreError> {
        let keys = [self.processing.as_str(), self.keys.dead.as_str()];
        self.store
            .invoke::<i64>(
                &SCRIPTS.dead_letter,
                &keys,
                &[raw.as_bytes(), annotated.as_bytes()],
            )
            .await
            .map(drop)
    }

    /// Moves due retries back to pending; returns how many.
    pub async fn promote_due(&self) -> Result<i64, StoreError> {
        let now = now_ms().to_string();
        let keys = [self.keys.delayed.as_str(), self.keys.pending.as_str()];
        self.store
            .invoke(
                &SCRIPTS.promote,
                &keys,
                &[now.as_bytes(), PROMOTE_BATCH.as_bytes()],
            )
            .await
    }

    pub async fn heartbeat(&self, lifetime: Duration) -> Result<(), StoreError> {
        let hb = self.keys.heartbeat(&self.worker_id);
        let ms = lifetime.as_millis().to_string();
        let keys = [hb.as_str(), self.keys.workers.as_str()];
        self.store
            .invoke::<i64>(
                &SCRIPTS.heartbeat,
                &keys,
                &[self.worker_id.as_bytes(), ms.as_bytes()],
            )
            .await
            .map(drop)
    }

    /// Returns jobs of workers whose heartbeat expired to pending; returns how many.
    pub async fn reap(&self) -> Result<i64, StoreError> {
        let keys = [self.keys.workers.as_str(), self.keys.pending.as_str()];
        let args = [
            self.keys.processing_prefix.as_bytes(),
            self.keys.heartbeat_prefix.as_bytes(),
        ];
        self.store.invoke(&SCRIPTS.reap, &keys, &args).await
    }

    /// Clean exit: anything left on the processing list goes back to pending.
    pub async fn release(&self) -> Result<i64, StoreError> {
        let hb = self.keys.heartbeat(&self.worker_id);
        let keys = [
            self.processing.as_str(),
            self.keys.pending.as_str(),
            self.keys.workers.as_str(),
            hb.as_str(),
        ];
        self.store
            .invoke(&SCRIPTS.release, &keys, &[self.worker_id.as_bytes()])
            .await
    }
}

/// Reads queue depth by state in one script call; used by `/metrics` in every mode.
pub async fn depth(store: &Store, keys: &Keys) -> Result<Depth, StoreError> {
    let k = [
        keys.pending.as_str(),
        keys.delayed.as_str(),
        keys.dead.as_str(),
        keys.workers.as_str(),
    ];
    let (pending, processing, delayed, dead, oldest): (i64, i64, i64, i64, Option<String>) = store
        .invoke(&SCRIPTS.depth, &k, &[keys.processing_prefix.as_bytes()])
        .await?;
    let oldest_pending_age_ms = oldest
        .and_then(|raw| Job::parse(&raw).ok())
        .map(|j| j.age_ms(now_ms()));
    Ok(Depth {
        pending,
        processing,
        delayed,
        dead,
        oldest_pending_age_ms,
    })
}
