//! Redis-wide send budgets and the queue-depth cap: generate answers 503 with `Retry-After`
//! once they are spent, across replicas, and nothing refused is ever mailed.
use std::time::Duration;

use crate::helpers::*;

const SEND_BUDGET: &str = "email_otp_generate_total{outcome=\"send_budget\"}";
const DOMAIN_BUDGET: &str = "email_otp_generate_total{outcome=\"domain_budget\"}";
const QUEUE_FULL: &str = "email_otp_generate_total{outcome=\"queue_full\"}";

/// Asserts a refusal is the budget's 503 and returns its `Retry-After`.
fn assert_busy(r: &Reply) -> u64 {
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "unavailable"),
        "{}",
        r.body
    );
    r.retry_after()
}

#[tokio::test]
async fn the_global_budget_holds_across_two_api_replicas() {
    // 12 a minute: one per 5 s, and a burst of a tenth of a minute's worth plus one = 2.
    let s = Stack::builder()
        .mode("api")
        .env("OTP_LIMITS__MAILS_PER_MINUTE", 12)
        .start()
        .await;
    let other = s.spawn("api").await;
    let mut accepted = 0;
    for i in 0..10 {
        let app = if i % 2 == 0 { &s.app } else { &other };
        let r = app.generate(&format!("budget{i}@d{i}.example")).await;
        if r.status == 202 {
            accepted += 1;
        } else {
            let retry = assert_busy(&r);
            assert!((1..=5).contains(&retry), "Retry-After {retry}");
        }
    }
    assert_eq!(accepted, 2, "the budget is shared by both replicas");
    let refused = s.app.metric(SEND_BUDGET).await + other.metric(SEND_BUDGET).await;
    assert_eq!(refused, 8.0);
    assert_eq!(
        s.redis.llen("{otp}:queue:pending").await,
        2,
        "refusals queue nothing"
    );
}

#[tokio::test]
async fn a_domain_budget_stops_one_domain_and_the_refused_get_no_mail() {
    let s = Stack::builder()
        .env("OTP_LIMITS__DOMAIN_MAILS_PER_MINUTE", 12)
        .start()
        .await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(s.app.generate(&format!("u{i}@busy.example")).await.status);
    }
    assert_eq!(statuses, [202, 202, 503, 503, 503]);
    let r = s.app.generate("late@busy.example").await;
    let retry = assert_busy(&r);
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    for i in 0..2 {
        let r = s.app.generate(&format!("u{i}@quiet.example")).await;
        assert_eq!(r.status, 202, "another domain has its own budget");
    }
    assert_eq!(s.app.metric(DOMAIN_BUDGET).await, 4.0);
    s.redis.wait_drained(Duration::from_secs(10)).await;
    for i in 0..5 {
        let expected = usize::from(i < 2);
        assert_eq!(
            s.sink.mails_to(&format!("u{i}@busy.example")).len(),
            expected
        );
    }
    assert!(s.sink.mails_to("late@busy.example").is_empty());
    assert_eq!(s.sink.mails().len(), 4);
}

#[tokio::test]
async fn past_the_queue_cap_generate_is_503_until_a_worker_makes_room() {
    let s = Stack::builder()
        .mode("api")
        .env("OTP_LIMITS__QUEUE_MAX_DEPTH", 3)
        .start()
        .await;
    for i in 0..3 {
        let r = s.app.generate(&format!("q{i}@example.com")).await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let r = s.app.generate("q3@example.com").await;
    assert_eq!(assert_busy(&r), 5);
    // A flood of refusals is counted, but logged at most once a second.
    for i in 0..19 {
        let r = s.app.generate(&format!("flood{i}@example.com")).await;
        assert_eq!(r.status, 503);
    }
    assert_eq!(s.app.metric(QUEUE_FULL).await, 20.0);
    s.app
        .wait_for_log("the queue is full", Duration::from_secs(5))
        .await;
    let lines = s.app.logs().matches("the queue is full").count();
    assert!(
        (1..=3).contains(&lines),
        "{lines} log lines for 20 refusals"
    );
    // The refused address was not put on cooldown: once a worker drained the queue, it gets in.
    let _worker = s.spawn("worker").await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(s.app.generate("q3@example.com").await.status, 202);
    s.sink
        .wait_for("q3@example.com", 1, Duration::from_secs(10))
        .await;
}
