//! `redis.*` validated: the topology the service reaches Redis through. Each mode carries exactly
//! what it needs, so nothing after start-up has to ask whether a required value is there.
use std::fmt;
use std::time::Duration;

use super::checks::{ca_pem, check, invalid, key_prefix, non_empty_line, redis_url};
use super::{ConfigError, RedisMode, RedisSettings, Secret};

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub topology: RedisTopology,
    pub key_prefix: String,
    pub timeout: Duration,
    /// PEM of `redis.tls_ca_file`, checked to hold a certificate; used for every node.
    pub ca_pem: Option<Vec<u8>>,
    /// `None`: durable writes do not wait for replicas (`redis.wait_replicas = 0`).
    pub wait: Option<ReplicaWait>,
}

/// `WAIT <replicas> <timeout>` after a durable write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaWait {
    /// At least 1.
    pub replicas: u32,
    pub timeout: Duration,
}

/// A `host:port` of a sentinel or a cluster seed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone)]
pub enum RedisTopology {
    /// One server at `url`.
    Standalone { url: Secret },
    /// The primary the sentinels know as `master_name`. `url` gives everything but the address
    /// of the data nodes: scheme (TLS), user, password, database.
    Sentinel {
        master_name: String,
        /// Never empty.
        sentinels: Vec<NodeAddress>,
        url: Secret,
        sentinel_password: Option<Secret>,
    },
    /// A cluster reached through the seed `url` (which also gives scheme, user and password for
    /// every node) and `more_seeds`.
    Cluster {
        url: Secret,
        more_seeds: Vec<NodeAddress>,
    },
}

impl RedisTopology {
    /// The URL that carries the credentials and TLS scheme in every mode.
    pub fn url(&self) -> &Secret {
        match self {
            Self::Standalone { url } | Self::Sentinel { url, .. } | Self::Cluster { url, .. } => {
                url
            }
        }
    }
}

impl RedisConfig {
    pub(super) fn from_settings(r: &RedisSettings) -> Result<Self, ConfigError> {
        let url = redis_url(&r.url)?;
        let ca_pem = ca_pem("redis.tls_ca_file", r.tls_ca_file.as_deref())?;
        if ca_pem.is_some() && !url.expose().starts_with("rediss://") {
            return Err(invalid(
                "redis.tls_ca_file",
                "is set, but redis.url is not rediss://",
            ));
        }
        let wait_replicas = check("redis.wait_replicas", r.wait_replicas, 0, 100)?;
        let wait_timeout = check("redis.wait_timeout_ms", r.wait_timeout_ms, 1, 60_000)?;
        Ok(Self {
            topology: topology(r, url)?,
            key_prefix: key_prefix(&r.key_prefix)?,
            timeout: Duration::from_millis(check("redis.timeout_ms", r.timeout_ms, 1, 60_000)?),
            ca_pem,
            wait: (wait_replicas > 0).then(|| ReplicaWait {
                replicas: wait_replicas,
                timeout: Duration::from_millis(wait_timeout),
            }),
        })
    }
}

fn topology(r: &RedisSettings, url: Secret) -> Result<RedisTopology, ConfigError> {
    let only_in = |key: &'static str, set: bool, mode: &str| {
        if set {
            let message = format!(
                "is set, but redis.mode is {}; it is only read in {mode} mode",
                mode_name(r.mode)
            );
            return Err(invalid(key, message));
        }
        Ok(())
    };
    let sentinel_only = |key, set| only_in(key, set, "sentinel");
    if r.mode != RedisMode::Sentinel {
        sentinel_only("redis.master_name", r.master_name.is_some())?;
        sentinel_only("redis.sentinels", !r.sentinels.is_empty())?;
        sentinel_only("redis.sentinel_password", r.sentinel_password.is_some())?;
    }
    if r.mode != RedisMode::Cluster {
        only_in(
            "redis.cluster_nodes",
            !r.cluster_nodes.is_empty(),
            "cluster",
        )?;
    }
    let tcp_url = || {
        let tcp = ["redis://", "rediss://"]
            .iter()
            .any(|s| url.expose().starts_with(s));
        if !tcp {
            let message = format!(
                "must be redis:// or rediss:// in {} mode",
                mode_name(r.mode)
            );
            return Err(invalid("redis.url", message));
        }
        Ok(url.clone())
    };
    Ok(match r.mode {
        RedisMode::Standalone => RedisTopology::Standalone { url },
        RedisMode::Sentinel => {
            let name = r.master_name.as_deref().ok_or_else(|| {
                invalid(
                    "redis.master_name",
                    "is required in sentinel mode: the name the sentinels monitor the primary under",
                )
            })?;
            if r.sentinels.is_empty() {
                return Err(invalid(
                    "redis.sentinels",
                    "is required in sentinel mode: a list of sentinel host:port addresses",
                ));
            }
            RedisTopology::Sentinel {
                master_name: non_empty_line("redis.master_name", name)?,
                sentinels: addresses("redis.sentinels", &r.sentinels)?,
                url: tcp_url()?,
                sentinel_password: r.sentinel_password.clone(),
            }
        }
        RedisMode::Cluster => {
            let url = tcp_url()?;
            // Parsed before: `redis_url` refused a URL the client cannot read.
            let db = redis::IntoConnectionInfo::into_connection_info(url.expose())
                .map(|info| info.redis_settings().db())
                .map_err(|e| invalid("redis.url", e.to_string()))?;
            if db != 0 {
                return Err(invalid(
                    "redis.url",
                    format!("selects database {db}, but a cluster has only database 0"),
                ));
            }
            RedisTopology::Cluster {
                url,
                more_seeds: addresses("redis.cluster_nodes", &r.cluster_nodes)?,
            }
        }
    })
}

fn mode_name(mode: RedisMode) -> &'static str {
    match mode {
        RedisMode::Standalone => "standalone",
        RedisMode::Sentinel => "sentinel",
        RedisMode::Cluster => "cluster",
    }
}

fn addresses(key: &'static str, raw: &[String]) -> Result<Vec<NodeAddress>, ConfigError> {
    raw.iter().map(|a| address(key, a)).collect()
}

/// `host:port` or `[v6]:port`. No URL: scheme and credentials come from `redis.url`, once.
fn address(key: &'static str, raw: &str) -> Result<NodeAddress, ConfigError> {
    let bad = |why: &str| invalid(key, format!("{raw:?} is not a host:port address: {why}"));
    if raw.contains("://") || raw.contains('@') {
        return Err(bad(
            "give host:port only; scheme and credentials come from redis.url",
        ));
    }
    let (host, port) = raw.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("no host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad("the port is not 1-65535"))?;
    Ok(NodeAddress {
        host: host.to_owned(),
        port,
    })
}
