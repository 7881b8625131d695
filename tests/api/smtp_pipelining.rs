//! SMTP pipelining (RFC 2920): with a relay that offers it, MAIL, RCPT and DATA go in one write;
//! without it, one command at a time. Either way the mail and its code are the same, and a
//! refusal inside a pipelined group leaves no half-read replies on a reused connection.
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::helpers::*;
use crate::stack::Stack;

/// One job at a time, so every mail uses the same pooled connection unless one fails.
async fn one_at_a_time() -> Stack {
    Stack::builder()
        .no_limits()
        .env("OTP_WORKER__CONCURRENCY", 1)
        .start()
        .await
}

async fn three_codes_verify(s: &Stack, name: &str) {
    for i in 0..3 {
        let email = format!("{name}{i}@example.com");
        let code = s.code_for(&email).await;
        assert_eq!(s.app.verify(&email, &code).await.status, 200);
    }
}

#[tokio::test]
async fn a_relay_offering_pipelining_gets_the_envelope_in_one_write() {
    let s = one_at_a_time().await;
    three_codes_verify(&s, "piped").await;
    assert_eq!(s.sink.state.pipelined.load(Ordering::SeqCst), 3);
    assert_eq!(s.sink.state.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_relay_without_pipelining_gets_one_command_at_a_time() {
    let s = one_at_a_time().await;
    s.sink.state.no_pipelining.store(true, Ordering::SeqCst);
    three_codes_verify(&s, "stepwise").await;
    assert_eq!(s.sink.state.pipelined.load(Ordering::SeqCst), 0);
    assert_eq!(s.sink.state.data_commands.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_recipient_refused_in_a_pipelined_group_costs_only_its_own_mail() {
    let s = one_at_a_time().await;
    s.code_for("before@example.com").await;
    s.sink.state.fail_permanent.store(true, Ordering::SeqCst);
    assert_eq!(s.app.generate("refused@example.com").await.status, 202);
    let redis = &s.redis;
    eventually("dead letter", Duration::from_secs(10), || async {
        redis.llen(DEAD).await == 1
    })
    .await;
    s.sink.state.fail_permanent.store(false, Ordering::SeqCst);
    // The refused group's DATA reply (554) is never read as the next mail's MAIL reply: the
    // session that failed is closed, the next mail opens another.
    three_codes_verify(&s, "after").await;
    assert_eq!(s.sink.state.connections.load(Ordering::SeqCst), 2);
    assert_eq!(s.sink.state.data_commands.load(Ordering::SeqCst), 4);
    assert_eq!(s.app.jobs("retried").await, 0.0);
    assert_eq!(s.app.jobs("sent").await, 4.0);
}
