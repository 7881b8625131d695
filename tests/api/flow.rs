//! The code's life: mailed, verified once, bound to its address, replaced by newer codes.
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn generated_code_arrives_as_two_part_mail_to_one_recipient_and_verifies_once() {
    let s = Stack::start(&[]).await;
    let (status, _, body) = s.app.generate("Alice@Example.com").await;
    assert_eq!(status, 202);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "accepted");

    let mails = s
        .sink
        .wait_for("Alice@example.com", 1, Duration::from_secs(10))
        .await;
    let mail = &mails[0];
    assert_eq!(
        mail.rcpt,
        vec!["Alice@example.com"],
        "exactly one recipient, local part as given"
    );
    assert_eq!(mail.from, "otp@sender.test");
    let parsed = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .unwrap();
    assert_eq!(parsed.subject(), Some("Your Email OTP verification code"));
    let message_id = parsed.message_id().expect("a Message-ID");
    assert!(message_id.ends_with("@sender.test"), "{message_id}");
    assert!(parsed.date().is_some(), "a Date");
    assert!(
        mail.data.contains("\r\nAuto-Submitted: auto-generated\r\n"),
        "no auto-replies: {}",
        mail.data
    );
    assert!(parsed.body_html(0).is_some(), "HTML part");
    assert!(parsed.body_text(0).is_some(), "plain-text part");
    let to: Vec<_> = parsed.to().unwrap().iter().collect();
    assert_eq!(to.len(), 1);
    let code = code_from(mail);
    assert!(parsed.body_html(0).unwrap().contains(&code));

    let (status, body) = s.app.verify("alice@example.com", &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::json!({"verified": true, "message": "OTP is correct"})
    );

    let (status, body) = s.app.verify("alice@example.com", &code).await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            r#"{"code":"otp_incorrect","message":"OTP is incorrect"}"#
        ),
        "single use"
    );
}

#[tokio::test]
async fn wrong_expired_never_issued_and_burned_codes_get_identical_answers() {
    let s = Stack::start(&[
        ("OTP_OTP__TTL_SECS", "2"),
        ("OTP_OTP__MAX_ATTEMPTS", "2"),
        NO_LIMITS[0],
        NO_LIMITS[1],
    ])
    .await;
    let wrong_resp = {
        let code = s.code_for("wrong@example.com", 1).await;
        s.app
            .post(
                "/otp/verify",
                serde_json::json!({"email": "wrong@example.com", "otp": wrong(&code)}),
            )
            .await
    };
    let never = s
        .app
        .post(
            "/otp/verify",
            serde_json::json!({"email": "never@example.com", "otp": "123456"}),
        )
        .await;
    let burned = {
        let code = s.code_for("burned@example.com", 1).await;
        s.app.verify("burned@example.com", &wrong(&code)).await;
        s.app.verify("burned@example.com", &wrong(&code)).await;
        s.app
            .post(
                "/otp/verify",
                serde_json::json!({"email": "burned@example.com", "otp": code}),
            )
            .await
    };
    let expired = {
        let code = s.code_for("expired@example.com", 1).await;
        tokio::time::sleep(Duration::from_millis(2200)).await;
        s.app
            .post(
                "/otp/verify",
                serde_json::json!({"email": "expired@example.com", "otp": code}),
            )
            .await
    };
    let strip = |(status, mut h, b): (u16, reqwest::header::HeaderMap, String)| {
        h.remove("date");
        (status, format!("{h:?}"), b)
    };
    let reference = strip(wrong_resp);
    assert_eq!(reference.0, 400);
    assert_eq!(
        reference.2,
        r#"{"code":"otp_incorrect","message":"OTP is incorrect"}"#
    );
    for (name, resp) in [
        ("never issued", never),
        ("burned", burned),
        ("expired", expired),
    ] {
        assert_eq!(strip(resp), reference, "{name}");
    }
}

