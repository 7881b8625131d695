//! A private redis-server per test, and what tests read from it: every key, the queue's key
//! layout (pending list, `{otp}:queue:processing` lease ZSET, delayed ZSET, dead list).
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::eventually;

pub const PENDING: &str = "{otp}:queue:pending";
pub const PROCESSING: &str = "{otp}:queue:processing";
pub const DELAYED: &str = "{otp}:queue:delayed";
pub const DEAD: &str = "{otp}:queue:dead";

/// A redis-server of our own: free port, temp dir, AOF on (so restarts keep data), killed on drop.
pub struct TestRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra redis-server arguments (e.g. TLS), kept across restarts.
    args: Vec<String>,
}

impl TestRedis {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A redis-server with extra arguments, e.g. `["--tls-port", …]`.
    pub async fn start_with(args: &[&str]) -> Self {
        let mut r = Self::attach(crate::helpers::free_port());
        r.args = args.iter().map(|a| a.to_string()).collect();
        r.restart().await;
        r
    }

    /// A handle on a redis-server someone else runs on `port` (the service's dev mode): nothing
    /// is started, nothing is stopped on drop.
    pub fn attach(port: u16) -> Self {
        Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args: Vec::new(),
        }
    }

    /// The redis-server's pid (for SIGSTOP/SIGCONT).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server running").id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .args(["--maxmemory-policy", "noeviction"])
            .args(&self.args)
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        let what = format!("redis-server on port {}", self.port);
        eventually(what, Duration::from_secs(5), || self.conn()).await;
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn conn(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let connecting = client.get_multiplexed_async_connection();
        let mut c = tokio::time::timeout(Duration::from_millis(500), connecting)
            .await
            .ok()?
            .ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .ok()?;
        Some(c)
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.conn().await.expect("redis connection")
    }

    /// One command, e.g. `cmd(&["LPUSH", PENDING, job])`.
    pub async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut self.connection().await).await
    }

    pub async fn llen(&self, key: &str) -> i64 {
        self.cmd(&["LLEN", key]).await.unwrap()
    }

    pub async fn zcard(&self, key: &str) -> i64 {
        self.cmd(&["ZCARD", key]).await.unwrap()
    }

    pub async fn key_type(&self, key: &str) -> String {
        self.cmd(&["TYPE", key]).await.unwrap()
    }

    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        self.cmd(&["KEYS", pattern]).await.unwrap()
    }

    /// Makes `key` expire now, as if its TTL had run out: PEXPIRE to 1 ms, then waits until
    /// Redis no longer has it.
    pub async fn expire_now(&self, key: &str) {
        let set: i64 = self.cmd(&["PEXPIRE", key, "1"]).await.unwrap();
        assert_eq!(set, 1, "{key} does not exist");
        eventually(format!("{key} expired"), Duration::from_secs(2), || async {
            self.cmd::<i64>(&["EXISTS", key]).await.unwrap() == 0
        })
        .await;
    }

    /// Every key with its TTL in ms and every value it holds, as text.
    pub async fn dump(&self) -> Vec<(String, i64, Vec<String>)> {
        let mut out = Vec::new();
        for k in self.keys("*").await {
            let ttl: i64 = self.cmd(&["PTTL", &k]).await.unwrap();
            let values: Vec<Vec<u8>> = match self.key_type(&k).await.as_str() {
                "string" => vec![self.cmd(&["GET", &k]).await.unwrap()],
                "hash" => self.cmd(&["HGETALL", &k]).await.unwrap(),
                "list" => self.cmd(&["LRANGE", &k, "0", "-1"]).await.unwrap(),
                "set" => self.cmd(&["SMEMBERS", &k]).await.unwrap(),
                "zset" => self.cmd(&["ZRANGE", &k, "0", "-1"]).await.unwrap(),
                other => panic!("unexpected type {other} for {k}"),
            };
            let values = values
                .into_iter()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .collect();
            out.push((k, ttl, values));
        }
        out
    }

    /// What a list (or ZSET) key holds, as text.
    pub async fn values(&self, key: &str) -> Vec<String> {
        let dump = self.dump().await;
        let found = dump.into_iter().find(|(k, _, _)| k == key);
        found.unwrap_or_else(|| panic!("no key {key}")).2
    }

    /// Jobs not finished: (pending, leased, delayed), read atomically (one script) so a job moving
    /// between them is never missed. Leased counts the lease ZSET and, if the old per-worker
    /// processing lists still exist, what they hold.
    pub async fn unfinished_jobs(&self) -> (i64, i64, i64) {
        const COUNT: &str = r#"
            local leased = 0
            if redis.call('TYPE', ARGV[2]).ok == 'zset' then
              leased = redis.call('ZCARD', ARGV[2])
            end
            for _, k in ipairs(redis.call('KEYS', ARGV[2] .. ':*')) do
              leased = leased + redis.call('LLEN', k)
            end
            return {redis.call('LLEN', ARGV[1]), leased, redis.call('ZCARD', ARGV[3])}
        "#;
        self.cmd(&["EVAL", COUNT, "0", PENDING, PROCESSING, DELAYED])
            .await
            .unwrap()
    }

    /// Waits until no job is pending, leased or waiting for a retry: every job queued so far is
    /// finished (mailed and its code activated, dead-lettered or dropped).
    pub async fn wait_drained(&self, timeout: Duration) {
        let what = "pending, processing and delayed empty";
        eventually(what, timeout, || async {
            let left = self.unfinished_jobs().await;
            if left == (0, 0, 0) {
                Ok(())
            } else {
                Err(format!("(pending, leased, delayed) = {left:?}"))
            }
        })
        .await;
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
