//! The store against deployments that demand credentials and TLS in every node: a cluster whose
//! nodes speak TLS only and let in one ACL user, and sentinels with a password of their own in
//! front of a primary and replica that do the same. Only the seed or the sentinels are
//! configured: the credentials and the CA must reach the nodes the store discovers by itself.
use std::time::Duration;

use super::test_server::UNMEASURED;
use super::test_topologies::{ClusterOptions, RedisCluster, RedisSentinel, SentinelOptions, Tls};
use super::{Script, Store, StoreError};
use crate::config::{NodeAddress, RedisConfig, RedisTopology, Secret};

const USER: &str = "otp";
const PASS: &str = "secret";
const SENTINEL_PASS: &str = "sentinel-secret";
const SET_AND_GET: &str = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])";

fn store(topology: RedisTopology, ca: Option<&Tls>) -> Store {
    Store::connect(&RedisConfig {
        topology,
        key_prefix: "otp".into(),
        timeout: Duration::from_millis(500),
        ca_pem: ca.map(|tls| tls.ca_pem.clone().into_bytes()),
        wait: None,
    })
    .unwrap()
}

/// A cluster store given only the first node: the others come from the cluster itself.
fn cluster_store(url: String, ca: Option<&Tls>) -> Store {
    let topology = RedisTopology::Cluster {
        url: Secret::new(url),
        more_seeds: Vec::new(),
    };
    store(topology, ca)
}

fn sentinel_store(
    setup: &RedisSentinel,
    url: String,
    password: Option<&str>,
    ca: Option<&Tls>,
) -> Store {
    let topology = RedisTopology::Sentinel {
        master_name: setup.master_name.clone(),
        sentinels: setup
            .sentinels
            .iter()
            .map(|s| NodeAddress {
                host: "127.0.0.1".into(),
                port: s.port,
            })
            .collect(),
        url: Secret::new(url),
        sentinel_password: password.map(Secret::new),
    };
    store(topology, ca)
}

/// The error of a ping that must fail, well before a hung call would be noticed.
async fn ping_error(store: &Store) -> StoreError {
    let ping = tokio::time::timeout(Duration::from_secs(5), store.ping()).await;
    match ping.expect("a failing ping still answers within 5 s") {
        Ok(()) => panic!("ping succeeded"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn tls_acl_cluster_runs_scripts_on_every_primary_and_refuses_wrong_secrets() {
    let tls = Tls::private_ca();
    let options = ClusterOptions {
        acl: Some((USER, PASS)),
        tls: Some(&tls),
    };
    let cluster = RedisCluster::start_with(options).await;
    let store = cluster_store(cluster.url(), Some(&tls));
    store.ping().await.unwrap();
    // One hash tag per primary.
    let keys = cluster.one_key_per_primary().await;
    let script = Script::new(UNMEASURED, SET_AND_GET);
    for (i, (key, owner)) in keys.iter().enumerate() {
        let value = format!("v{i}");
        let got: String = store
            .invoke(&script, &[key], &[value.as_bytes()])
            .await
            .unwrap();
        assert_eq!(got, value);
        let node = cluster.nodes.iter().find(|n| n.port == *owner).unwrap();
        let held: Option<String> = node.cmd(&["GET", key]).await.unwrap();
        assert_eq!(held, Some(value), "{key} on its owner {owner}");
    }

    let port = cluster.nodes[0].port;
    let cases = [
        (
            "a wrong password",
            format!("rediss://{USER}:wrong@127.0.0.1:{port}"),
            Some(&tls),
        ),
        (
            "no credentials",
            format!("rediss://127.0.0.1:{port}"),
            Some(&tls),
        ),
        ("no CA", cluster.url(), None),
        (
            "plain TCP",
            format!("redis://{USER}:{PASS}@127.0.0.1:{port}"),
            None,
        ),
    ];
    for (what, url, ca) in cases {
        let e = ping_error(&cluster_store(url, ca)).await;
        println!("{what}: {e}");
        // The cluster client keeps why each node refused to itself: it only says that it has
        // no node to send to, or on a busy machine runs out of the 500 ms call deadline first.
        // What matters is that the call fails at once, not after a hang.
        let not_connected =
            |r: &redis::RedisError| r.kind() == redis::ErrorKind::ClusterConnectionNotFound;
        assert!(
            matches!(&e, StoreError::Redis(r) if not_connected(r))
                || matches!(e, StoreError::Timeout(_)),
            "{what}: {e:?}"
        );
    }
}

#[tokio::test]
async fn sentinels_with_a_password_in_front_of_acl_data_nodes() {
    sentinel_with_passwords(None).await;
}

#[tokio::test]
async fn sentinels_with_a_password_in_front_of_acl_data_nodes_all_over_tls() {
    sentinel_with_passwords(Some(&Tls::private_ca())).await;
}

async fn sentinel_with_passwords(tls: Option<&Tls>) {
    let options = SentinelOptions {
        acl: Some((USER, PASS)),
        tls,
        sentinel_password: Some(SENTINEL_PASS),
    };
    let setup = RedisSentinel::start_with(options).await;
    let scheme = if tls.is_some() { "rediss" } else { "redis" };
    // The host is never used: the sentinels say where the primary is.
    let url = |credentials: &str| format!("{scheme}://{credentials}@unused.invalid:1");
    let good = url(&format!("{USER}:{PASS}"));
    let store = sentinel_store(&setup, good.clone(), Some(SENTINEL_PASS), tls);
    let script = Script::new(UNMEASURED, SET_AND_GET);
    let got: String = store.invoke(&script, &["k"], &[b"v"]).await.unwrap();
    assert_eq!(got, "v");
    let held: Option<String> = setup.primary.cmd(&["GET", "k"]).await.unwrap();
    assert_eq!(held.as_deref(), Some("v"), "written on the primary");
    let mut blocking = store
        .blocking_connection(Duration::from_secs(2))
        .await
        .unwrap();
    let whoami: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut blocking)
        .await
        .unwrap();
    assert_eq!(
        whoami, USER,
        "the dedicated connection logs in as the URL's user"
    );

    let wrong_data = url(&format!("{USER}:wrong"));
    let mut cases = vec![
        ("no sentinel password", good.clone(), None, tls, "NOAUTH"),
        (
            "a wrong sentinel password",
            good.clone(),
            Some("wrong"),
            tls,
            "AuthenticationFailed",
        ),
        (
            "a wrong data password",
            wrong_data,
            Some(SENTINEL_PASS),
            tls,
            "AuthenticationFailed",
        ),
    ];
    if tls.is_some() {
        cases.push(("no CA", good, Some(SENTINEL_PASS), None, "certificate"));
    }
    for (what, url, password, ca, expected) in cases {
        let store = sentinel_store(&setup, url, password, ca);
        let e = ping_error(&store).await.to_string();
        println!("{what}: {e}");
        assert!(e.contains(expected), "{what}: {e}");
    }
}
