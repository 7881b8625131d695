//! Queue guarantees under faults: no job stranded by SIGTERM, kill -9, a stalled or full Redis,
//! and retries that last as long as the code does.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::fault_kit::*;
use crate::helpers::*;

/// Fires one generate per address, one after the other, in the background; each must be 202.
fn fire(api: &TestApp, addrs: &[String]) -> tokio::task::JoinHandle<()> {
    let (client, url) = (api.client.clone(), format!("{}/otp/generate", api.http));
    let addrs = addrs.to_vec();
    tokio::spawn(async move {
        for a in addrs {
            let body = serde_json::json!({ "email": a });
            let status = client.post(&url).json(&body).send().await.unwrap().status();
            assert_eq!(status, 202, "{a}");
        }
    })
}

async fn burst(api: &TestApp, addrs: &[String]) {
    fire(api, addrs).await.unwrap();
}

/// An `api` process and its Redis and sink; the tests start and stop `worker` processes on it.
async fn api_stack_for_workers() -> Stack {
    Stack::builder()
        .mode("api")
        .env("OTP_WORKER__CONCURRENCY", 4)
        .start()
        .await
}

/// Rounds of SIGTERM in the middle of a burst strand no job: every address is mailed
/// at least once, nothing is left leased or pending, and the per-worker processing lists,
/// worker registry and heartbeat keys are gone.
#[tokio::test]
async fn sigterm_mid_burst_round_after_round_strands_no_job() {
    let s = api_stack_for_workers().await;
    let (redis, sink) = (&s.redis, &s.sink);
    sink.state.delay_ms.store(300, Ordering::SeqCst);
    let mut all = Vec::new();
    for round in 0..8 {
        let mut worker = s.spawn("worker").await;
        let addrs: Vec<String> = (0..6)
            .map(|i| format!("r{round}-{i}@example.com"))
            .collect();
        let sent_before = sink.state.data_commands.load(Ordering::SeqCst);
        let firing = fire(&s.app, &addrs);
        eventually(
            "this round's worker sending",
            Duration::from_secs(10),
            || async { sink.state.data_commands.load(Ordering::SeqCst) > sent_before },
        )
        .await;
        worker.signal("TERM");
        firing.await.unwrap();
        assert_eq!(
            worker.wait_exit(Duration::from_secs(15)).await,
            Some(0),
            "round {round}: log:\n{}",
            worker.logs()
        );
        all.extend(addrs);
    }
    let _last = s.spawn("worker").await;
    all_mailed(sink, &all, Duration::from_secs(30)).await;
    redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(redis.zcard(PROCESSING).await, 0);
    assert_eq!(redis.llen(PENDING).await, 0);
    let legacy = redis.keys("{otp}:queue:*").await;
    let legacy: Vec<&String> = legacy
        .iter()
        .filter(|k| {
            k.starts_with("{otp}:queue:processing:")
                || k.starts_with("{otp}:queue:heartbeat")
                || *k == "{otp}:queue:workers"
        })
        .collect();
    assert!(legacy.is_empty(), "per-worker keys are gone: {legacy:?}");
}

/// A worker killed with -9 under load holds its jobs only by leases in
/// `{otp}:queue:processing`, which return to pending once not renewed; all are mailed.
#[tokio::test]
async fn a_worker_killed_under_load_leaves_leases_that_return_and_get_mailed() {
    let s = api_stack_for_workers().await;
    let (redis, sink) = (&s.redis, &s.sink);
    sink.state.delay_ms.store(1500, Ordering::SeqCst);
    let doomed = s.spawn("worker").await;
    let addrs: Vec<String> = (0..10).map(|i| format!("kill{i}@example.com")).collect();
    burst(&s.app, &addrs).await;
    eventually("sends in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 1
    })
    .await;
    let held = leases(redis).await;
    assert!(
        !held.is_empty(),
        "in-flight jobs are leased in {PROCESSING}"
    );
    let now = now_ms();
    for (id, job, deadline) in &held {
        assert!(!id.is_empty(), "a lease id");
        assert!(job["email"].as_str().unwrap().starts_with("kill"), "{job}");
        assert!(
            deadline.abs_diff(now) < 60_000,
            "score {deadline} is a deadline in ms near now ({now})"
        );
    }
    doomed.signal("KILL");
    sink.state.delay_ms.store(0, Ordering::SeqCst);
    let _rescuer = s.spawn("worker").await;
    // Leases run out 3 s (reap_after_secs) after their last renewal at the latest.
    all_mailed(sink, &addrs, Duration::from_secs(12)).await;
    redis.wait_drained(Duration::from_secs(10)).await;
}

