//! Code and guess guarantees under faults: Redis out of memory, mails retried, dropped, refused
//! or unanswered by the relay, and limits that report the true wait.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::helpers::*;

fn codes_of(attempts: &[crate::smtp_sink::Attempt]) -> Vec<String> {
    attempts.iter().map(|a| code_from(&a.mail)).collect()
}

/// A guess is compared only if it can be counted. While Redis refuses writes, every
/// verify is 503 `unavailable`, the right code included; nothing was used up, so afterwards the
/// right code verifies.
#[tokio::test]
async fn at_maxmemory_every_verify_is_503_the_right_code_too_and_it_verifies_afterwards() {
    let s = Stack::start().await;
    let a = "oom-verify@example.com";
    let code = s.code_for(a).await;
    s.redis.fill_to_oom().await;
    for _ in 0..6 {
        let r = s.app.verify(a, &wrong(&code)).await;
        assert_eq!((r.status, r.code().as_str()), (503, "unavailable"));
    }
    let r = s.app.verify(a, &code).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "unavailable"),
        "the right code must not be compared when the guess cannot be counted"
    );
    s.redis.free_memory().await;
    assert_eq!(
        s.app.verify(a, &code).await.status,
        200,
        "uncounted guesses burn nothing"
    );
    assert_eq!(s.app.verify(a, &code).await.status, 400, "single use");
}

/// One generate, one code. Every delivery attempt of the job carries the same code,
/// even when the relay got the data twice (the answer to the first came too late), and the
/// wrong guesses are counted against that one code however many mails carried it.
#[tokio::test]
async fn every_delivery_attempt_of_one_job_carries_one_code_with_one_try_budget() {
    let s = Stack::builder()
        .env("OTP_SMTP__TIMEOUT_SECS", 1)
        .env("OTP_WORKER__RETRY_BASE_MS", 500)
        .start()
        .await;
    let a = "one-code@example.com";
    s.sink.state.fail_transient.store(1, Ordering::SeqCst);
    s.sink.state.delay_ms.store(2500, Ordering::SeqCst);
    assert_eq!(s.app.generate(a).await.status, 202);
    let sink = &s.sink;
    eventually(
        "the first attempt's data",
        Duration::from_secs(10),
        || async { sink.state.data_commands.load(Ordering::SeqCst) >= 1 },
    )
    .await;
    // Attempt 1 gets its 451 only after the worker gave up waiting (1 s); attempt 2 is answered
    // late too, but accepted: the user holds a mail the worker never saw accepted. Attempt 3 is
    // answered at once.
    eventually("a second attempt", Duration::from_secs(15), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 2
    })
    .await;
    sink.state.delay_ms.store(0, Ordering::SeqCst);
    s.redis.wait_drained(Duration::from_secs(20)).await;
    sink.wait_for(a, 2, Duration::from_secs(10)).await; // the late-answered second attempt lands
    let attempts = sink.attempts_to(a);
    let codes = codes_of(&attempts);
    assert!(attempts.len() >= 3, "{attempts:?}");
    assert!(
        codes.iter().all(|c| *c == codes[0]),
        "one job, one code across attempts: {codes:?}"
    );
    let code = codes[0].clone();
    for _ in 0..5 {
        assert_eq!(s.app.verify(a, &wrong(&code)).await.status, 400);
    }
    assert_eq!(
        s.app.verify(a, &code).await.status,
        400,
        "5 wrong guesses burn the code, whatever the number of mails ({})",
        sink.mails_to(a).len()
    );
}

/// A code counts only once the relay accepted its mail. A dead-lettered mail's code
/// never verifies, and the code mailed before it keeps working.
#[tokio::test]
async fn a_code_whose_mail_was_refused_never_verifies_and_the_earlier_code_still_does() {
    let s = Stack::builder().no_limits().start().await;
    let a = "refused@example.com";
    let first = s.code_for(a).await;
    s.sink.state.reject_after_data.store(1, Ordering::SeqCst);
    assert_eq!(s.app.generate(a).await.status, 202);
    let redis = &s.redis;
    eventually(
        "the refused job dead-lettered",
        Duration::from_secs(10),
        || async { redis.llen(DEAD).await == 1 },
    )
    .await;
    let refused = s.sink.attempts_to(a);
    assert_eq!(refused.last().unwrap().answer, Answer::Rejected);
    let dead_code = code_from(&refused.last().unwrap().mail);
    assert_ne!(dead_code, first);
    assert_eq!(
        s.app.verify(a, &dead_code).await.status,
        400,
        "the refused mail's code must not verify"
    );
    assert_eq!(
        s.app.verify(a, &first).await.status,
        200,
        "the last delivered code still verifies"
    );
    assert_eq!(s.app.verify(a, &first).await.status, 400, "single use");
}

