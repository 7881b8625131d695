//! The worker under crashes, shutdown and SMTP faults: nothing is lost, failures are classified.
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::fault_kit::now_ms;
use crate::helpers::*;

#[tokio::test]
async fn a_worker_killed_mid_jobs_loses_none_and_only_one_mailed_code_per_address_verifies() {
    let s = Stack::builder()
        .mode("api")
        .env("OTP_WORKER__CONCURRENCY", 4)
        .start()
        .await;
    s.sink.state.delay_ms.store(1500, Ordering::SeqCst);
    let doomed = s.spawn("worker").await;
    let addrs: Vec<String> = (0..8).map(|i| format!("crash{i}@example.com")).collect();
    for a in &addrs {
        assert_eq!(s.app.generate(a).await.status, 202);
    }
    let sink = &s.sink;
    eventually("sends in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(
        s.redis.zcard(PROCESSING).await >= 1,
        "jobs are leased to the doomed worker"
    );
    doomed.signal("KILL");
    sink.state.delay_ms.store(0, Ordering::SeqCst);

    let rescuer = s.spawn("worker").await;
    for a in &addrs {
        sink.wait_for(a, 1, Duration::from_secs(20)).await;
    }
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert!(rescuer.metric("email_otp_jobs_reaped_total").await >= 1.0);
    // The dead worker's sends whose data the sink had read are stored once their held-back
    // reply goes out: wait for those, not for a while.
    eventually("held-back replies sent", Duration::from_secs(5), || async {
        sink.held_back() == 0
    })
    .await;
    for a in &addrs {
        let codes: Vec<String> = sink.mails_to(a).iter().map(code_from).collect();
        let mut verified = 0;
        for c in &codes {
            verified += usize::from(s.app.verify(a, c).await.status == 200);
        }
        assert_eq!(verified, 1, "{a}: codes {codes:?}");
    }
}

#[tokio::test]
async fn sigterm_drains_jobs_in_flight_and_exits_zero() {
    let mut s = Stack::builder().no_limits().start().await;
    s.sink.state.delay_ms.store(1000, Ordering::SeqCst);
    let addrs: Vec<String> = (0..10).map(|i| format!("drain{i}@example.com")).collect();
    for a in &addrs {
        assert_eq!(s.app.generate(a).await.status, 202);
    }
    let sink = s.sink.clone();
    eventually("sends in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 4
    })
    .await;
    s.app.signal("TERM");
    assert_eq!(
        s.app.wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "log:\n{}",
        s.app.logs()
    );
    for a in &addrs {
        assert_eq!(s.sink.mails_to(a).len(), 1, "{a}");
    }
    assert_eq!(s.redis.unfinished_jobs().await, (0, 0, 0));
    let api = s.spawn("api").await;
    let code = code_from(&s.sink.mails_to(&addrs[0])[0]);
    assert_eq!(
        api.verify(&addrs[0], &code).await.status,
        200,
        "the drained mail's code is live"
    );
}

#[tokio::test]
async fn smtp_4xx_is_retried_with_backoff_then_delivered() {
    let s = Stack::start().await;
    s.sink.state.fail_transient.store(2, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let code = s.code_for("retry@example.com").await;
    // Backoff 200 ms then 400 ms (retry_base_ms = 200).
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.app.verify("retry@example.com", &code).await.status, 200);
    assert_eq!(s.app.jobs("retried").await, 2.0);
    assert_eq!(s.app.jobs("sent").await, 1.0);
    assert_eq!(
        s.app
            .metric("email_otp_smtp_send_errors_total{class=\"transient\"}")
            .await,
        2.0
    );
}

