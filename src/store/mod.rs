//! The Redis connection layer: one shared multiplexed connection with a deadline per call, and
//! script invocation. What the keys and scripts mean lives with their users (`codes`, `queue`).
//! Every call names its operation, a bounded `RedisOp`: the label of
//! `email_otp_redis_command_duration_seconds`.
use std::time::{Duration, Instant};

use redis::FromRedisValue;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::metrics::Metrics;
pub use crate::outcome::RedisOp;

#[cfg(test)]
pub mod test_server;

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
}

/// A cheap-to-clone handle: one pipelined connection that reconnects by itself, with a hard
/// per-call deadline so a Redis outage turns into a fast 503, never a hanging request.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    timeout: Duration,
    client: redis::Client,
    /// `None` until `observed_by`: stores built in tests measure nothing.
    metrics: Option<Metrics>,
}

impl Store {
    /// Does not connect: the first call does, so the process starts while Redis is down.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        Self::with_client(redis::Client::open(url)?, timeout)
    }

    /// For `rediss://` with a private CA: `ca_pem` replaces the public roots.
    pub fn with_ca(url: &str, ca_pem: &[u8], timeout: Duration) -> Result<Self, StoreError> {
        let certs = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_pem.to_vec()),
        };
        Self::with_client(redis::Client::build_with_tls(url, certs)?, timeout)
    }

    fn with_client(client: redis::Client, timeout: Duration) -> Result<Self, StoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self {
            conn,
            timeout,
            client,
            metrics: None,
        })
    }

    /// Records the latency of every round trip that got an answer (a reply or an error reply)
    /// in `metrics`. Timeouts and connection failures are not latencies: `email_otp_redis_up`
    /// and the callers' 503s show those.
    pub fn observed_by(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs one command or script invocation, `op`, under the deadline.
    pub async fn run<T, F, Fut>(&self, op: RedisOp, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, f(self.conn.clone())).await;
        let answered = match &result {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => !e.is_io_error(),
            Err(_) => false,
        };
        if let Some(metrics) = self.metrics.as_ref().filter(|_| answered) {
            metrics.observe_redis(op, started.elapsed());
        }
        match result {
            Ok(result) => Ok(result?),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }

    pub async fn invoke<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut invocation = script.script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        self.run(script.op, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(RedisOp::Ping, |mut conn| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(drop)
    }

    /// Redis's eviction policy, from `INFO memory` (allowed where `CONFIG GET` is not).
    pub async fn eviction_policy(&self) -> Result<Option<String>, StoreError> {
        let info: String = self
            .run(RedisOp::Info, |mut conn| async move {
                redis::cmd("INFO")
                    .arg("memory")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("maxmemory_policy:"))
            .map(|p| p.trim().to_owned()))
    }
}
