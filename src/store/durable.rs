//! Durable writes: a script, then `WAIT` for replicas on the connection (cluster: the primary)
//! that took the write. How many replicas acknowledged is reported, not judged: the caller knows
//! whether a write that only the primary holds is good enough.
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use redis::FromRedisValue;
use tokio::sync::Mutex;

use super::connection::Connection;
use super::{RedisOp, Script, Store, StoreError, cluster};
use crate::config::ReplicaWait;

/// A script's value and how many replicas have its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replicated<T> {
    pub value: T,
    /// Replicas that acknowledged within `redis.wait_timeout_ms`; 0 when none were asked for.
    pub acknowledged: u32,
    /// `redis.wait_replicas`; 0 when the wait is off.
    pub required: u32,
}

impl<T> Replicated<T> {
    /// As many replicas acknowledged as `redis.wait_replicas` asks for (always, when off).
    pub fn is_replicated(&self) -> bool {
        self.acknowledged >= self.required
    }
}

/// Connections for durable writes. `WAIT` blocks the connection it is sent on until the replicas
/// answer or its timeout passes, so it must never go on the shared connection (every request
/// would queue behind it); and it counts the writes of that connection, so the script and its
/// `WAIT` must share one. Each durable write holds one of these for both.
pub(super) struct DurablePool {
    wait: ReplicaWait,
    slots: Box<[Mutex<Option<Connection>>]>,
    next: AtomicUsize,
}

/// Durable writes in flight at once per process; more wait for a free connection.
const DURABLE_CONNECTIONS: usize = 16;

impl DurablePool {
    pub fn new(wait: ReplicaWait) -> Self {
        Self {
            wait,
            slots: (0..DURABLE_CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn slot(&self) -> &Mutex<Option<Connection>> {
        let i = self.next.fetch_add(1, Relaxed) % self.slots.len();
        &self.slots[i]
    }
}

impl Store {
    /// Runs `script`, then, when `redis.wait_replicas` > 0, `WAIT`s for that many replicas on the
    /// same connection (one of the durable pool's, never the shared one), in cluster mode on the
    /// primary of `keys[0]`'s slot, both in one write; the pair is measured as one
    /// `RedisOp::Wait` round trip. The whole takes at most twice `redis.timeout_ms` plus the
    /// wait's timeout (and once more of each when the script must be loaded first).
    pub async fn invoke_durable<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Replicated<T>, StoreError> {
        let Some(pool) = &self.durable else {
            let value = self.invoke(script, keys, args).await?;
            return Ok(Replicated {
                value,
                acknowledged: 0,
                required: 0,
            });
        };
        let wait = pool.wait;
        let key = keys.first().map(|k| (*k).to_owned()).ok_or_else(|| {
            StoreError::Setup(
                "a durable script needs a key: WAIT goes to the node of keys[0]".into(),
            )
        })?;
        let deadline = self.timeout * 2 + wait.timeout;
        let mut slot = tokio::time::timeout(deadline, pool.slot().lock())
            .await
            .map_err(|_| StoreError::Timeout(deadline))?;
        let conn = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self
                    .blocking_connection(self.timeout + wait.timeout)
                    .await?;
                slot.insert(c).clone()
            }
        };
        let result = self
            .script_then_wait(script, keys, args, &key, wait, conn)
            .await;
        if result.is_err() {
            // Reconnect next time: the connection may be broken, or (sentinel) to a demoted primary.
            *slot = None;
        }
        result
    }

    /// The script and its `WAIT` in one write on one connection: nothing (a reconnect, another
    /// request) can come between them, so `WAIT` always counts the script's writes. A primary
    /// that lacks the script answers `NOSCRIPT` (and the `WAIT` then finds nothing to wait for):
    /// the script is loaded and the pair sent once more.
    async fn script_then_wait<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
        key: &str,
        wait: ReplicaWait,
        conn: Connection,
    ) -> Result<Replicated<T>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("EVALSHA")
            .arg(script.script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        pipe.cmd("WAIT")
            .arg(wait.replicas)
            .arg(cluster::timeout_millis(wait.timeout));
        let deadline = self.timeout + wait.timeout;
        let mut replies = self.pair(deadline, &pipe, key, conn.clone()).await?;
        if is_noscript(&replies[0]) {
            let mut on = conn.clone();
            self.measured(self.timeout, script.op, async move {
                Ok(script.script.load_async(&mut on).await?)
            })
            .await?;
            replies = self.pair(deadline, &pipe, key, conn).await?;
        }
        let [value, acknowledged]: [redis::Value; 2] =
            replies.try_into().map_err(|r: Vec<_>| {
                StoreError::Protocol(format!("{} replies to a script and its WAIT", r.len()))
            })?;
        // An error reply to the script (READONLY from a demoted primary, OOM) is the call's
        // failure: the backend hears of it like any other.
        let value = T::from_redis_value(value).map_err(|e| {
            let e = StoreError::Redis(e.into());
            self.backend.failed(&e);
            e
        })?;
        Ok(Replicated {
            value,
            acknowledged: u32::from_redis_value(acknowledged).map_err(redis::RedisError::from)?,
            required: wait.replicas,
        })
    }

    /// Sends the script-and-WAIT pipeline (cluster: to the primary of `key`'s slot); measured as
    /// one `wait` round trip.
    async fn pair(
        &self,
        deadline: std::time::Duration,
        pipe: &redis::Pipeline,
        key: &str,
        conn: Connection,
    ) -> Result<Vec<redis::Value>, StoreError> {
        let pipe = pipe.clone();
        self.measured(deadline, RedisOp::Wait, async move {
            let replies = match conn {
                Connection::Cluster(mut c) => {
                    cluster::pipeline_on_primary_of(&mut c, key, pipe, 2).await?
                }
                mut one => pipe.query_async(&mut one).await?,
            };
            Ok(replies)
        })
        .await
    }
}

fn is_noscript(reply: &redis::Value) -> bool {
    matches!(reply, redis::Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript))
}
