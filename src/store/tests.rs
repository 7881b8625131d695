//! The store against real deployments: a three-primary cluster and a sentinel-watched primary
//! with one replica. Each test starts its own servers (a few seconds; failover tests up to ~15 s).
use std::time::{Duration, Instant};

use super::test_server::UNMEASURED;
use super::test_topologies::{RedisCluster, RedisSentinel, cmd_on, free_port};
use super::{Replicated, Script, Store, StoreError};
use crate::config::{NodeAddress, RedisConfig, RedisTopology, ReplicaWait, Secret};

/// Writes ARGV[1] to KEYS[1] and reads it back, on whichever node runs it.
const SET_AND_GET: &str = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";

fn store(topology: RedisTopology, wait: Option<ReplicaWait>) -> Store {
    Store::connect(&RedisConfig {
        topology,
        key_prefix: "otp".into(),
        timeout: Duration::from_millis(500),
        ca_pem: None,
        wait,
    })
    .unwrap()
}

fn local(port: u16) -> NodeAddress {
    NodeAddress {
        host: "127.0.0.1".into(),
        port,
    }
}

fn cluster_store(ports: &[u16], wait: Option<ReplicaWait>) -> Store {
    let topology = RedisTopology::Cluster {
        url: Secret::new(format!("redis://127.0.0.1:{}", ports[0])),
        more_seeds: ports[1..].iter().map(|p| local(*p)).collect(),
    };
    store(topology, wait)
}

fn sentinel_store(setup: &RedisSentinel, wait: Option<ReplicaWait>) -> Store {
    let topology = RedisTopology::Sentinel {
        master_name: setup.master_name.clone(),
        sentinels: setup.sentinels.iter().map(|s| local(s.port)).collect(),
        // The host is never used: the sentinels say where the primary is.
        url: Secret::new("redis://unused.invalid:1"),
        sentinel_password: None,
    };
    store(topology, wait)
}

async fn set(store: &Store, key: &str, value: &str) -> Result<(), StoreError> {
    let (key, value) = (key.to_owned(), value.to_owned());
    store
        .run(UNMEASURED, |mut c| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query_async::<()>(&mut c)
                .await
        })
        .await
}

#[tokio::test]
async fn cluster_scripts_run_on_the_primary_of_their_keys_even_where_never_loaded() {
    let cluster = RedisCluster::start().await;
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let store = cluster_store(&ports, None);
    // One hash tag per primary.
    let keys = cluster.one_key_per_primary().await;
    for port in &ports {
        cmd_on::<()>(*port, &["SCRIPT", "FLUSH"]).await.unwrap();
    }
    let script = Script::new(UNMEASURED, SET_AND_GET);
    for (i, (key, owner)) in keys.iter().enumerate() {
        if i == 2 {
            // The others have the script by now; this primary must load it on NOSCRIPT.
            cmd_on::<()>(*owner, &["SCRIPT", "FLUSH"]).await.unwrap();
        }
        let value = format!("v{i}");
        let got: String = store
            .invoke(&script, &[key], &[value.as_bytes()])
            .await
            .unwrap();
        assert_eq!(got, value);
        let held: Option<String> = cmd_on(*owner, &["GET", key]).await.unwrap();
        assert_eq!(held, Some(value), "{key} on its owner {owner}");
    }
    for port in &ports {
        let keys: i64 = cmd_on(*port, &["DBSIZE"]).await.unwrap();
        assert_eq!(keys, 1, "one key on each primary; {port} has {keys}");
    }
}

#[tokio::test]
async fn a_flushed_script_is_loaded_again_and_binary_arguments_arrive_whole() {
    let redis = super::test_server::Redis::start(&[]).await;
    let store = redis.store();
    let script = Script::new(UNMEASURED, SET_AND_GET);
    let binary: Vec<u8> = (0..=255).collect();
    for round in 0..3 {
        let got: Vec<u8> = store.invoke(&script, &["{t}:k"], &[&binary]).await.unwrap();
        assert_eq!(got, binary, "round {round}");
        // Rounds 1 and 2 start without the script: EVALSHA answers NOSCRIPT.
        redis.cmd::<()>(&["SCRIPT", "FLUSH"]).await;
    }
}