/// Retries last as long as the code. A relay that first refuses connections, then
/// answers 451, does not lose the mail: the worker keeps trying, its backoff capped by
/// `retry_max_ms` (500 ms here; uncapped, the 4th and later tries would wait 1.6 s and more).
/// That it keeps trying for seconds with the defaults is the greylisting test below.
#[tokio::test]
async fn a_relay_down_then_deferring_still_gets_the_mail_with_capped_backoff() {
    let s = Stack::builder()
        .env("OTP_WORKER__RETRY_BASE_MS", 200)
        .env("OTP_WORKER__RETRY_MAX_MS", 500)
        .env("OTP_OTP__TTL_SECS", 60)
        .start()
        .await;
    let (a, sink) = ("patient@example.com", &s.sink);
    sink.state.refuse.store(true, Ordering::SeqCst);
    assert_eq!(s.app.generate(a).await.status, 202);
    eventually("three refused tries", Duration::from_secs(10), || async {
        sink.state.refused.load(Ordering::SeqCst) >= 3
    })
    .await;
    sink.state.fail_transient.store(1000, Ordering::SeqCst);
    sink.state.refuse.store(false, Ordering::SeqCst);
    let deferred = || {
        sink.attempts_to(a)
            .into_iter()
            .filter(|t| t.answer == Answer::Transient)
    };
    eventually("three deferred tries", Duration::from_secs(10), || async {
        deferred().count() >= 3
    })
    .await;
    let at: Vec<Instant> = deferred().map(|t| t.at).collect();
    for pair in at.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap < Duration::from_millis(1400),
            "{gap:?} between tries: not capped"
        );
    }
    sink.state.fail_transient.store(0, Ordering::SeqCst);
    let code = code_from(&sink.wait_for(a, 1, Duration::from_secs(5)).await[0]);
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(s.redis.llen(DEAD).await, 0);
    assert_eq!(s.app.verify(a, &code).await.status, 200);
}

/// A greylisting relay (451 until 6 s after the first try) gets the mail with the
/// default attempt limit and backoff cap (max_attempts 20, retry_max_ms 60000; base 200 ms).
#[tokio::test]
async fn a_greylisting_relay_gets_the_mail_with_the_default_attempt_limit_and_cap() {
    let s = Stack::start().await;
    s.sink.state.greylist_ms.store(6000, Ordering::SeqCst);
    let a = "grey@example.com";
    assert_eq!(s.app.generate(a).await.status, 202);
    let mail = s.sink.wait_for(a, 1, Duration::from_secs(40)).await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert!(s.sink.state.greylisted.load(Ordering::SeqCst) >= 1);
    assert_eq!(s.app.verify(a, &code_from(&mail[0])).await.status, 200);
}

/// Retries stop when the code would expire: with a 4 s code and a relay that never
/// takes it, the job leaves the queue (dead or dropped) well before 20 attempts and nothing is mailed.
#[tokio::test]
async fn retries_stop_when_the_code_would_expire() {
    let s = Stack::builder()
        .env("OTP_WORKER__RETRY_BASE_MS", 200)
        .env("OTP_WORKER__RETRY_MAX_MS", 500)
        .env("OTP_OTP__TTL_SECS", 4)
        .start()
        .await;
    let sink = &s.sink;
    sink.state.fail_transient.store(1000, Ordering::SeqCst);
    assert_eq!(s.app.generate("expiring@example.com").await.status, 202);
    s.redis.wait_drained(Duration::from_secs(10)).await;
    let tries = sink.attempts_to("expiring@example.com").len();
    assert!((2..20).contains(&tries), "{tries} attempts");
    let app = &s.app;
    let gave_up = app.jobs("dead_lettered").await + app.jobs("dropped_expired").await;
    assert_eq!(gave_up, 1.0, "the job ended");
    // A job in no queue list is never sent again. Barrier: a later job, sent and finished, while
    // the expired one stays at its count.
    sink.state.fail_transient.store(0, Ordering::SeqCst);
    s.code_for("later@example.com").await;
    assert_eq!(sink.attempts_to("expiring@example.com").len(), tries);
    assert!(sink.mails_to("expiring@example.com").is_empty());
}

