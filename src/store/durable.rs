//! Durable writes: a script, then `WAIT` for replicas on the connection (cluster: the primary)
//! that took the write. How many replicas acknowledged is reported, not judged: the caller knows
//! whether a write that only the primary holds is good enough.
use redis::FromRedisValue;

use super::connection::Connection;
use super::{RedisOp, Script, Store, StoreError, cluster};

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

impl Store {
    /// Runs `script`, then, when `redis.wait_replicas` > 0, `WAIT`s for that many replicas on the
    /// same connection, in cluster mode on the primary of `keys[0]`'s slot. The script is
    /// measured under its own op, the wait under `RedisOp::Wait`.
    pub async fn invoke_durable<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<Replicated<T>, StoreError> {
        let Some(wait) = self.wait else {
            let value = self.invoke(script, keys, args).await?;
            return Ok(Replicated {
                value,
                acknowledged: 0,
                required: 0,
            });
        };
        let key = keys.first().map(|k| (*k).to_owned()).ok_or_else(|| {
            StoreError::Setup(
                "a durable script needs a key: WAIT goes to the node of keys[0]".into(),
            )
        })?;
        let invocation = script.invocation(keys, args);
        // The connection comes back with the value: WAIT counts the writes of the connection it
        // is sent on, so it must be the one the script ran on, not whatever is shared by then.
        let (value, conn) = self
            .run(script.op, |mut conn| async move {
                let value: T = invocation.invoke_async(&mut conn).await?;
                Ok((value, conn))
            })
            .await?;
        let millis = cluster::timeout_millis(wait.timeout);
        let acknowledged = self
            .run_within(self.timeout + wait.timeout, RedisOp::Wait, |_| async move {
                match conn {
                    Connection::Cluster(mut c) => {
                        cluster::wait_on_primary_of(&mut c, &key, wait.replicas, wait.timeout).await
                    }
                    mut one => {
                        let mut cmd = redis::cmd("WAIT");
                        cmd.arg(wait.replicas)
                            .arg(millis)
                            .query_async(&mut one)
                            .await
                    }
                }
            })
            .await?;
        Ok(Replicated {
            value,
            acknowledged,
            required: wait.replicas,
        })
    }
}
