//! Redis going away and coming back.
use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test]
async fn redis_down_gives_fast_503s_and_everything_recovers_when_it_returns() {
    let mut s = Stack::start(&[]).await;
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
        let (status, _, body) = s.app.post(path, body).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{path} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["code"],
            "unavailable"
        );
    }
    // Readiness does not follow Redis: the replica keeps taking traffic and answering 503s.
    let ready = s
        .app
        .client
        .get(format!("{}/readyz", s.app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "log:\n{}", s.app.logs());
    assert!(
        s.app
            .client
            .get(format!("{}/healthz", s.app.admin))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );

    s.redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, _) = s.app.generate("back@example.com").await;
        if status == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "API did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mails = s
        .sink
        .wait_for("back@example.com", 1, Duration::from_secs(15))
        .await;
    assert_eq!(
        s.app
            .verify("back@example.com", &code_from(&mails[0]))
            .await
            .0,
        200,
        "worker recovered too"
    );
    s.app.wait_ready().await;
}

#[tokio::test]
async fn a_consumed_code_stays_consumed_across_a_redis_kill_and_restart() {
    let mut s = Stack::start(&[]).await;
    let code = s.code_for("durable@example.com", 1).await;
    assert_eq!(s.app.verify("durable@example.com", &code).await.0, 200);
    s.redis.stop(); // SIGKILL; the test Redis runs with appendfsync always
    s.redis.restart().await;
    // Readiness does not wait for Redis: retry while the connection comes back.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status = s.app.verify("durable@example.com", &code).await.0;
        if status != 503 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_evicting_redis_is_reported_at_start_up() {
    let s = Stack::start(&[]).await;
    let mut c = s.redis.connection().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    let evicting = TestApp::spawn("api", &s.env).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !evicting
        .logs()
        .contains("maxmemory-policy is not noeviction")
    {
        assert!(
            Instant::now() < deadline,
            "no warning in:\n{}",
            evicting.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !s.app.logs().contains("maxmemory-policy is not noeviction"),
        "no warning with noeviction"
    );
}
