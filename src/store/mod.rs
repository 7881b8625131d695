//! Redis access: the shared multiplexed connection and the Lua scripts, each one round trip.
mod codes;
mod keys;

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};

pub use codes::{Codes, GenerateOutcome, Policy, VerifyOutcome};
pub use keys::{CodeKeys, Keys, LimitKeys};

/// Compiled once per process.
pub static SCRIPTS: LazyLock<Scripts> = LazyLock::new(Scripts::default);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// The compiled scripts; `Script` keeps the SHA, so calls are EVALSHA with a load on NOSCRIPT.
pub struct Scripts {
    pub claim: Script,
    pub generate: Script,
    pub verify: Script,
    pub store_code: Script,
    pub retry: Script,
    pub dead_letter: Script,
    pub promote: Script,
    pub heartbeat: Script,
    pub reap: Script,
    pub release: Script,
    pub depth: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            claim: Script::new(include_str!("lua/claim.lua")),
            generate: Script::new(include_str!("lua/generate.lua")),
            verify: Script::new(include_str!("lua/verify.lua")),
            store_code: Script::new(include_str!("lua/store_code.lua")),
            retry: Script::new(include_str!("lua/retry.lua")),
            dead_letter: Script::new(include_str!("lua/dead_letter.lua")),
            promote: Script::new(include_str!("lua/promote.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            reap: Script::new(include_str!("lua/reap.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            depth: Script::new(include_str!("lua/depth.lua")),
        }
    }
}

/// A cheap-to-clone handle: one pipelined connection that reconnects by itself, with a hard
/// per-call deadline so a Redis outage turns into a fast 503, never a hanging request.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    timeout: Duration,
    client: redis::Client,
}

impl Store {
    /// Does not connect: the first call does, so the process starts while Redis is down.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
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
        })
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// Runs one command or script invocation under the deadline.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.timeout, f(self.conn.clone())).await {
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
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(*k);
        }
        for a in args {
            invocation.arg(*a);
        }
        self.run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await
        .map(drop)
    }

    /// Redis's eviction policy, from `INFO memory` (allowed where `CONFIG GET` is not).
    pub async fn eviction_policy(&self) -> Result<Option<String>, StoreError> {
        let info: String = self
            .run(|mut conn| async move {
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
