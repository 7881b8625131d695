//! Redis going away and coming back.
use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test]
async fn redis_down_gives_fast_503s_and_everything_recovers_when_it_returns() {
    let mut s = Stack::start().await;
    s.redis.stop();
    for (path, body) in [
        (
            "/otp/generate",
            serde_json::json!({"email": "down@example.com"}),
        ),
        (
            "/otp/verify",
            serde_json::json!({"email": "down@example.com", "otp": "123456"}),
        ),
    ] {
        let started = Instant::now();
        let r = s.app.post(path, body).await;
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            started.elapsed()
        );
        assert_eq!(r.code(), "unavailable");
        assert_eq!(r.retry_after(), 1, "an outage asks for a short wait");
    }
    // Readiness does not follow Redis: the replica keeps taking traffic and answering 503s.
    let ready = s.app.admin_get("/readyz").await.expect("readyz answers");
    assert_eq!(ready.status, 200, "log:\n{}", s.app.logs());
    let healthz = s.app.admin_get("/healthz").await.expect("healthz answers");
    assert_eq!(healthz.status, 200);

    s.redis.restart().await;
    let app = &s.app;
    eventually("a generate accepted", Duration::from_secs(15), || async {
        let r = app.generate("back@example.com").await;
        if r.status == 202 { Ok(()) } else { Err(r.body) }
    })
    .await;
    let mails = s
        .sink
        .wait_for("back@example.com", 1, Duration::from_secs(15))
        .await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(
        s.app
            .verify("back@example.com", &code_from(&mails[0]))
            .await
            .status,
        200,
        "worker recovered too"
    );
    s.app.wait_ready().await;
}

#[tokio::test]
async fn a_consumed_code_stays_consumed_across_a_redis_kill_and_restart() {
    let mut s = Stack::start().await;
    let code = s.code_for("durable@example.com").await;
    assert_eq!(s.app.verify("durable@example.com", &code).await.status, 200);
    s.redis.stop(); // SIGKILL; the test Redis runs with appendfsync always
    s.redis.restart().await;
    // Readiness does not wait for Redis: retry while the connection comes back.
    let app = &s.app;
    let status = eventually("an answer but 503", Duration::from_secs(15), || async {
        let status = app.verify("durable@example.com", &code).await.status;
        (status != 503).then_some(status)
    })
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_evicting_redis_is_reported_at_start_up() {
    let s = Stack::start().await;
    // The running service checks once, at its first ping: let it see noeviction first.
    s.app
        .wait_for_log("maxmemory-policy is noeviction", Duration::from_secs(5))
        .await;
    let _: () = s
        .redis
        .cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .await
        .unwrap();
    let evicting = s.spawn("api").await;
    let warning = "maxmemory-policy is not noeviction";
    evicting.wait_for_log(warning, Duration::from_secs(5)).await;
    assert!(
        !s.app.logs().contains(warning),
        "no warning with noeviction"
    );
}
