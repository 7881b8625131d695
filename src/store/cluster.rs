//! Cluster mode: the client (seeds, TLS, credentials, timeouts) and the commands that must name
//! their node themselves, because routing by key does not say where they belong.
use std::collections::HashMap;
use std::time::Duration;

use redis::FromRedisValue;
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};

use super::StoreError;
use super::nodes::NodeTemplate;
use crate::config::NodeAddress;

/// Every seed gets the URL's scheme and credentials; the client learns the rest of the cluster
/// from whichever seed answers.
pub(super) fn client(
    template: &NodeTemplate,
    more_seeds: &[NodeAddress],
    timeout: Duration,
) -> Result<ClusterClient, StoreError> {
    let seeds = std::iter::once(template.info().clone())
        .chain(more_seeds.iter().map(|a| template.info_at(&a.host, a.port)));
    // No overall timeout at the client: it would default to `timeout` for every connection,
    // blocking ones too (a 1 s BLPOP would always fail). Each call has the store's own deadline,
    // and a blocking connection sets its per-request timeout.
    let mut builder = ClusterClientBuilder::new(seeds)
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .overall_response_timeout(None);
    if let Some(certs) = template.certificates() {
        builder = builder.certs(certs);
    }
    Ok(builder.build()?)
}

/// Connects in the background: the process starts while the cluster is down, and the first
/// calls fail until it answers.
pub(super) fn lazy_connection(
    client: &ClusterClient,
    response_timeout: Duration,
) -> ClusterConnection {
    let config = ClusterConfig::new()
        .set_connection_timeout(response_timeout.min(Duration::from_secs(2)))
        .set_response_timeout(response_timeout);
    client.get_pending_async_connection_with_config(config)
}

/// `INFO <section>` of every primary, as (node address, reply).
pub(super) async fn info_of_every_primary(
    conn: &mut ClusterConnection,
    section: &str,
) -> redis::RedisResult<Vec<(String, String)>> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg(section);
    let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
    let reply = conn.route_command(cmd, routing).await?;
    // Without a response policy the client answers a map of node address to reply.
    let by_node: HashMap<String, String> = FromRedisValue::from_redis_value(reply)?;
    let mut by_node: Vec<_> = by_node.into_iter().collect();
    by_node.sort();
    Ok(by_node)
}

/// A pipeline on the primary that holds `key`'s slot, in one write: a durable write's script and
/// its `WAIT` (replication is per primary, so only that primary can say whether its replicas have
/// the write, and only for writes made on the same connection).
pub(super) async fn pipeline_on_primary_of(
    conn: &mut ClusterConnection,
    key: &str,
    pipe: redis::Pipeline,
    count: usize,
) -> redis::RedisResult<Vec<redis::Value>> {
    let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
    conn.route_pipeline(pipe, 0, count, route).await
}

/// `WAIT` takes whole milliseconds; 0 would mean "forever".
pub(super) fn timeout_millis(timeout: Duration) -> u64 {
    (timeout.as_millis() as u64).max(1)
}
