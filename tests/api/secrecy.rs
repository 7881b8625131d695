//! What is at rest: no plaintext code in Redis or logs, and a TTL on every code and limit key.
use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn no_plaintext_code_in_redis_or_logs_and_every_key_has_a_bounded_ttl() {
    let s = Stack::start(&[("OTP_OTP__TTL_SECS", "300"), ("OTP_LOG__LEVEL", "debug")]).await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let email = format!("secret{i}@example.com");
        let code = s.code_for(&email, 1).await;
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
    let logs = s.app.logs();
    assert!(logs.contains("code mailed"), "logs are captured");
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
    let s = Stack::start_mode("api", &[]).await;
    assert_eq!(s.app.generate("job@example.com").await.0, 202);
    let dump = s.redis.dump().await;
    let (_, _, jobs) = dump
        .iter()
        .find(|(k, _, _)| k == "{otp}:queue:pending")
        .expect("pending list");
    let job: serde_json::Value = serde_json::from_str(&jobs[0]).unwrap();
    assert_eq!(job["email"], "job@example.com");
    let fields: Vec<_> = job.as_object().unwrap().keys().cloned().collect();
    assert!(
        fields
            .iter()
            .all(|f| ["id", "email", "created_ms", "attempt", "trace"].contains(&f.as_str())),
        "{fields:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.sink.mails().is_empty(), "api mode does not send");
}