/// While a new mail is on its way the code already mailed keeps working; once the
/// new one is accepted only the newest mailed code verifies, once.
#[tokio::test]
async fn the_mailed_code_works_until_its_successor_is_accepted_then_only_the_newest() {
    let s = Stack::builder().no_limits().start().await;
    let a = "successor@example.com";
    let first = s.code_for(a).await;
    s.sink.state.delay_ms.store(3000, Ordering::SeqCst);
    assert_eq!(s.app.generate(a).await.status, 202);
    let sink = &s.sink;
    eventually(
        "the second mail's data at the relay",
        Duration::from_secs(10),
        || async { sink.state.data_commands.load(Ordering::SeqCst) >= 2 },
    )
    .await;
    assert_eq!(
        s.app.verify(a, &first).await.status,
        200,
        "the mailed code works while its successor waits for the relay's answer"
    );
    sink.state.delay_ms.store(0, Ordering::SeqCst);
    let second = code_from(&sink.wait_for(a, 2, Duration::from_secs(10)).await[1]);
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(s.app.verify(a, &first).await.status, 400, "used");
    let third = s.code_for(a).await;
    assert_eq!(
        s.app.verify(a, &second).await.status,
        400,
        "superseded by a newer mailed code"
    );
    assert_eq!(s.app.verify(a, &third).await.status, 200);
    assert_eq!(s.app.verify(a, &third).await.status, 400, "single use");
}

/// Every SMTP step is bounded by `smtp.timeout_secs`, on pooled connections too.
/// A relay that reads the data and never answers does not freeze the worker: other addresses are
/// delivered, the stuck job is delivered on a retry, and SIGTERM exits 0 promptly.
#[tokio::test]
async fn a_relay_silent_after_the_data_freezes_nothing() {
    let mut s = Stack::builder()
        .no_limits()
        .env("OTP_SMTP__TIMEOUT_SECS", 1)
        .env("OTP_SMTP__POOL_SIZE", 2)
        .start()
        .await;
    s.code_for("warm@example.com").await; // a pooled connection to reuse
    let sink = s.sink.clone();
    sink.state.silent_after_dot.store(true, Ordering::SeqCst);
    let stuck = "silent@example.com";
    assert_eq!(s.app.generate(stuck).await.status, 202);
    eventually("the silent attempt", Duration::from_secs(10), || async {
        !sink.attempts_to(stuck).is_empty()
    })
    .await;
    sink.state.silent_after_dot.store(false, Ordering::SeqCst);
    let others: Vec<String> = (0..4).map(|i| format!("other{i}@example.com")).collect();
    for o in &others {
        assert_eq!(s.app.generate(o).await.status, 202);
    }
    for o in others.iter().chain([&stuck.to_string()]) {
        sink.wait_for(o, 1, Duration::from_secs(15)).await;
    }
    let attempts = sink.attempts_to(stuck);
    assert_eq!(attempts[0].answer, Answer::Silent);
    let codes = codes_of(&attempts);
    assert!(codes.iter().all(|c| *c == codes[0]), "same job: {codes:?}");

    sink.state.silent_after_dot.store(true, Ordering::SeqCst);
    assert_eq!(s.app.generate("last@example.com").await.status, 202);
    eventually(
        "the second silent attempt",
        Duration::from_secs(10),
        || async { !sink.attempts_to("last@example.com").is_empty() },
    )
    .await;
    let stopping = Instant::now();
    s.app.signal("TERM");
    assert_eq!(s.app.wait_exit(Duration::from_secs(15)).await, Some(0));
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "SIGTERM took {:?}",
        stopping.elapsed()
    );
}

/// A connection lost after the final dot may have delivered the mail, so the worker
/// does not resend at once on a fresh connection: it retries after the backoff, same code.
#[tokio::test]
async fn a_connection_dropped_after_the_data_is_retried_after_the_backoff_with_the_same_code() {
    let s = Stack::builder()
        .no_limits()
        .env("OTP_WORKER__RETRY_BASE_MS", 1500)
        .start()
        .await;
    s.code_for("warm@example.com").await; // the drop hits a pooled connection
    s.sink.state.drop_after_dot.store(1, Ordering::SeqCst);
    let a = "dropped@example.com";
    assert_eq!(s.app.generate(a).await.status, 202);
    let mail = s.sink.wait_for(a, 1, Duration::from_secs(15)).await;
    let attempts = s.sink.attempts_to(a);
    let answers: Vec<Answer> = attempts.iter().map(|x| x.answer).collect();
    assert_eq!(answers, [Answer::Dropped, Answer::Accepted]);
    let gap = attempts[1].at - attempts[0].at;
    assert!(
        gap >= Duration::from_millis(1000),
        "resent {gap:?} after the drop: no backoff"
    );
    let codes = codes_of(&attempts);
    assert_eq!(codes[0], codes[1], "the resend carries the same code");
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(s.app.verify(a, &code_from(&mail[0])).await.status, 200);
}

/// Retry-After is the true wait. When the hourly cap is what blocks, the answer
/// names the hourly window's end, not the (shorter) cooldown.
#[tokio::test]
async fn retry_after_is_the_hourly_window_when_the_cap_is_what_blocks() {
    let s = Stack::builder()
        .env("OTP_LIMITS__EMAIL_COOLDOWN_SECS", 1)
        .env("OTP_LIMITS__EMAIL_PER_HOUR", 2)
        .start()
        .await;
    let a = "true-wait@example.com";
    assert_eq!(s.app.generate(a).await.status, 202);
    let app = &s.app;
    eventually(
        "a second generate after the cooldown",
        Duration::from_secs(5),
        || async { app.generate(a).await.status == 202 },
    )
    .await;
    let r = s.app.generate(a).await;
    assert_eq!((r.status, r.code().as_str()), (429, "rate_limited"));
    let retry = r.retry_after();
    assert!(
        (3590..=3600).contains(&retry),
        "Retry-After {retry}: both sends of the hour are used, the cooldown is not the wait"
    );
}
