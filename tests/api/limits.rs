//! Per-address generate limits in Redis, and the optional per-IP limit.
use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn second_generate_within_the_cooldown_is_429_with_retry_after() {
    let s = Stack::start().await;
    assert_eq!(s.app.generate("cool@example.com").await.status, 202);
    let r = s.app.generate("cool@example.com").await;
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let retry = r.retry_after();
    assert!((55..=60).contains(&retry), "Retry-After {retry}");
    s.sink
        .wait_for("cool@example.com", 1, Duration::from_secs(10))
        .await;
    // Every job queued so far is finished, so a mail for the limited request would be here.
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(
        s.sink.mails_to("cool@example.com").len(),
        1,
        "the limited request sent nothing"
    );
}

#[tokio::test]
async fn the_cooldown_ends_when_its_key_expires() {
    let s = Stack::start().await;
    let a = "wait-over@example.com";
    assert_eq!(s.app.generate(a).await.status, 202);
    assert_eq!(s.app.generate(a).await.status, 429);
    let cooldown = s.redis.keys("{otp}:limit:*:cooldown").await;
    assert_eq!(cooldown.len(), 1, "{cooldown:?}");
    s.redis.expire_now(&cooldown[0]).await;
    assert_eq!(s.app.generate(a).await.status, 202, "the minute is over");
    assert_eq!(s.app.generate(a).await.status, 429, "a new cooldown");
}

#[tokio::test]
async fn hourly_cap_applies_after_the_cooldown() {
    let s = Stack::builder()
        .env("OTP_LIMITS__EMAIL_COOLDOWN_SECS", 0)
        .env("OTP_LIMITS__EMAIL_PER_HOUR", 3)
        .start()
        .await;
    for _ in 0..3 {
        assert_eq!(s.app.generate("hourly@example.com").await.status, 202);
    }
    let r = s.app.generate("hourly@example.com").await;
    assert_eq!(r.status, 429);
    let retry = r.retry_after();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert_eq!(
        s.app.generate("other@example.com").await.status,
        202,
        "other addresses are not affected"
    );
}

#[tokio::test]
async fn case_tag_and_idn_variants_of_one_address_share_a_bucket() {
    let s = Stack::start().await;
    assert_eq!(s.app.generate("user@bücher.example").await.status, 202);
    for variant in [
        "User@XN--BCHER-KVA.example",
        "user+promo@xn--bcher-kva.example",
        "USER@Bücher.Example",
    ] {
        let r = s.app.generate(variant).await;
        assert_eq!(r.status, 429, "{variant}: {}", r.body);
    }
    let m = s
        .sink
        .wait_for("user@xn--bcher-kva.example", 1, Duration::from_secs(10))
        .await;
    assert_eq!(m[0].rcpt, vec!["user@xn--bcher-kva.example"]);
}

#[tokio::test]
async fn twenty_requests_for_one_address_from_twenty_ips_deliver_one_mail() {
    let s = Stack::builder()
        .env("OTP_HTTP__TRUSTED_PROXIES", "[127.0.0.1]")
        .env("OTP_LIMITS__IP_PER_MINUTE", 5)
        .start()
        .await;
    let mut accepted = 0;
    for i in 0..20 {
        let ip = format!("198.51.100.{i}");
        accepted += usize::from(s.app.generate_from(&ip, "bomb@example.com").await.status == 202);
    }
    assert_eq!(accepted, 1);
    s.sink
        .wait_for("bomb@example.com", 1, Duration::from_secs(10))
        .await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(s.sink.mails_to("bomb@example.com").len(), 1);
}

#[tokio::test]
async fn per_ip_limit_stops_one_client_spraying_many_addresses() {
    let s = Stack::builder()
        .env("OTP_HTTP__TRUSTED_PROXIES", "[127.0.0.1]")
        .env("OTP_LIMITS__IP_PER_MINUTE", 5)
        .start()
        .await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let email = format!("spray{i}@example.com");
        statuses.push(s.app.generate_from("203.0.113.7", &email).await.status);
    }
    assert_eq!(statuses, [[202; 5], [429; 5]].concat(), "{statuses:?}");
    let other = s
        .app
        .generate_from("203.0.113.8", "spray-other@example.com")
        .await;
    assert_eq!(other.status, 202, "another client IP has its own quota");
}
