//! Redis Cluster and Sentinel deployments for the binary's tests: the helpers the store's own
//! tests use (src/store/test_topologies.rs), each with `env()`, the `OTP_REDIS__*` variables the
//! binary needs to run against it.
#[path = "../../src/store/test_topologies/mod.rs"]
mod topologies;

#[allow(unused_imports)] // The end-to-end cluster and sentinel tests use these.
pub use topologies::{
    Access, ClusterOptions, RedisCluster, RedisSentinel, SentinelOptions, Server, Tls, cmd_on,
    wait_until,
};
