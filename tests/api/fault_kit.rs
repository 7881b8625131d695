//! Fault injection on the test Redis (stall, out of memory) and the queue's key layout:
//! pending list, `{otp}:queue:processing` lease ZSET, delayed ZSET, dead list.
use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

pub const PENDING: &str = "{otp}:queue:pending";
pub const PROCESSING: &str = "{otp}:queue:processing";
pub const DELAYED: &str = "{otp}:queue:delayed";
pub const DEAD: &str = "{otp}:queue:dead";

const FILLER: &str = "fault:filler:";

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl TestRedis {
    fn kill(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} redis-server");
    }

    /// SIGSTOP: connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.kill("STOP");
    }

    pub fn resume(&self) {
        self.kill("CONT");
    }

    pub async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut self.connection().await).await
    }

    pub async fn zcard(&self, key: &str) -> i64 {
        self.cmd(&["ZCARD", key]).await.unwrap()
    }

    pub async fn key_type(&self, key: &str) -> String {
        self.cmd(&["TYPE", key]).await.unwrap()
    }

    async fn used_memory(&self) -> u64 {
        let info: String = self.cmd(&["INFO", "memory"]).await.unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory in INFO")
    }

    /// Writes 1 MiB of filler, then sets `maxmemory` 512 KiB below what is used (the policy is
    /// noeviction): every write that needs memory fails with OOM until `free_memory`. The margin
    /// keeps Redis over the limit however client buffers come and go.
    pub async fn fill_to_oom(&self) {
        let value = "x".repeat(256 * 1024);
        for i in 0..4 {
            let _: () = self
                .cmd(&["SET", &format!("{FILLER}{i}"), &value])
                .await
                .unwrap();
        }
        let limit = (self.used_memory().await - 512 * 1024).to_string();
        let _: () = self
            .cmd(&["CONFIG", "SET", "maxmemory", &limit])
            .await
            .unwrap();
        let probe = self
            .cmd::<()>(&["SET", &format!("{FILLER}probe"), "1"])
            .await;
        assert!(
            probe.as_ref().is_err_and(|e| e.to_string().contains("OOM")),
            "redis is not refusing writes at maxmemory {limit}: {probe:?}"
        );
    }

    /// Undoes `fill_to_oom`.
    pub async fn free_memory(&self) {
        let _: () = self
            .cmd(&["CONFIG", "SET", "maxmemory", "0"])
            .await
            .unwrap();
        let keys: Vec<String> = self.cmd(&["KEYS", &format!("{FILLER}*")]).await.unwrap();
        for k in keys {
            let _: i64 = self.cmd(&["DEL", &k]).await.unwrap();
        }
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

    /// Waits until no job is pending, leased or waiting for a retry.
    pub async fn wait_drained(&self, timeout: Duration) {
        eventually("pending, processing and delayed empty", timeout, || async {
            self.unfinished_jobs().await == (0, 0, 0)
        })
        .await;
    }
}

/// Waits until every address got at least one mail, all within one `timeout`.
pub async fn all_mailed(sink: &SmtpSink, addrs: &[String], timeout: Duration) {
    let missing = || addrs.iter().filter(|a| sink.mails_to(a).is_empty());
    let what = format!("a mail to each of {} addresses", addrs.len());
    let deadline = tokio::time::Instant::now() + timeout;
    while missing().next().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; none for {:?}",
            missing().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks for a code and returns it once its job is finished. A code counts only once the worker
/// has seen the relay accept its mail, a moment after the sink stored it, so a verify right after
/// `wait_for` could race the worker.
pub async fn mailed_code(s: &Stack, email: &str, n: usize) -> String {
    let code = s.code_for(email, n).await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    code
}

/// Leases as `(lease id, job json, deadline ms)`; checks the documented member shape.
pub async fn leases(redis: &TestRedis) -> Vec<(String, serde_json::Value, u64)> {
    let t = redis.key_type(PROCESSING).await;
    assert!(
        t == "zset" || t == "none",
        "{PROCESSING} must be a ZSET of leases, is a {t}"
    );
    let raw: Vec<(String, f64)> = redis
        .cmd(&["ZRANGE", PROCESSING, "0", "-1", "WITHSCORES"])
        .await
        .unwrap();
    raw.into_iter()
        .map(|(member, score)| {
            let (id, json) = member
                .split_once(':')
                .unwrap_or_else(|| panic!("lease member {member:?} is not <lease-id>:<job>"));
            let job = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("lease member {member:?}: job is not JSON: {e}"));
            (id.to_owned(), job, score as u64)
        })
        .collect()
}
