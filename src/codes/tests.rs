//! Generate's queue cap and send budgets against a real redis-server; "now" is the job's
//! creation time, so the tests move time by making jobs later.
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use super::*;
use crate::queue::QueueKeys;
use crate::store::test_server::Redis;

const T0: u64 = 1_800_000_000_000;

fn codes_on(redis: &Redis, send: SendBudgets) -> Codes {
    codes_in(redis, send, Partitions::single("t"))
}

fn codes_in(redis: &Redis, send: SendBudgets, partitions: Partitions) -> Codes {
    let policy = Policy::for_tests(send);
    Codes::new(
        redis.store(),
        "t",
        partitions,
        MacKey::new(b"test key"),
        policy,
    )
}

fn per_minute(n: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(n)
}

async fn ask(codes: &Codes, email: &str, at_ms: u64) -> GenerateOutcome {
    let address = EmailAddress::parse(email).unwrap();
    let job = Job::new(address.for_delivery(), at_ms);
    codes.request(&address, &job).await.unwrap()
}

/// How many of `n` distinct addresses at `domain` are queued at `at_ms`, and the first refusal.
async fn burst(
    codes: &Codes,
    tag: &str,
    domain: &str,
    n: usize,
    at_ms: u64,
) -> (usize, Option<GenerateOutcome>) {
    let mut queued = 0;
    let mut refused = None;
    for i in 0..n {
        match ask(codes, &format!("{tag}{i}@{domain}"), at_ms).await {
            GenerateOutcome::Queued => queued += 1,
            other => {
                refused.get_or_insert(other);
            }
        }
    }
    (queued, refused)
}

fn over(budget: Budget, ms: u64) -> Option<GenerateOutcome> {
    Some(GenerateOutcome::OverBudget {
        budget,
        retry_after: Duration::from_millis(ms),
    })
}

#[tokio::test]
async fn the_global_budget_lets_a_tenth_of_a_minute_burst_through_then_one_per_interval() {
    let redis = Redis::start(&[]).await;
    let budgets = SendBudgets {
        per_minute: per_minute(60),
        ..SendBudgets::default()
    };
    let codes = codes_on(&redis, budgets);
    // 60 a minute: one per second, a burst of 6 s worth plus one.
    let (queued, refused) = burst(&codes, "a", "one.test", 20, T0).await;
    assert_eq!((queued, refused), (7, over(Budget::Global, 1000)));
    // Any domain: the budget is global.
    assert_eq!(
        ask(&codes, "x@two.test", T0 + 400).await,
        over(Budget::Global, 600).unwrap()
    );
    let (queued, refused) = burst(&codes, "b", "two.test", 5, T0 + 1000).await;
    assert_eq!((queued, refused), (1, over(Budget::Global, 1000)));
    // Over a quiet minute the budget refills to the burst, not beyond.
    let (queued, _) = burst(&codes, "c", "two.test", 20, T0 + 120_000).await;
    assert_eq!(queued, 7);
}

