//! Growing past one queue: a partitioned queue keeps every promise with many processes.
use crate::fleet::{Fleet, every_promise_holds};
use crate::smtp_sink::SmtpSink;
use crate::stack::base_env;
use crate::test_redis::TestRedis;

/// Eight partitions on one Redis, two APIs and two workers (one killed -9 midway): every
/// address mailed and verified, one 202 per burst, one 200 per code, and every partition used.
#[tokio::test]
async fn a_partitioned_queue_on_one_redis_keeps_every_promise() {
    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await;
    let mut env = base_env(&redis, &sink);
    env.insert("OTP_QUEUE__PARTITIONS".into(), "8".into());
    let mut fleet = Fleet::start(env).await;
    every_promise_holds(&mut fleet, &sink, "p", 400).await;
    let counters = redis.keys("*:queue:lease_seq").await;
    assert_eq!(counters.len(), 8, "every partition had jobs: {counters:?}");
    let stranded = redis.keys("*:queue:p*").await;
    for key in stranded {
        let n = match redis.key_type(&key).await.as_str() {
            "list" => redis.llen(&key).await,
            _ => redis.zcard(&key).await,
        };
        assert_eq!(n, 0, "{key} is empty once all is mailed");
    }
}
