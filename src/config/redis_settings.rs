//! The `redis` section as given: where Redis is, in which mode, and how long calls may take.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    pub url: Secret,
    pub url_file: Option<PathBuf>,
    pub key_prefix: String,
    /// Upper bound for one Redis command on the request path: past it the API answers 503.
    pub timeout_ms: u64,
    /// PEM file of the CA that signed the Redis server's certificate (`rediss://` with a private
    /// CA); without it the public web roots are trusted.
    pub tls_ca_file: Option<PathBuf>,
    pub mode: RedisMode,
    /// Sentinel mode: the name the sentinels monitor the primary under.
    pub master_name: Option<String>,
    /// Sentinel mode: `host:port` of each sentinel.
    pub sentinels: Vec<String>,
    /// Sentinel mode: the password the sentinels ask for, if any (`requirepass` on the sentinels).
    pub sentinel_password: Option<Secret>,
    pub sentinel_password_file: Option<PathBuf>,
    /// Cluster mode: `host:port` of more seed nodes besides the one in `url`.
    pub cluster_nodes: Vec<String>,
    /// Replicas that must acknowledge a durable write (`WAIT`); 0 turns the wait off.
    pub wait_replicas: u32,
    /// How long a durable write waits for those acknowledgements.
    pub wait_timeout_ms: u64,
}

/// How the service finds the Redis that holds its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisMode {
    /// One server (or a proxy in front of one), at `url`.
    #[default]
    Standalone,
    /// A primary found through Redis Sentinel, followed across failovers.
    Sentinel,
    /// A Redis Cluster, discovered from seed nodes.
    Cluster,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("redis://127.0.0.1:6379"),
            url_file: None,
            key_prefix: "otp".into(),
            timeout_ms: 500,
            tls_ca_file: None,
            mode: RedisMode::Standalone,
            master_name: None,
            sentinels: Vec::new(),
            sentinel_password: None,
            sentinel_password_file: None,
            cluster_nodes: Vec::new(),
            wait_replicas: 0,
            wait_timeout_ms: 100,
        }
    }
}
