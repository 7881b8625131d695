//! Per-address generate limits in Redis, and the optional per-IP limit.
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn second_generate_within_the_cooldown_is_429_with_retry_after() {
    let s = Stack::start(&[]).await;
    assert_eq!(s.app.generate("cool@example.com").await.0, 202);
    let (status, headers, body) = s.app.generate("cool@example.com").await;
    assert_eq!(status, 429);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry), "Retry-After {retry}");
    s.sink
        .wait_for("cool@example.com", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.sink.mails_to("cool@example.com").len(),
        1,
        "the limited request sent nothing"
    );
}

#[tokio::test]
async fn hourly_cap_applies_after_the_cooldown() {
    let s = Stack::start(&[
        ("OTP_LIMITS__EMAIL_COOLDOWN_SECS", "0"),
        ("OTP_LIMITS__EMAIL_PER_HOUR", "3"),
    ])
    .await;
    for _ in 0..3 {
        assert_eq!(s.app.generate("hourly@example.com").await.0, 202);
    }
    let (status, headers, _) = s.app.generate("hourly@example.com").await;
    assert_eq!(status, 429);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert_eq!(
        s.app.generate("other@example.com").await.0,
        202,
        "other addresses are not affected"
    );
}

#[tokio::test]
async fn case_tag_and_idn_variants_of_one_address_share_a_bucket() {
    let s = Stack::start(&[]).await;
    assert_eq!(s.app.generate("user@bücher.example").await.0, 202);
    for variant in [
        "User@XN--BCHER-KVA.example",
        "user+promo@xn--bcher-kva.example",
        "USER@Bücher.Example",
    ] {
        let (status, _, body) = s.app.generate(variant).await;
        assert_eq!(status, 429, "{variant}: {body}");
    }
    let m = s
        .sink
        .wait_for("user@xn--bcher-kva.example", 1, Duration::from_secs(10))
        .await;
    assert_eq!(m[0].rcpt, vec!["user@xn--bcher-kva.example"]);
}

#[tokio::test]
async fn twenty_requests_for_one_address_from_twenty_ips_deliver_one_mail() {
    let s = Stack::start(&[
        ("OTP_HTTP__TRUSTED_PROXIES", "[127.0.0.1]"),
        ("OTP_LIMITS__IP_PER_MINUTE", "5"),
    ])
    .await;
    let mut accepted = 0;
    for i in 0..20 {
        accepted += usize::from(
            s.app
                .generate_from(&format!("198.51.100.{i}"), "bomb@example.com")
                .await
                == 202,
        );
    }
    assert_eq!(accepted, 1);
    s.sink
        .wait_for("bomb@example.com", 1, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.sink.mails_to("bomb@example.com").len(), 1);
}

#[tokio::test]
async fn per_ip_limit_stops_one_client_spraying_many_addresses() {
    let s = Stack::start(&[
        ("OTP_HTTP__TRUSTED_PROXIES", "[127.0.0.1]"),
        ("OTP_LIMITS__IP_PER_MINUTE", "5"),
    ])
    .await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(
            s.app
                .generate_from("203.0.113.7", &format!("spray{i}@example.com"))
                .await,
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        5,
        "{statuses:?}"
    );
    assert!(statuses[5..].iter().all(|s| *s == 429));
    let other = s
        .app
        .generate_from("203.0.113.8", "spray-other@example.com")
        .await;
    assert_eq!(other, 202, "another client IP has its own quota");
}