#[tokio::test]
async fn code_expires_after_its_ttl_but_not_before() {
    let s = Stack::start(&[("OTP_OTP__TTL_SECS", "2"), NO_LIMITS[0], NO_LIMITS[1]]).await;
    let early = s.code_for("early@example.com", 1).await;
    let (status, _) = s.app.verify("early@example.com", &early).await;
    assert_eq!(status, 200, "accepted well inside the TTL");
    let late = s.code_for("late@example.com", 1).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.app.verify("late@example.com", &late).await.0, 400);
}

#[tokio::test]
async fn a_code_is_burned_after_max_attempts_wrong_tries() {
    let s = Stack::start(&[("OTP_OTP__MAX_ATTEMPTS", "3")]).await;
    let code = s.code_for("burn@example.com", 1).await;
    for _ in 0..3 {
        assert_eq!(s.app.verify("burn@example.com", &wrong(&code)).await.0, 400);
    }
    assert_eq!(
        s.app.verify("burn@example.com", &code).await.0,
        400,
        "burned after 3 wrong tries"
    );
}

#[tokio::test]
async fn two_wrong_tries_below_the_limit_leave_the_code_usable() {
    let s = Stack::start(&[("OTP_OTP__MAX_ATTEMPTS", "3")]).await;
    let code = s.code_for("keep@example.com", 1).await;
    for _ in 0..2 {
        assert_eq!(s.app.verify("keep@example.com", &wrong(&code)).await.0, 400);
    }
    assert_eq!(s.app.verify("keep@example.com", &code).await.0, 200);
}

#[tokio::test]
async fn fifty_concurrent_correct_verifies_succeed_exactly_once_over_20_rounds() {
    let s = Stack::start(NO_LIMITS).await;
    for round in 1..=20 {
        let code = s.code_for("race@example.com", round).await;
        let statuses = s
            .app
            .verify_concurrently("race@example.com", vec![code; 50])
            .await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 400).count(),
            49,
            "round {round}"
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_wrong_guesses_burn_the_code() {
    let s = Stack::start(&[]).await;
    let code = s.code_for("guess@example.com", 1).await;
    let guesses: Vec<String> = (0..50)
        .map(|i| format!("{i:06}"))
        .filter(|g| *g != code)
        .collect();
    let statuses = s
        .app
        .verify_concurrently("guess@example.com", guesses)
        .await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    assert_eq!(
        s.app.verify("guess@example.com", &code).await.0,
        400,
        "the right code fails after the burst"
    );
}

#[tokio::test]
async fn only_the_newest_code_verifies() {
    let s = Stack::start(NO_LIMITS).await;
    let first = s.code_for("newest@example.com", 1).await;
    let second = s.code_for("newest@example.com", 2).await;
    if first != second {
        assert_eq!(s.app.verify("newest@example.com", &first).await.0, 400);
    }
    assert_eq!(s.app.verify("newest@example.com", &second).await.0, 200);
}

#[tokio::test]
async fn a_code_for_one_address_fails_for_another() {
    let s = Stack::start(&[]).await;
    let code = s.code_for("a@example.com", 1).await;
    assert_eq!(s.app.verify("b@example.com", &code).await.0, 400);
    assert_eq!(
        s.app.verify("a+x@example.com", &code).await.0,
        400,
        "an alias is not the same identity"
    );
    assert_eq!(
        s.app.verify("A@EXAMPLE.COM", &code).await.0,
        200,
        "case variants are"
    );
}

#[tokio::test]
async fn the_failure_counter_survives_new_codes_and_locks_with_retry_after() {
    let s = Stack::start(&[
        ("OTP_LIMITS__VERIFY_FAILURES_PER_HOUR", "4"),
        NO_LIMITS[0],
        NO_LIMITS[1],
    ])
    .await;
    let code = s.code_for("lock@example.com", 1).await;
    for _ in 0..3 {
        assert_eq!(s.app.verify("lock@example.com", &wrong(&code)).await.0, 400);
    }
    let fresh = s.code_for("lock@example.com", 2).await;
    assert_eq!(
        s.app.verify("lock@example.com", &wrong(&fresh)).await.0,
        400,
        "4th failure, counted across codes"
    );
    let (status, headers, body) = s
        .app
        .post(
            "/otp/verify",
            serde_json::json!({"email": "lock@example.com", "otp": fresh}),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "too_many_attempts"
    );
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");
}