#[tokio::test]
async fn cluster_blocking_connection_ping_eviction_policy_and_replica_wait() {
    let cluster = RedisCluster::start().await;
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let wait = ReplicaWait {
        replicas: 1,
        timeout: Duration::from_millis(100),
    };
    let store = cluster_store(&ports, Some(wait));
    store.ping().await.unwrap();
    let policy = store.eviction_policy().await.unwrap();
    assert_eq!(policy.as_deref(), Some("noeviction"));
    cmd_on::<()>(
        ports[1],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    )
    .await
    .unwrap();
    let policy = store.eviction_policy().await.unwrap();
    assert_eq!(
        policy.as_deref(),
        Some("allkeys-lru"),
        "one primary may evict"
    );

    let mut blocking = store
        .blocking_connection(Duration::from_secs(5))
        .await
        .unwrap();
    let waiter = tokio::spawn(async move {
        redis::cmd("BLPOP")
            .arg("{wake}:list")
            .arg(4)
            .query_async::<Option<(String, String)>>(&mut blocking)
            .await
    });
    // Past the store's 500 ms call deadline: a blocking connection has its own, longer one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The shared connection is not held up by the blocked one.
    store.ping().await.unwrap();
    store
        .run(UNMEASURED, |mut c| async move {
            redis::cmd("LPUSH")
                .arg("{wake}:list")
                .arg("token")
                .query_async::<i64>(&mut c)
                .await
        })
        .await
        .unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(3), waiter).await;
    let woke = woke.expect("BLPOP woken").unwrap().unwrap();
    assert_eq!(woke, Some(("{wake}:list".into(), "token".into())));

    // No replicas in this cluster: WAIT reaches the key's primary and reports none.
    let script = Script::new(UNMEASURED, SET_AND_GET);
    let written: Replicated<String> = store
        .invoke_durable(&script, &["{tag}:durable"], &[b"x"])
        .await
        .unwrap();
    assert_eq!((written.value.as_str(), written.acknowledged), ("x", 0));
    assert!(!written.is_replicated());
}

#[tokio::test]
async fn cluster_store_starts_while_the_cluster_is_down_and_connects_later() {
    let ports = [free_port(), free_port(), free_port()];
    let store = cluster_store(&ports, None);
    assert!(store.ping().await.is_err());
    let _cluster = RedisCluster::start_on(ports).await;
    let started = Instant::now();
    while store.ping().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never connected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set(&store, "{k}:after", "1").await.unwrap();
}

#[tokio::test]
async fn sentinel_failover_is_followed_without_a_new_store() {
    let mut setup = RedisSentinel::start().await;
    let store = sentinel_store(&setup, None);
    set(&store, "before", "1").await.unwrap();
    let replica = setup.replica.port;
    setup.primary.kill();
    let killed = Instant::now();
    while set(&store, "after", "2").await.is_err() {
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "no write within 15 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "sentinel failover: writes again {:?} after kill -9 of the primary",
        killed.elapsed()
    );
    assert_eq!(RedisSentinel::role(replica).await, "master");
    for (key, value) in [("before", "1"), ("after", "2")] {
        let held: Option<String> = cmd_on(replica, &["GET", key]).await.unwrap();
        assert_eq!(
            held.as_deref(),
            Some(value),
            "{key} on the promoted replica"
        );
    }
    let mut blocking = store
        .blocking_connection(Duration::from_secs(2))
        .await
        .unwrap();
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut blocking).await.unwrap();
    assert_eq!(
        role.first(),
        Some(&redis::Value::BulkString(b"master".to_vec()))
    );
}

#[tokio::test]
async fn durable_writes_report_how_many_replicas_acknowledged() {
    let setup = RedisSentinel::start().await;
    let wait = ReplicaWait {
        replicas: 1,
        timeout: Duration::from_millis(300),
    };
    let store = sentinel_store(&setup, Some(wait));
    let script = Script::new(UNMEASURED, SET_AND_GET);
    let written: Replicated<String> = store
        .invoke_durable(&script, &["durable"], &[b"1"])
        .await
        .unwrap();
    assert_eq!(
        (
            written.value.as_str(),
            written.acknowledged,
            written.required
        ),
        ("1", 1, 1)
    );
    assert!(written.is_replicated());

    setup.replica.pause(true);
    let started = Instant::now();
    let waiting = store.invoke_durable::<String>(&script, &["durable"], &[b"2"]);
    tokio::pin!(waiting);
    // While that WAIT blocks its connection, the shared one serves everyone else.
    tokio::select! {
        _ = &mut waiting => panic!("the durable write ended before the ping"),
        pinged = store.ping() => pinged.unwrap(),
    }
    let written = waiting.await;
    setup.replica.pause(false);
    let written = written.unwrap();
    assert_eq!((written.value.as_str(), written.acknowledged), ("2", 0));
    assert!(!written.is_replicated());
    assert!(started.elapsed() >= wait.timeout, "WAIT gave up early");
}

#[tokio::test]
async fn without_a_replica_wait_durable_writes_ask_for_nothing() {
    let redis = super::test_server::Redis::start(&[]).await;
    let script = Script::new(UNMEASURED, SET_AND_GET);
    let written: Replicated<String> = redis
        .store()
        .invoke_durable(&script, &["k"], &[b"v"])
        .await
        .unwrap();
    assert_eq!((written.acknowledged, written.required), (0, 0));
    assert!(written.is_replicated());
}
