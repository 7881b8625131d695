//! Fault injection on the test Redis (stall, out of memory), and what fault tests read back:
//! leases, mails to many addresses.
use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

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
}

/// Waits until every address got at least one mail, all within one `timeout`. One snapshot of
/// the sink per poll: thousands of addresses must not mean thousands of copies of every mail.
pub async fn all_mailed(sink: &SmtpSink, addrs: &[String], timeout: Duration) {
    let what = format!("a mail to each of {} addresses", addrs.len());
    eventually(what, timeout, || async {
        let mails = sink.mails();
        let mailed: std::collections::HashSet<&str> = mails
            .iter()
            .flat_map(|m| m.rcpt.iter().map(String::as_str))
            .collect();
        let missing: Vec<&String> = addrs
            .iter()
            .filter(|a| !mailed.contains(a.as_str()))
            .collect();
        match missing.as_slice() {
            [] => Ok(()),
            some => Err(format!(
                "none for {} addresses, e.g. {:?}",
                some.len(),
                &some[..some.len().min(5)]
            )),
        }
    })
    .await;
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