#[tokio::test]
async fn smtp_5xx_goes_to_dead_letter_without_retry() {
    let s = Stack::start().await;
    s.sink.state.fail_permanent.store(true, Ordering::SeqCst);
    assert_eq!(s.app.generate("dead@example.com").await.status, 202);
    let redis = &s.redis;
    eventually("dead letter", Duration::from_secs(10), || async {
        redis.llen(DEAD).await == 1
    })
    .await;
    let dead = s.redis.values(DEAD).await;
    let job: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    // The relay quoted the address in its refusal; neither the entry nor the logs keep it.
    assert_eq!(job["email"], "d***@example.com");
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("d***@example.com"),
        "{job}"
    );
    assert!(job["dead_ms"].as_u64().is_some(), "{job}");
    assert!(!dead[0].contains("dead@example.com"), "{}", dead[0]);
    // Log lines are written in batches: wait for the refusal's.
    s.app
        .wait_for_log("d***@example.com", Duration::from_secs(5))
        .await;
    let logs = s.app.logs();
    assert!(
        !logs.contains("dead@example.com"),
        "full address in the logs:\n{logs}"
    );
    assert_eq!(s.app.jobs("retried").await, 0.0);
    assert_eq!(s.app.jobs("dead_lettered").await, 1.0);
    assert_eq!(
        s.app.metric("email_otp_queue_depth{state=\"dead\"}").await,
        1.0
    );
}

#[tokio::test]
async fn persistent_4xx_is_dead_lettered_after_max_attempts() {
    let s = Stack::builder()
        .env("OTP_WORKER__MAX_ATTEMPTS", 3)
        .env("OTP_WORKER__RETRY_BASE_MS", 50)
        .start()
        .await;
    s.sink.state.fail_transient.store(100, Ordering::SeqCst);
    assert_eq!(s.app.generate("flaky@example.com").await.status, 202);
    let redis = &s.redis;
    eventually("dead letter", Duration::from_secs(10), || async {
        redis.llen(DEAD).await == 1
    })
    .await;
    assert_eq!(s.sink.state.data_commands.load(Ordering::SeqCst), 3);
    assert_eq!(s.app.jobs("retried").await, 2.0);
    assert_eq!(s.app.jobs("dead_lettered").await, 1.0);
}

#[tokio::test]
async fn jobs_older_than_the_code_ttl_are_dropped_and_counted_and_malformed_ones_dead_lettered() {
    let s = Stack::builder().mode("worker").start().await;
    let created_ms = now_ms() - 700_000;
    let old =
        serde_json::json!({"id": "old1", "email": "old@example.com", "created_ms": created_ms});
    let pushed: i64 = s
        .redis
        .cmd(&["LPUSH", PENDING, &old.to_string(), "not json"])
        .await
        .unwrap();
    assert_eq!(pushed, 2);
    let app = &s.app;
    eventually("both jobs handled", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        metric(&m, "email_otp_jobs_total{outcome=\"dropped_expired\"}") == Some(1.0)
            && metric(&m, "email_otp_jobs_total{outcome=\"dead_lettered\"}") == Some(1.0)
    })
    .await;
    assert!(s.sink.mails().is_empty());
    assert_eq!(s.redis.llen(DEAD).await, 1);
}

#[tokio::test]
async fn smtp_auth_is_used_when_configured() {
    let s = Stack::builder()
        .env("OTP_SMTP__USERNAME", "mailer")
        .env("OTP_SMTP__PASSWORD", "pa55word")
        // The sink speaks plain SMTP on loopback.
        .env("OTP_SMTP__ALLOW_INSECURE_AUTH", "true")
        .start()
        .await;
    let code = s.code_for("auth@example.com").await;
    assert_eq!(s.app.verify("auth@example.com", &code).await.status, 200);
    assert_eq!(
        s.sink.state.auth.lock().unwrap().clone(),
        vec!["mailer:pa55word".to_string()]
    );
}

#[tokio::test]
async fn connections_are_reused_and_a_stale_one_is_replaced_without_a_retry() {
    let s = Stack::builder()
        .no_limits()
        .env("OTP_WORKER__CONCURRENCY", 1)
        .start()
        .await;
    for i in 0..3 {
        s.code_for(&format!("reuse{i}@example.com")).await;
    }
    assert_eq!(
        s.sink.state.connections.load(Ordering::SeqCst),
        1,
        "one pooled connection for sequential mails"
    );
    s.sink.state.close_after_mail.store(true, Ordering::SeqCst);
    for i in 0..3 {
        s.code_for(&format!("stale{i}@example.com")).await;
    }
    assert_eq!(
        s.app.jobs("retried").await,
        0.0,
        "stale connections cost no job retry"
    );
    assert_eq!(s.app.jobs("sent").await, 6.0);
}
