//! Growing past one queue: a partitioned queue keeps every promise with many processes, on one
//! Redis and on a Redis Cluster.
use std::time::Duration;

use crate::app::TestApp;
use crate::fault_kit::all_mailed;
use crate::fleet::{Fleet, every_promise_holds};
use crate::smtp_sink::SmtpSink;
use crate::stack::{base_env, env_on};
use crate::test_cluster::{RedisCluster, cmd_on};
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

/// A three-master Redis Cluster with sixteen partitions, two APIs and two workers (one killed
/// -9 midway): 2,000 addresses mailed and verified, one 202 per burst, one 200 per code, no
/// script ever crossed slots, and every master ran its share of the commands (±25 % of the mean).
#[tokio::test]
async fn a_redis_cluster_with_sixteen_partitions_keeps_every_promise_and_shares_the_load() {
    let cluster = RedisCluster::start().await;
    let sink = SmtpSink::start().await;
    let mut env = env_on(cluster.env(), &sink);
    env.insert("OTP_QUEUE__PARTITIONS".into(), "16".into());
    let mut fleet = Fleet::start(env).await;
    for n in &cluster.nodes {
        let _: String = cmd_on(n.port, &["CONFIG", "RESETSTAT"]).await.unwrap();
    }
    every_promise_holds(&mut fleet, &sink, "c", 2000).await;
    let mut calls = Vec::new();
    for n in &cluster.nodes {
        let errors: String = cmd_on(n.port, &["INFO", "errorstats"]).await.unwrap();
        assert!(!errors.contains("CROSSSLOT"), "port {}: {errors}", n.port);
        let stats: String = cmd_on(n.port, &["INFO", "commandstats"]).await.unwrap();
        calls.push(app_commands(&stats));
    }
    let mean = calls.iter().sum::<u64>() as f64 / calls.len() as f64;
    eprintln!("commands per master: {calls:?} (mean {mean:.0})");
    for c in &calls {
        let off = (*c as f64 - mean).abs() / mean;
        assert!(
            off <= 0.25,
            "a master ran {c} commands, {:.0} % off the mean: {calls:?}",
            off * 100.0
        );
    }
}

/// Calls of the commands the service's work is made of, from `INFO commandstats`: scripts and
/// the commands around them, not the cluster's own bookkeeping or our probes.
fn app_commands(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| {
            ![
                "info", "config", "cluster", "ping", "command", "client", "hello",
            ]
            .iter()
            .any(|skip| l.starts_with(&format!("{skip}:")) || l.starts_with(&format!("{skip}|")))
        })
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Growing the partition count keeps what is queued: jobs queued by an `api` with one partition
/// are mailed by a worker with four (partition 0 keeps the single queue's keys), and new jobs then
/// spread over all four.
#[tokio::test]
async fn growing_the_partition_count_loses_no_queued_job() {
    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await;
    let env = base_env(&redis, &sink);
    let api = TestApp::spawn("api", &env).await;
    let before: Vec<String> = (0..40).map(|i| format!("old{i}@grow.test")).collect();
    for a in &before {
        assert_eq!(api.generate(a).await.status, 202);
    }
    assert_eq!(redis.llen("{otp}:queue:pending").await, 40);
    let mut grown = env.clone();
    grown.insert("OTP_QUEUE__PARTITIONS".into(), "4".into());
    let api4 = TestApp::spawn("api", &grown).await;
    let _worker = TestApp::spawn("worker", &grown).await;
    all_mailed(&sink, &before, Duration::from_secs(30)).await;
    let after: Vec<String> = (0..40).map(|i| format!("new{i}@grow.test")).collect();
    for a in &after {
        assert_eq!(api4.generate(a).await.status, 202);
    }
    all_mailed(&sink, &after, Duration::from_secs(30)).await;
    let counters = redis.keys("*:queue:lease_seq").await;
    assert_eq!(
        counters.len(),
        4,
        "the new jobs used every partition: {counters:?}"
    );
}