#[tokio::test]
async fn a_domain_budget_holds_one_domain_while_others_and_the_global_budget_go_on() {
    let redis = Redis::start(&[]).await;
    let budgets = SendBudgets {
        per_minute: per_minute(600),
        per_domain_per_minute: per_minute(60),
        ..SendBudgets::default()
    };
    let codes = codes_on(&redis, budgets);
    let (queued, refused) = burst(&codes, "a", "busy.test", 20, T0).await;
    assert_eq!((queued, refused), (7, over(Budget::Domain, 1000)));
    let (queued, refused) = burst(&codes, "a", "quiet.test", 7, T0).await;
    assert_eq!((queued, refused), (7, None));
    // 600 a minute allows 61 at once: 14 were admitted, the 13 refusals spent nothing.
    let mut admitted = 14;
    for i in 0..60 {
        if ask(&codes, &format!("u@d{i}.test"), T0).await == GenerateOutcome::Queued {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 61);
}

#[tokio::test]
async fn refusals_of_one_check_spend_nothing_of_the_others() {
    let redis = Redis::start(&[]).await;
    let budgets = SendBudgets {
        per_minute: per_minute(60),
        ..SendBudgets::default()
    };
    let codes = codes_on(&redis, budgets);
    // A cooldown refusal spends no budget: 7 distinct addresses still pass after it.
    assert_eq!(
        ask(&codes, "same@one.test", T0).await,
        GenerateOutcome::Queued
    );
    assert!(matches!(
        ask(&codes, "same@one.test", T0).await,
        GenerateOutcome::Limited { .. }
    ));
    let (queued, _) = burst(&codes, "a", "one.test", 20, T0).await;
    assert_eq!(queued, 6);
    // A budget refusal starts no cooldown and counts nothing: once the budget has room, the
    // refused address gets through at once.
    assert_eq!(
        ask(&codes, "late@one.test", T0).await,
        over(Budget::Global, 1000).unwrap()
    );
    assert_eq!(
        ask(&codes, "late@one.test", T0 + 1000).await,
        GenerateOutcome::Queued
    );
}

#[tokio::test]
async fn past_the_depth_cap_generate_is_refused_until_the_workers_make_room() {
    let redis = Redis::start(&[]).await;
    let budgets = SendBudgets {
        queue_max_depth: NonZeroU64::new(3),
        ..SendBudgets::default()
    };
    let codes = codes_on(&redis, budgets);
    let keys = QueueKeys::for_tag("t");
    let (queued, refused) = burst(&codes, "a", "one.test", 3, T0).await;
    assert_eq!((queued, refused), (3, None));
    let full = GenerateOutcome::QueueFull {
        retry_after: QUEUE_FULL_RETRY,
    };
    assert_eq!(ask(&codes, "next@one.test", T0).await, full);
    // A job waiting for its retry still counts: moving one there makes no room.
    let job: String = redis.cmd(&["RPOP", &keys.pending]).await;
    let _: i64 = redis.cmd(&["ZADD", &keys.delayed, "1", &job]).await;
    assert_eq!(ask(&codes, "next@one.test", T0).await, full);
    // Done with it: room for one, and the refused address was not put on cooldown.
    let _: i64 = redis.cmd(&["ZREM", &keys.delayed, &job]).await;
    assert_eq!(
        ask(&codes, "next@one.test", T0).await,
        GenerateOutcome::Queued
    );
    assert_eq!(ask(&codes, "other@one.test", T0).await, full);
}

#[tokio::test]
async fn with_everything_off_no_budget_key_is_written() {
    let redis = Redis::start(&[]).await;
    let codes = codes_on(&redis, SendBudgets::default());
    let (queued, _) = burst(&codes, "a", "one.test", 50, T0).await;
    assert_eq!(queued, 50);
    let budget_keys: Vec<String> = redis.cmd(&["KEYS", "*budget*"]).await;
    assert!(budget_keys.is_empty(), "{budget_keys:?}");
}

#[tokio::test]
async fn with_partitions_each_address_is_queued_in_its_own_and_caps_are_shares() {
    let redis = Redis::start(&[]).await;
    let partitions = Partitions::new("t", std::num::NonZeroU16::new(4).unwrap());
    let send = SendBudgets {
        queue_max_depth: NonZeroU64::new(8),
        ..SendBudgets::default()
    };
    let codes = codes_in(&redis, send, partitions.clone());
    let mac = MacKey::new(b"test key");
    let mut expected = [0i64; 4];
    let mut full = 0;
    for i in 0..40 {
        let a = format!("user{i}@example.com");
        let p = codes
            .keys
            .limit_keys(&mac, &EmailAddress::parse(&a).unwrap())
            .partition;
        match ask(&codes, &a, T0).await {
            GenerateOutcome::Queued => expected[p] += 1,
            GenerateOutcome::QueueFull { .. } => full += 1,
            other => panic!("{other:?}"),
        }
    }
    for (p, keys) in partitions.all() {
        let n: i64 = redis.cmd(&["LLEN", &keys.pending]).await;
        assert_eq!(n, expected[p], "partition {p}");
        assert!(
            n <= 2,
            "each partition holds its share of the cap of 8: {n}"
        );
    }
    assert_eq!(expected.iter().sum::<i64>() + full, 40);
    assert_eq!(expected, [2, 2, 2, 2]);
}
