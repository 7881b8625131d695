//! The Redis connection layer: one shared connection with a deadline per call, and script
//! invocation, over a standalone server, a Sentinel-managed primary or a Cluster. What the keys
//! and scripts mean lives with their users (`codes`, `queue`). Every call names its operation, a
//! bounded `RedisOp`: the label of `email_otp_redis_command_duration_seconds`.
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::FromRedisValue;

use crate::config::{RedisConfig, ReplicaWait};
use crate::metrics::Metrics;
pub use crate::outcome::RedisOp;

mod backend;
mod cluster;
mod connection;
mod durable;
mod nodes;
mod sentinel;

pub use connection::Connection;
pub use durable::Replicated;

use durable::DurablePool;

use backend::Backend;

#[cfg(test)]
pub mod test_server;
#[cfg(test)]
pub mod test_topologies;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_secure;

/// A Lua script with the operation name its calls are measured under.
pub struct Script {
    op: RedisOp,
    script: redis::Script,
}

impl Script {
    /// Compiled once (`Script` keeps the SHA: EVALSHA, with a load on NOSCRIPT).
    pub fn new(op: RedisOp, code: &str) -> Self {
        Self {
            op,
            script: redis::Script::new(code),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply from redis: {0}")]
    Protocol(String),
    #[error("redis connection setup: {0}")]
    Setup(String),
}

/// A cheap-to-clone handle with a hard per-call deadline, so a Redis outage turns into a fast
/// 503, never a hanging request.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    timeout: Duration,
    /// `None`: durable writes do not wait for replicas.
    durable: Option<Arc<DurablePool>>,
    /// `None` until `observed_by`: stores built in tests measure nothing.
    metrics: Option<Metrics>,
}

impl Store {
    /// A standalone server at `url`, no TLS CA, no replica wait (tests and tools). Does not
    /// connect: the first call does, so the process starts while Redis is down.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let backend = Backend::standalone(redis::Client::open(url)?, timeout)?;
        Ok(Self::with_backend(backend, timeout, None))
    }

    /// The store `redis.*` describes, in any mode. Connects nothing: the first calls do (and in
    /// sentinel or cluster mode, tasks on the current Tokio runtime), so the process starts while
    /// Redis is down.
    pub fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let backend =
            Backend::from_topology(&config.topology, config.ca_pem.as_deref(), config.timeout)?;
        Ok(Self::with_backend(backend, config.timeout, config.wait))
    }

    fn with_backend(backend: Backend, timeout: Duration, wait: Option<ReplicaWait>) -> Self {
        Self {
            backend,
            timeout,
            durable: wait.map(|w| Arc::new(DurablePool::new(w))),
            metrics: None,
        }
    }

    /// Records the latency of every round trip that got an answer (a reply or an error reply)
    /// in `metrics`. Timeouts and connection failures are not latencies: `email_otp_redis_up`
    /// and the callers' 503s show those.
    pub fn observed_by(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs one command or script invocation, `op`, on the shared connection under the deadline.
    pub async fn run<T, F, Fut>(&self, op: RedisOp, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.run_within(self.timeout, op, f).await
    }

    async fn run_within<T, F, Fut>(
        &self,
        deadline: Duration,
        op: RedisOp,
        f: F,
    ) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let call = async { Ok(f(self.backend.shared().await?).await?) };
        self.measured(deadline, op, call).await
    }

    /// Runs `call` under `deadline`, records its latency when Redis answered, and tells the
    /// backend about a failure.
    async fn measured<T>(
        &self,
        deadline: Duration,
        op: RedisOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = tokio::time::timeout(deadline, call)
            .await
            .unwrap_or(Err(StoreError::Timeout(deadline)));
        let answered = match &result {
            Ok(_) => true,
            Err(StoreError::Redis(e)) => !e.is_io_error(),
            Err(_) => false,
        };
        if let Some(metrics) = self.metrics.as_ref().filter(|_| answered) {
            metrics.observe_redis(op, started.elapsed());
        }
        if let Err(e) = &result {
            self.backend.failed(e);
        }
        result
    }

    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        // One command built in place: redis-rs's `ScriptInvocation` keeps every key and argument
        // in a `Vec` of its own and copies them into a command on each call. On NOSCRIPT the
        // script is loaded (a cluster loads it on every primary) and the command sent once more,
        // as `ScriptInvocation` does.
        // Sized up front: growing the command's buffers took three reallocations per call.
        let data = keys.iter().map(|k| k.len()).sum::<usize>()
            + args.iter().map(|a| a.len()).sum::<usize>()
            + 64;
        let mut evalsha = redis::Cmd::with_capacity(3 + keys.len() + args.len(), data);
        evalsha
            .arg("EVALSHA")
            .arg(script.script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        self.run(script.op, |mut conn| async move {
            match evalsha.query_async(&mut conn).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    script.script.load_async(&mut conn).await?;
                    evalsha.query_async(&mut conn).await
                }
                other => other,
            }
        })
        .await
    }

    /// In cluster mode every node must answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(RedisOp::Ping, |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// Redis's eviction policy, from `INFO memory` (allowed where `CONFIG GET` is not). In
    /// cluster mode every primary is asked and the first policy that is not `noeviction` (by
    /// node address) is the answer: one such node is enough to lose data.
    pub async fn eviction_policy(&self) -> Result<Option<String>, StoreError> {
        let infos = self
            .run(RedisOp::Info, |conn| async move {
                match conn {
                    Connection::Cluster(mut c) => {
                        cluster::info_of_every_primary(&mut c, "memory").await
                    }
                    mut one => {
                        let mut info = redis::cmd("INFO");
                        let info: String = info.arg("memory").query_async(&mut one).await?;
                        Ok(vec![(String::new(), info)])
                    }
                }
            })
            .await?;
        let policies: Vec<&str> = infos
            .iter()
            .filter_map(|(_, info)| {
                let line = info
                    .lines()
                    .find_map(|l| l.strip_prefix("maxmemory_policy:"));
                line.map(str::trim)
            })
            .collect();
        let worst = policies.iter().find(|p| **p != "noeviction");
        Ok(worst.or(policies.first()).map(|p| (*p).to_owned()))
    }

    /// A new connection of its own, never the shared one, for blocking calls (`BLPOP`): each
    /// reply may take up to `response_timeout`. In sentinel mode it goes to the primary of the
    /// moment: after a failover its owner should drop it on the first error and ask again.
    pub async fn blocking_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<Connection, StoreError> {
        let deadline = self.timeout.max(Duration::from_secs(2));
        let connecting = self.backend.dedicated(response_timeout);
        let result = tokio::time::timeout(deadline, connecting)
            .await
            .unwrap_or(Err(StoreError::Timeout(deadline)));
        if let Err(e) = &result {
            self.backend.failed(e);
        }
        result
    }
}
