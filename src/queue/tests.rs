//! Every queue operation against a real redis-server, with time moved by a manual clock.
use std::time::Duration;

use super::*;
use crate::clock::ManualTime;
use crate::store::test_server::{Redis, UNMEASURED};

const LEASE: Duration = Duration::from_secs(30);

async fn queue_on(redis: &Redis) -> (Queue, ManualTime, QueueKeys) {
    let (clock, hand) = Clock::manual(1_000_000);
    let partitions = Partitions::single("t");
    let keys = partitions.keys(0).clone();
    (
        Queue::new(redis.store(), partitions, clock, LEASE),
        hand,
        keys,
    )
}

/// What a sweep over the partitions moved; it must not have failed anywhere.
fn moved((n, failed): (i64, Option<StoreError>)) -> i64 {
    assert!(failed.is_none(), "{failed:?}");
    n
}

async fn push(redis: &Redis, keys: &QueueKeys, n: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    for i in 0..n {
        let job = Job::new(format!("u{i}@example.com"), 1_000_000);
        let _: i64 = redis.cmd(&["LPUSH", &keys.pending, &job.to_json()]).await;
        jobs.push(job);
    }
    jobs
}

async fn depth_of(redis: &Redis, keys: &QueueKeys) -> (i64, i64, i64, i64) {
    let d = depth(&redis.store(), &Partitions::single(keys.tag()))
        .await
        .unwrap();
    let [d] = d.as_slice() else {
        panic!("one partition: {d:?}")
    };
    (d.pending, d.processing, d.delayed, d.dead)
}

