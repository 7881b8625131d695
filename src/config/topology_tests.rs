//! `redis.mode` and its keys: each mode's topology from the environment, and the errors that name
//! a key of another mode or a missing one.
#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error by design.

use figment::Jail;

use super::tests::{KEY, load_err};
use super::*;

#[test]
fn sentinel_and_cluster_modes_parse_into_their_topology() {
    Jail::expect_with(|jail| {
        jail.create_file("url", "rediss://app:data-pw@ignored:6379/2\n")?;
        jail.set_env("OTP_OTP__HMAC_KEY", KEY);
        jail.set_env("OTP_REDIS__MODE", "sentinel");
        jail.set_env("OTP_REDIS__MASTER_NAME", "mymaster");
        jail.set_env("OTP_REDIS__SENTINELS", "[10.0.0.1:26379,sentinel-2:26380]");
        jail.set_env("OTP_REDIS__URL_FILE", "url");
        jail.set_env("OTP_REDIS__SENTINEL_PASSWORD", "s-pw");
        jail.set_env("OTP_REDIS__WAIT_REPLICAS", "1");
        let c = Config::load(None, Profile::Production).unwrap();
        let RedisTopology::Sentinel {
            master_name,
            sentinels,
            url,
            sentinel_password,
        } = &c.redis.topology
        else {
            panic!("{:?}", c.redis.topology);
        };
        assert_eq!(master_name, "mymaster");
        let sentinels: Vec<String> = sentinels.iter().map(ToString::to_string).collect();
        assert_eq!(sentinels, ["10.0.0.1:26379", "sentinel-2:26380"]);
        assert!(url.expose().starts_with("rediss://app:data-pw@"));
        assert_eq!(sentinel_password.as_ref().map(Secret::expose), Some("s-pw"));
        let wait = c.redis.wait.unwrap();
        assert_eq!((wait.replicas, wait.timeout.as_millis()), (1, 100));
        let printed = format!("{}{:?}", c.settings.to_redacted_toml(), c.redis);
        assert!(
            !printed.contains("data-pw") && !printed.contains("s-pw"),
            "{printed}"
        );
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.set_env("OTP_OTP__HMAC_KEY", KEY);
        jail.set_env("OTP_REDIS__MODE", "cluster");
        jail.set_env("OTP_REDIS__URL", "redis://node-1:7000");
        jail.set_env("OTP_REDIS__CLUSTER_NODES", "[node-2:7001, \"[::1]:7002\"]");
        let c = Config::load(None, Profile::Production).unwrap();
        let RedisTopology::Cluster { url, more_seeds } = &c.redis.topology else {
            panic!("{:?}", c.redis.topology);
        };
        assert_eq!(url.expose(), "redis://node-1:7000");
        assert_eq!(more_seeds[0].to_string(), "node-2:7001");
        assert_eq!(
            (more_seeds[1].host.as_str(), more_seeds[1].port),
            ("::1", 7002)
        );
        assert!(c.redis.wait.is_none());
        Ok(())
    });
}

#[test]
fn keys_of_another_redis_mode_or_missing_ones_are_named() {
    for (vars, key, says) in [
        (
            &[("OTP_REDIS__MODE", "sentinel")][..],
            "redis.master_name",
            "required",
        ),
        (
            &[
                ("OTP_REDIS__MODE", "sentinel"),
                ("OTP_REDIS__MASTER_NAME", "m"),
            ],
            "redis.sentinels",
            "required",
        ),
        (
            &[("OTP_REDIS__MASTER_NAME", "m")],
            "redis.master_name",
            "standalone",
        ),
        (
            &[("OTP_REDIS__SENTINELS", "[a:1]")],
            "redis.sentinels",
            "sentinel mode",
        ),
        (
            &[
                ("OTP_REDIS__MODE", "sentinel"),
                ("OTP_REDIS__CLUSTER_NODES", "[a:1]"),
            ],
            "redis.cluster_nodes",
            "cluster mode",
        ),
        (
            &[
                ("OTP_REDIS__MODE", "cluster"),
                ("OTP_REDIS__CLUSTER_NODES", "[redis://a:1]"),
            ],
            "redis.cluster_nodes",
            "host:port",
        ),
        (
            &[
                ("OTP_REDIS__MODE", "cluster"),
                ("OTP_REDIS__URL", "redis://a:1/3"),
            ],
            "redis.url",
            "database 3",
        ),
        (
            &[
                ("OTP_REDIS__MODE", "sentinel"),
                ("OTP_REDIS__MASTER_NAME", "m"),
                ("OTP_REDIS__SENTINELS", "[s:0]"),
            ],
            "redis.sentinels",
            "port",
        ),
        (&[("OTP_REDIS__MODE", "ring")], "OTP_REDIS__MODE", "ring"),
        (
            &[("OTP_REDIS__WAIT_TIMEOUT_MS", "0")],
            "redis.wait_timeout_ms",
            "1 to",
        ),
    ] {
        let err = load_err(|j| {
            j.set_env("OTP_OTP__HMAC_KEY", KEY);
            for (var, value) in vars {
                j.set_env(var, value);
            }
            Ok(())
        });
        assert!(err.contains(key) && err.contains(says), "{vars:?}: {err}");
    }
}
