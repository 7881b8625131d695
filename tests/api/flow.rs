//! The code's life: mailed, verified once, bound to its address, replaced by newer codes.
use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn generated_code_arrives_as_two_part_mail_to_one_recipient_and_verifies_once() {
    let s = Stack::start().await;
    let r = s.app.generate("Alice@Example.com").await;
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "accepted");

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
    s.redis.wait_drained(Duration::from_secs(10)).await; // the code counts once the job is done

    let r = s.app.verify("alice@example.com", &code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        serde_json::json!({"verified": true, "message": "OTP is correct"})
    );

    let r = s.app.verify("alice@example.com", &code).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            400,
            r#"{"code":"otp_incorrect","message":"OTP is incorrect"}"#
        ),
        "single use"
    );
}

#[tokio::test]
async fn wrong_expired_never_issued_and_burned_codes_get_identical_answers() {
    let s = Stack::builder()
        .env("OTP_OTP__MAX_ATTEMPTS", 2)
        .no_limits()
        .start()
        .await;
    let wrong_answer = {
        let code = s.code_for("wrong@example.com").await;
        s.app.verify("wrong@example.com", &wrong(&code)).await
    };
    let never = s.app.verify("never@example.com", "123456").await;
    let burned = {
        let code = s.code_for("burned@example.com").await;
        s.app.verify("burned@example.com", &wrong(&code)).await;
        s.app.verify("burned@example.com", &wrong(&code)).await;
        s.app.verify("burned@example.com", &code).await
    };
    let expired = {
        let before = s.redis.keys("*:code").await;
        let code = s.code_for("expired@example.com").await;
        let key = s.redis.keys("*:code").await;
        let key = key
            .iter()
            .find(|k| !before.contains(k))
            .expect("a new code key");
        s.redis.expire_now(key).await; // as if its TTL ran out
        s.app.verify("expired@example.com", &code).await
    };
    let strip = |mut r: Reply| {
        r.headers.remove("date");
        (r.status, format!("{:?}", r.headers), r.body)
    };
    assert_eq!(
        (wrong_answer.status, wrong_answer.body.as_str()),
        (
            400,
            r#"{"code":"otp_incorrect","message":"OTP is incorrect"}"#
        )
    );
    let reference = strip(wrong_answer);
    for (name, answer) in [
        ("never issued", never),
        ("burned", burned),
        ("expired", expired),
    ] {
        assert_eq!(strip(answer), reference, "{name}");
    }
}

/// The one test that lets real time pass: the TTL itself, end to end.
#[tokio::test]
async fn code_expires_after_its_ttl_but_not_before() {
    let s = Stack::builder()
        .env("OTP_OTP__TTL_SECS", 2)
        .no_limits()
        .start()
        .await;
    let early = s.code_for("early@example.com").await;
    let r = s.app.verify("early@example.com", &early).await;
    assert_eq!(r.status, 200, "accepted well inside the TTL");
    let late = s.code_for("late@example.com").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(s.app.verify("late@example.com", &late).await.status, 400);
}

#[tokio::test]
async fn a_code_is_burned_after_max_attempts_wrong_tries() {
    let s = Stack::builder()
        .env("OTP_OTP__MAX_ATTEMPTS", 3)
        .start()
        .await;
    let code = s.code_for("burn@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            s.app.verify("burn@example.com", &wrong(&code)).await.status,
            400
        );
    }
    assert_eq!(
        s.app.verify("burn@example.com", &code).await.status,
        400,
        "burned after 3 wrong tries"
    );
}

#[tokio::test]
async fn two_wrong_tries_below_the_limit_leave_the_code_usable() {
    let s = Stack::builder()
        .env("OTP_OTP__MAX_ATTEMPTS", 3)
        .start()
        .await;
    let code = s.code_for("keep@example.com").await;
    for _ in 0..2 {
        assert_eq!(
            s.app.verify("keep@example.com", &wrong(&code)).await.status,
            400
        );
    }
    assert_eq!(s.app.verify("keep@example.com", &code).await.status, 200);
}

#[tokio::test]
async fn fifty_concurrent_correct_verifies_succeed_exactly_once_over_20_rounds() {
    let s = Stack::builder().no_limits().start().await;
    for round in 1..=20 {
        let code = s.code_for("race@example.com").await;
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
    let s = Stack::start().await;
    let code = s.code_for("guess@example.com").await;
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
        s.app.verify("guess@example.com", &code).await.status,
        400,
        "the right code fails after the burst"
    );
}

#[tokio::test]
async fn only_the_newest_code_verifies() {
    let s = Stack::builder().no_limits().start().await;
    let first = s.code_for("newest@example.com").await;
    let second = s.code_for("newest@example.com").await;
    if first != second {
        assert_eq!(s.app.verify("newest@example.com", &first).await.status, 400);
    }
    assert_eq!(
        s.app.verify("newest@example.com", &second).await.status,
        200
    );
}

#[tokio::test]
async fn a_code_for_one_address_fails_for_another() {
    let s = Stack::start().await;
    let code = s.code_for("a@example.com").await;
    assert_eq!(s.app.verify("b@example.com", &code).await.status, 400);
    assert_eq!(
        s.app.verify("a+x@example.com", &code).await.status,
        400,
        "an alias is not the same identity"
    );
    assert_eq!(
        s.app.verify("A@EXAMPLE.COM", &code).await.status,
        200,
        "case variants are"
    );
}

#[tokio::test]
async fn the_failure_counter_survives_new_codes_and_locks_with_retry_after() {
    let s = Stack::builder()
        .env("OTP_LIMITS__VERIFY_FAILURES_PER_HOUR", 4)
        .no_limits()
        .start()
        .await;
    let code = s.code_for("lock@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            s.app.verify("lock@example.com", &wrong(&code)).await.status,
            400
        );
    }
    let fresh = s.code_for("lock@example.com").await;
    assert_eq!(
        s.app
            .verify("lock@example.com", &wrong(&fresh))
            .await
            .status,
        400,
        "4th failure, counted across codes"
    );
    let r = s.app.verify("lock@example.com", &fresh).await;
    assert_eq!((r.status, r.code().as_str()), (429, "too_many_attempts"));
    let retry = r.retry_after();
    assert!((3500..=3600).contains(&retry), "{retry}");
}
