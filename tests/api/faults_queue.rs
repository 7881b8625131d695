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

/// Guarantee 4: rounds of SIGTERM in the middle of a burst strand no job: every address is mailed
/// at least once, nothing is left leased or pending, and the per-worker processing lists,
/// worker registry and heartbeat keys are gone.
#[tokio::test]
async fn sigterm_mid_burst_round_after_round_strands_no_job() {
    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await;
    sink.state.delay_ms.store(300, Ordering::SeqCst);
    let mut env = base_env(&redis, &sink);
    env.insert("OTP_WORKER__CONCURRENCY".into(), "4".into());
    let api = TestApp::spawn("api", &env).await;
    let mut all = Vec::new();
    for round in 0..8 {
        let mut worker = TestApp::spawn("worker", &env).await;
        let addrs: Vec<String> = (0..6)
            .map(|i| format!("r{round}-{i}@example.com"))
            .collect();
        let sent_before = sink.state.data_commands.load(Ordering::SeqCst);
        let firing = fire(&api, &addrs);
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
    let _last = TestApp::spawn("worker", &env).await;
    all_mailed(&sink, &all, Duration::from_secs(30)).await;
    redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(redis.zcard(PROCESSING).await, 0);
    assert_eq!(redis.llen(PENDING).await, 0);
    let legacy: Vec<String> = redis.cmd(&["KEYS", "{otp}:queue:*"]).await.unwrap();
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

/// Guarantee 4: a worker killed with -9 under load holds its jobs only by leases in
/// `{otp}:queue:processing`, which return to pending once not renewed; all are mailed.
#[tokio::test]
async fn a_worker_killed_under_load_leaves_leases_that_return_and_get_mailed() {
    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await;
    sink.state.delay_ms.store(1500, Ordering::SeqCst);
    let mut env = base_env(&redis, &sink);
    env.insert("OTP_WORKER__CONCURRENCY".into(), "4".into());
    let api = TestApp::spawn("api", &env).await;
    let doomed = TestApp::spawn("worker", &env).await;
    let addrs: Vec<String> = (0..10).map(|i| format!("kill{i}@example.com")).collect();
    burst(&api, &addrs).await;
    eventually("sends in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 1
    })
    .await;
    let held = leases(&redis).await;
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
    let _rescuer = TestApp::spawn("worker", &env).await;
    // Leases run out 3 s (reap_after_secs) after their last renewal at the latest.
    all_mailed(&sink, &addrs, Duration::from_secs(12)).await;
    redis.wait_drained(Duration::from_secs(10)).await;
}

/// Guarantee 7: retries last as long as the code. A relay that refuses connections and then
/// answers 451 for ~8 s in all does not lose the mail (backoff capped by retry_max_ms).
#[tokio::test]
async fn a_relay_down_then_deferring_for_eight_seconds_still_gets_the_mail() {
    let s = Stack::start(&[
        ("OTP_WORKER__RETRY_BASE_MS", "200"),
        ("OTP_WORKER__RETRY_MAX_MS", "1000"),
        ("OTP_OTP__TTL_SECS", "60"),
    ])
    .await;
    let a = "patient@example.com";
    s.sink.state.refuse.store(true, Ordering::SeqCst);
    assert_eq!(s.app.generate(a).await.0, 202);
    tokio::time::sleep(Duration::from_secs(4)).await; // the outage itself
    s.sink.state.fail_transient.store(1000, Ordering::SeqCst);
    s.sink.state.refuse.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(s.sink.state.refused.load(Ordering::SeqCst) >= 2);
    assert!(s.sink.state.data_commands.load(Ordering::SeqCst) >= 2);
    s.sink.state.fail_transient.store(0, Ordering::SeqCst);
    let mail = s.sink.wait_for(a, 1, Duration::from_secs(5)).await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert_eq!(s.redis.llen(DEAD).await, 0);
    assert_eq!(s.app.verify(a, &code_from(&mail[0])).await.0, 200);
}

/// Guarantee 7: a greylisting relay (451 until 6 s after the first try) gets the mail with the
/// default attempt limit and backoff cap (max_attempts 20, retry_max_ms 60000; base 200 ms).
#[tokio::test]
async fn a_greylisting_relay_gets_the_mail_with_the_default_attempt_limit_and_cap() {
    let s = Stack::start(&[]).await;
    s.sink.state.greylist_ms.store(6000, Ordering::SeqCst);
    let a = "grey@example.com";
    assert_eq!(s.app.generate(a).await.0, 202);
    let mail = s.sink.wait_for(a, 1, Duration::from_secs(40)).await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    assert!(s.sink.state.greylisted.load(Ordering::SeqCst) >= 1);
    assert_eq!(s.app.verify(a, &code_from(&mail[0])).await.0, 200);
}

/// Guarantee 7: retries stop when the code would expire: with a 4 s code and a relay that never
/// takes it, the job leaves the queue (dead or dropped) well before 20 attempts and nothing is mailed.
#[tokio::test]
async fn retries_stop_when_the_code_would_expire() {
    let s = Stack::start(&[
        ("OTP_WORKER__RETRY_BASE_MS", "200"),
        ("OTP_WORKER__RETRY_MAX_MS", "500"),
        ("OTP_OTP__TTL_SECS", "4"),
    ])
    .await;
    s.sink.state.fail_transient.store(1000, Ordering::SeqCst);
    assert_eq!(s.app.generate("expiring@example.com").await.0, 202);
    let redis = &s.redis;
    eventually(
        "the job to leave the queue",
        Duration::from_secs(10),
        || async { redis.unfinished_jobs().await == (0, 0, 0) },
    )
    .await;
    let tries = s.sink.state.data_commands.load(Ordering::SeqCst);
    assert!((2..20).contains(&tries), "{tries} attempts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.sink.state.data_commands.load(Ordering::SeqCst), tries);
    assert!(s.sink.mails().is_empty());
}

/// Guarantee 8: jobs accepted before Redis filled up are still mailed (and their codes verify once
/// memory is back), while new generates get 503.
#[tokio::test]
async fn accepted_jobs_are_mailed_while_redis_is_at_maxmemory() {
    let s = Stack::start(&[NO_LIMITS[0], NO_LIMITS[1]]).await;
    s.sink.state.refuse.store(true, Ordering::SeqCst);
    let addrs: Vec<String> = (0..4).map(|i| format!("oom{i}@example.com")).collect();
    burst(&s.app, &addrs).await;
    let sink = &s.sink;
    eventually("the relay tried", Duration::from_secs(10), || async {
        sink.state.refused.load(Ordering::SeqCst) >= 1
    })
    .await;
    s.redis.fill_to_oom().await;
    let (status, _, body) = s.app.generate("late@example.com").await;
    assert_eq!(status, 503, "{body}");
    sink.state.refuse.store(false, Ordering::SeqCst);
    all_mailed(sink, &addrs, Duration::from_secs(20)).await;
    s.redis.wait_drained(Duration::from_secs(10)).await;
    s.redis.free_memory().await;
    for a in &addrs {
        let code = code_from(sink.mails_to(a).last().unwrap());
        assert_eq!(s.app.verify(a, &code).await.0, 200, "{a}");
    }
    assert!(sink.mails_to("late@example.com").is_empty());
}

/// Guarantee 10: Redis stalled (SIGSTOP) for 5 s while the worker waits for work, just after
/// generates were accepted: once it resumes, every accepted address is mailed and nothing is left
/// pending or leased. Generates sent during the stall time out (503), but their commands wait in
/// Redis's socket buffer and may still queue a job when it resumes: such a job (handed, perhaps,
/// to a blocked fetch whose client already gave up) must not be stranded either.
#[tokio::test]
async fn a_stalled_redis_strands_nothing() {
    let s = Stack::start(&[
        NO_LIMITS[0],
        NO_LIMITS[1],
        ("OTP_WORKER__CONCURRENCY", "2"),
        // The default: recovery must not lean on leases running out during the stall.
        ("OTP_WORKER__REAP_AFTER_SECS", "30"),
    ])
    .await;
    s.sink.state.delay_ms.store(200, Ordering::SeqCst);
    s.code_for("idle@example.com", 1).await;
    s.redis.wait_drained(Duration::from_secs(5)).await; // the worker is idle, blocked on the queue
    let addrs: Vec<String> = (0..8).map(|i| format!("stall{i}@example.com")).collect();
    burst(&s.app, &addrs).await;
    s.redis.pause();
    let paused = Instant::now();
    for i in 0..3 {
        let (status, _, body) = s.app.generate(&format!("late{i}@example.com")).await;
        assert_eq!(status, 503, "{body}");
    }
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(paused.elapsed())).await;
    s.redis.resume();
    all_mailed(&s.sink, &addrs, Duration::from_secs(15)).await;
    s.redis.wait_drained(Duration::from_secs(15)).await;
}
