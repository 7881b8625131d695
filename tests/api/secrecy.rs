//! What is at rest: no plaintext code in Redis or logs, and a TTL on every code and limit key.
use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn no_plaintext_code_in_redis_or_logs_and_every_key_has_a_bounded_ttl() {
    let s = Stack::builder()
        .env("OTP_OTP__TTL_SECS", 300)
        .env("OTP_LOG__LEVEL", "debug")
        .start()
        .await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let email = format!("secret{i}@example.com");
        let code = s.code_for(&email).await;
        // A failure leaves a counter behind, so the dump sees every kind of key.
        s.app.verify(&email, &wrong(&code)).await;
        codes.push(code);
    }
    let dump = s.redis.dump().await;
    assert!(
        dump.iter().any(|(k, _, _)| k.ends_with(":code")),
        "code keys exist: {dump:?}"
    );
    for (key, ttl, values) in &dump {
        for code in &codes {
            assert!(!key.contains(code.as_str()), "code {code} in key {key}");
            assert!(
                values.iter().all(|v| !v.contains(code.as_str())),
                "code {code} in {key}"
            );
        }
        assert!(!key.contains("secret"), "address in key name {key}");
        let bounded = |max_ms: i64| *ttl > 0 && *ttl <= max_ms;
        if key.ends_with(":code") {
            assert!(bounded(300_000), "{key} TTL {ttl}");
        } else if key.ends_with(":fails") || key.ends_with(":hour") {
            assert!(bounded(3_600_000), "{key} TTL {ttl}");
        } else if key.ends_with(":cooldown") {
            assert!(bounded(60_000), "{key} TTL {ttl}");
        } else {
            assert!(
                key.starts_with("{otp}:queue:"),
                "unexpected key {key} (TTL {ttl})"
            );
        }
    }
    // Log lines are written in batches: wait until every mail's line is out.
    let app = &s.app;
    eventually("a log line per mail", Duration::from_secs(5), || async {
        app.logs().matches("code mailed").count() >= codes.len()
    })
    .await;
    let logs = s.app.logs();
    for code in &codes {
        assert!(!logs.contains(code.as_str()), "code {code} in the logs");
    }
    assert!(
        !logs.contains("secret0@example.com"),
        "full address in the logs"
    );
    assert!(
        logs.contains("s***@example.com"),
        "masked address in the logs"
    );
}

#[tokio::test]
async fn queued_jobs_carry_the_address_but_no_code() {
    let s = Stack::builder().mode("api").start().await;
    assert_eq!(s.app.generate("job@example.com").await.status, 202);
    let jobs = s.redis.values(PENDING).await;
    let job: serde_json::Value = serde_json::from_str(&jobs[0]).unwrap();
    assert_eq!(job["email"], "job@example.com");
    let fields: Vec<_> = job.as_object().unwrap().keys().cloned().collect();
    assert!(
        fields
            .iter()
            .all(|f| ["id", "email", "created_ms", "attempt", "trace"].contains(&f.as_str())),
        "{fields:?}"
    );
    // api mode does not send: it runs no worker task, and the job waits for a worker.
    let st = s.app.admin_get("/status").await.expect("status").json();
    let tasks = st["tasks"].as_array().unwrap().iter();
    let names: Vec<&str> = tasks.map(|t| t["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| n.starts_with("worker")), "{names:?}");
    assert_eq!(s.redis.llen(PENDING).await, 1);
    assert!(s.sink.mails().is_empty(), "api mode does not send");
    let _worker = s.spawn("worker").await;
    s.sink
        .wait_for("job@example.com", 1, Duration::from_secs(10))
        .await;
}
