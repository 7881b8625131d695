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
    /// primary of `keys[0]`'s slot. The script is measured under its own op, the wait under
    /// `RedisOp::Wait`; the whole takes at most twice `redis.timeout_ms` plus the wait's timeout.
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

    async fn script_then_wait<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
        key: &str,
        wait: ReplicaWait,
        conn: Connection,
    ) -> Result<Replicated<T>, StoreError> {
        let invocation = script.invocation(keys, args);
        let mut on = conn.clone();
        let value: T = self
            .measured(self.timeout, script.op, async move {
                Ok(invocation.invoke_async(&mut on).await?)
            })
            .await?;
        let millis = cluster::timeout_millis(wait.timeout);
        let waiting = async move {
            let acknowledged: u32 = match conn {
                Connection::Cluster(mut c) => {
                    cluster::wait_on_primary_of(&mut c, key, wait.replicas, wait.timeout).await?
                }
                mut one => {
                    let mut cmd = redis::cmd("WAIT");
                    cmd.arg(wait.replicas)
                        .arg(millis)
                        .query_async(&mut one)
                        .await?
                }
            };
            Ok(acknowledged)
        };
        let acknowledged = self
            .measured(self.timeout + wait.timeout, RedisOp::Wait, waiting)
            .await?;
        Ok(Replicated {
            value,
            acknowledged,
            required: wait.replicas,
        })
    }
}