#[tokio::test]
async fn claim_leases_oldest_first_and_ack_ends_the_lease_once() {
    let redis = Redis::start(&[]).await;
    let (q, _, keys) = queue_on(&redis).await;
    let jobs = push(&redis, &keys, 3).await;
    let leases = q.claim(0, 2).await.unwrap();
    let got: Vec<Job> = leases
        .iter()
        .map(|l| Job::parse(l.job()).unwrap())
        .collect();
    assert_eq!(got, jobs[..2]);
    assert_eq!(depth_of(&redis, &keys).await, (1, 2, 0, 0));
    let deadline: f64 = redis
        .cmd(&["ZSCORE", &keys.processing, leases[0].member()])
        .await;
    assert_eq!(deadline as u64, 1_000_000 + 30_000);
    assert_eq!(q.ack(&leases[0]).await.unwrap(), Settled::Done);
    assert_eq!(q.ack(&leases[0]).await.unwrap(), Settled::LeaseLost);
    assert_eq!(q.claim(0, 5).await.unwrap().len(), 1);
    assert!(q.claim(0, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_reaped_and_its_late_ack_is_reported_lost() {
    let redis = Redis::start(&[]).await;
    let (q, hand, keys) = queue_on(&redis).await;
    push(&redis, &keys, 2).await;
    let leases = q.claim(0, 2).await.unwrap();
    hand.advance(Duration::from_secs(20));
    assert_eq!(q.extend(&leases[..1]).await.unwrap(), 1);
    assert_eq!(moved(q.reap().await), 0, "nothing expired yet");
    hand.advance(Duration::from_secs(11));
    assert_eq!(moved(q.reap().await), 1, "only the lease not renewed");
    assert_eq!(depth_of(&redis, &keys).await, (1, 1, 0, 0));
    let again = q.claim(0, 1).await.unwrap();
    assert_eq!(again[0].job(), leases[1].job(), "the same job, re-leased");
    assert_ne!(again[0], leases[1], "under a new lease");
    let next = Job::parse(leases[1].job()).unwrap();
    assert_eq!(
        q.retry(&leases[1], &next, 0).await.unwrap(),
        Settled::LeaseLost
    );
    assert_eq!(q.extend(&leases[1..]).await.unwrap(), 0, "not revived");
    assert_eq!(q.ack(&again[0]).await.unwrap(), Settled::Done);
    assert_eq!(q.ack(&leases[0]).await.unwrap(), Settled::Done);
    assert_eq!(depth_of(&redis, &keys).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn retry_waits_in_delayed_until_due_then_is_taken_next() {
    let redis = Redis::start(&[]).await;
    let (q, hand, keys) = queue_on(&redis).await;
    push(&redis, &keys, 1).await;
    let lease = q.claim(0, 1).await.unwrap().remove(0);
    let mut next = Job::parse(lease.job()).unwrap();
    next.attempt = 1;
    let due = q.clock().after(Duration::from_secs(4));
    assert_eq!(q.retry(&lease, &next, due).await.unwrap(), Settled::Done);
    push(&redis, &keys, 1).await;
    hand.advance(Duration::from_millis(3_999));
    assert_eq!(moved(q.promote_due().await), 0);
    hand.advance(Duration::from_millis(1));
    assert_eq!(moved(q.promote_due().await), 1);
    let first = q.claim(0, 1).await.unwrap().remove(0);
    assert_eq!(
        Job::parse(first.job()).unwrap(),
        next,
        "a due retry goes first"
    );
}

#[tokio::test]
async fn the_dead_letter_list_is_bounded_in_length_and_age_and_newest_first() {
    let redis = Redis::start(&[]).await;
    let (q, hand, keys) = queue_on(&redis).await;
    let q = q.with_dead_letters(DeadLetters {
        max: 3,
        max_age: Duration::from_secs(3600),
    });
    push(&redis, &keys, 6).await;
    let leases = q.claim(0, 6).await.unwrap();
    let note = |i: usize, dead_ms: u64| format!(r#"{{"n":{i},"dead_ms":{dead_ms}}}"#);
    let mut trimmed = 0;
    for (i, lease) in leases[..4].iter().enumerate() {
        let (settled, t) = q
            .dead_letter(lease, &note(i, q.clock().now_ms()))
            .await
            .unwrap();
        assert_eq!(settled, Settled::Done);
        trimmed += t;
        let again = q.dead_letter(lease, &note(i, 0)).await.unwrap();
        assert_eq!(again, (Settled::LeaseLost, 0), "a lease ends once");
    }
    assert_eq!(trimmed, 1, "the fourth entry pushed the first out");
    let dead: Vec<String> = redis.cmd(&["LRANGE", &keys.dead, "0", "-1"]).await;
    let ns: Vec<&str> = dead.iter().map(|d| &d[5..6]).collect();
    assert_eq!(ns, ["3", "2", "1"], "newest first");
    // Two hours later, the next dead letter drops every entry older than an hour.
    hand.advance(Duration::from_secs(7200));
    let (_, t) = q
        .dead_letter(&leases[4], &note(4, q.clock().now_ms()))
        .await
        .unwrap();
    assert_eq!(t, 3);
    let dead: Vec<String> = redis.cmd(&["LRANGE", &keys.dead, "0", "-1"]).await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].starts_with(r#"{"n":4"#));
    // Entries without a dead_ms (not JSON) are left to the length limit.
    q.dead_letter(&leases[5], "not json").await.unwrap();
    assert_eq!(DeadLetters::default().max, 10_000);
}

#[tokio::test]
async fn wake_tokens_are_bounded_and_wake_a_waiting_worker() {
    let redis = Redis::start(&[]).await;
    let (q, hand, keys) = queue_on(&redis).await;
    push(&redis, &keys, 1).await;
    let lease = q.claim(0, 1).await.unwrap().remove(0);
    let next = Job::parse(lease.job()).unwrap();
    for _ in 0..100 {
        let _: i64 = redis.cmd(&["LPUSH", &keys.wake, "1"]).await;
    }
    q.retry(&lease, &next, 0).await.unwrap();
    hand.advance(Duration::from_millis(1));
    assert_eq!(moved(q.promote_due().await), 1);
    let tokens: i64 = redis.cmd(&["LLEN", &keys.wake]).await;
    assert_eq!(tokens.to_string(), WAKE_TOKENS);
    let mut waker = q.waker(0);
    assert!(waker.wait().await.unwrap(), "a token is waiting");
    let _: i64 = redis.cmd(&["DEL", &keys.wake]).await;
    assert!(!waker.wait().await.unwrap(), "no token: times out");
}

/// At maxmemory Redis refuses new work, but leased jobs still move through the queue.
#[tokio::test]
async fn under_oom_jobs_already_queued_are_still_claimed_and_settled() {
    let redis = Redis::start(&[]).await;
    let (q, hand, keys) = queue_on(&redis).await;
    push(&redis, &keys, 3).await;
    let used: String = redis.cmd(&["INFO", "memory"]).await;
    let used: u64 = used
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _: String = redis
        .cmd(&["CONFIG", "SET", "maxmemory", &(used / 2).to_string()])
        .await;
    let refused = redis
        .store()
        .run(UNMEASURED, |mut c| async move {
            redis::cmd("LPUSH")
                .arg("t:other")
                .arg("x")
                .query_async::<i64>(&mut c)
                .await
        })
        .await;
    assert!(
        format!("{:?}", refused.unwrap_err()).contains("OOM"),
        "Redis is refusing writes"
    );
    let leases = q.claim(0, 3).await.unwrap();
    assert_eq!(leases.len(), 3);
    assert_eq!(q.extend(&leases).await.unwrap(), 3);
    let mut next = Job::parse(leases[1].job()).unwrap();
    next.attempt = 1;
    assert_eq!(q.ack(&leases[0]).await.unwrap(), Settled::Done);
    assert_eq!(q.retry(&leases[1], &next, 0).await.unwrap(), Settled::Done);
    assert_eq!(
        q.dead_letter(&leases[2], "x").await.unwrap(),
        (Settled::Done, 0)
    );
    hand.advance(Duration::from_millis(1));
    assert_eq!(moved(q.promote_due().await), 1);
    assert_eq!(depth_of(&redis, &keys).await, (1, 0, 0, 1));
}

#[tokio::test]
async fn every_partition_is_a_queue_of_its_own_and_sweeps_cover_them_all() {
    let redis = Redis::start(&[]).await;
    let (clock, hand) = Clock::manual(1_000_000);
    let partitions = Partitions::new("t", std::num::NonZeroU16::new(4).unwrap());
    let q = Queue::new(redis.store(), partitions.clone(), clock, LEASE);
    let mut leases = Vec::new();
    for (p, keys) in partitions.all() {
        let pushed = push(&redis, keys, 1).await;
        let taken = q.claim(p, 5).await.unwrap();
        assert_eq!(taken.len(), 1, "partition {p} holds exactly its own job");
        assert_eq!(
            (taken[0].partition(), taken[0].job()),
            (p, &*pushed[0].to_json())
        );
        leases.extend(taken);
    }
    hand.advance(Duration::from_secs(20));
    assert_eq!(q.extend(&leases[..2]).await.unwrap(), 2);
    hand.advance(Duration::from_secs(11));
    assert_eq!(
        moved(q.reap().await),
        2,
        "the two leases not renewed, in their partitions"
    );
    let d = depth(&redis.store(), &partitions).await.unwrap();
    let pending: Vec<i64> = d.iter().map(|d| d.pending).collect();
    let processing: Vec<i64> = d.iter().map(|d| d.processing).collect();
    assert_eq!((pending, processing), (vec![0, 0, 1, 1], vec![1, 1, 0, 0]));
    assert_eq!(Depth::sum(&d).pending, 2);
    assert_eq!(q.ack(&leases[1]).await.unwrap(), Settled::Done);
    assert_eq!(q.ack(&leases[3]).await.unwrap(), Settled::LeaseLost);
    let next = Job::parse(leases[0].job()).unwrap();
    assert_eq!(q.retry(&leases[0], &next, 1).await.unwrap(), Settled::Done);
    assert_eq!(moved(q.promote_due().await), 1);
    let back = q.claim(0, 5).await.unwrap();
    assert_eq!(back.len(), 1, "the retry came back to its own partition");
}
