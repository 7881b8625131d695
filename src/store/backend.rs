//! Which Redis deployment a `Store` talks to, and the connections it hands out: the shared one
//! every call uses, and dedicated ones for blocking calls.
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncConnectionConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use super::connection::Connection;
use super::nodes::NodeTemplate;
use super::sentinel::{SentinelFollower, SentinelSetup, suggests_failover};
use super::{StoreError, cluster};
use crate::config::RedisTopology;

/// The longest a dedicated connection takes to connect.
const DEDICATED_CONNECT: Duration = Duration::from_secs(2);

/// Clients sit behind `Arc`: a `Store` is cloned per task and per request, and they are large.
#[derive(Clone)]
pub(super) enum Backend {
    Standalone {
        shared: ConnectionManager,
        client: Arc<redis::Client>,
    },
    Sentinel(SentinelFollower),
    Cluster {
        shared: ClusterConnection,
        client: Arc<ClusterClient>,
    },
}

/// One pipelined connection that reconnects by itself: one retry, then the caller's 503.
pub(super) fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2))
}

impl Backend {
    /// Connects nothing yet: the first call does.
    pub fn standalone(client: redis::Client, timeout: Duration) -> Result<Self, StoreError> {
        let shared =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config(timeout))?;
        Ok(Self::Standalone {
            shared,
            client: Arc::new(client),
        })
    }

    /// Connects nothing yet; sentinel and cluster mode start background tasks on the current
    /// Tokio runtime that connect when they can.
    pub fn from_topology(
        topology: &RedisTopology,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let template = NodeTemplate::new(topology.url().expose(), ca_pem)?;
        match topology {
            RedisTopology::Standalone { .. } => Self::standalone(template.client()?, timeout),
            RedisTopology::Sentinel {
                master_name,
                sentinels,
                sentinel_password,
                ..
            } => Ok(Self::Sentinel(SentinelFollower::start(SentinelSetup {
                master_name: master_name.clone(),
                sentinels: sentinels.clone(),
                sentinel_password: sentinel_password.as_ref().map(|p| p.expose().to_owned()),
                template,
                timeout,
                manager_config: manager_config(timeout),
            })?)),
            RedisTopology::Cluster { more_seeds, .. } => {
                let client = cluster::client(&template, more_seeds, timeout)?;
                tokio::runtime::Handle::try_current().map_err(|e| {
                    StoreError::Setup(format!("cluster mode needs a Tokio runtime: {e}"))
                })?;
                let shared = cluster::lazy_connection(&client, timeout);
                Ok(Self::Cluster {
                    shared,
                    client: Arc::new(client),
                })
            }
        }
    }

    /// The connection every call shares (in sentinel mode: to the current primary).
    pub async fn shared(&self) -> Result<Connection, StoreError> {
        Ok(match self {
            Self::Standalone { shared, .. } => Connection::Managed(shared.clone()),
            Self::Sentinel(follower) => Connection::Managed(follower.primary().await?.shared),
            Self::Cluster { shared, .. } => Connection::Cluster(shared.clone()),
        })
    }

    /// Tells the backend a call failed with `error`: sentinel mode asks the sentinels at once
    /// when a failover could explain it.
    pub fn failed(&self, error: &StoreError) {
        if let Self::Sentinel(follower) = self
            && suggests_failover(error)
        {
            follower.recheck();
        }
    }

    /// A new connection of its own, never the shared one.
    pub async fn dedicated(&self, response_timeout: Duration) -> Result<Connection, StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(DEDICATED_CONNECT))
            .set_response_timeout(Some(response_timeout));
        let single = |client: redis::Client| async move {
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            Ok::<_, StoreError>(Connection::Dedicated(conn))
        };
        match self {
            Self::Standalone { client, .. } => single(client.as_ref().clone()).await,
            Self::Sentinel(follower) => {
                single(follower.primary().await?.client.as_ref().clone()).await
            }
            Self::Cluster { client, .. } => {
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(DEDICATED_CONNECT)
                    .set_response_timeout(response_timeout);
                let conn = client.get_async_connection_with_config(config).await?;
                Ok(Connection::Cluster(conn))
            }
        }
    }
}