/// Jobs accepted before Redis filled up are still mailed (and their codes verify once
/// memory is back), while new generates get 503.
#[tokio::test]
async fn accepted_jobs_are_mailed_while_redis_is_at_maxmemory() {
    let s = Stack::builder().no_limits().start().await;
    s.sink.state.refuse.store(true, Ordering::SeqCst);
    let addrs: Vec<String> = (0..4).map(|i| format!("oom{i}@example.com")).collect();
    burst(&s.app, &addrs).await;
    let sink = &s.sink;
    eventually("the relay tried", Duration::from_secs(10), || async {
        sink.state.refused.load(Ordering::SeqCst) >= 1
    })
    .await;
    s.redis.fill_to_oom().await;
    let r = s.app.generate("late@example.com").await;
    assert_eq!(r.status, 503, "{}", r.body);
    sink.state.refuse.store(false, Ordering::SeqCst);
    all_mailed(sink, &addrs, Duration::from_secs(20)).await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    s.redis.free_memory().await;
    for a in &addrs {
        let code = code_from(sink.mails_to(a).last().unwrap());
        assert_eq!(s.app.verify(a, &code).await.status, 200, "{a}");
    }
    assert!(sink.mails_to("late@example.com").is_empty());
}

/// Redis stalled (SIGSTOP) just after generates were accepted, until the worker's
/// own calls have given up on it: once it resumes, every accepted address is mailed and nothing
/// is left pending or leased. Generates sent during the stall time out (503), but their commands
/// wait in Redis's socket buffer and may still queue a job when it resumes: such a job (handed,
/// perhaps, to a blocked fetch whose client already gave up) must not be stranded either.
#[tokio::test]
async fn a_stalled_redis_strands_nothing() {
    let s = Stack::builder()
        .no_limits()
        .env("OTP_WORKER__CONCURRENCY", 2)
        // The default: recovery must not lean on leases running out during the stall.
        .env("OTP_WORKER__REAP_AFTER_SECS", 30)
        .start()
        .await;
    s.sink.state.delay_ms.store(200, Ordering::SeqCst);
    s.code_for("idle@example.com").await; // the worker is idle, blocked on the queue
    let addrs: Vec<String> = (0..8).map(|i| format!("stall{i}@example.com")).collect();
    burst(&s.app, &addrs).await;
    // The worker gives up on a call to Redis either in its fetch ("taking jobs failed") or, while
    // its slots are busy, in a job's update ("redis update failed").
    let gave_up = |app: &TestApp| {
        let logs = app.logs();
        logs.matches("taking jobs failed").count() + logs.matches("redis update failed").count()
    };
    let gave_up_before = gave_up(&s.app);
    s.redis.pause();
    for i in 0..3 {
        let r = s.app.generate(&format!("late{i}@example.com")).await;
        assert_eq!(r.status, 503, "{}", r.body);
    }
    // Barrier instead of a fixed stall: Redis resumes only once a worker call timed out, so the
    // commands it left in the socket buffer belong to a client that no longer waits.
    let app = &s.app;
    eventually(
        "the worker giving up on Redis",
        Duration::from_secs(10),
        || async { gave_up(app) > gave_up_before },
    )
    .await;
    s.redis.resume();
    all_mailed(&s.sink, &addrs, Duration::from_secs(15)).await;
    s.redis.wait_drained(Duration::from_secs(15)).await;
}
