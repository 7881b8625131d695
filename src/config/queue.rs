//! The `queue` section: how many partitions the queue has. Its own file so the Redis settings
//! and the queue's shape change apart.
use std::num::NonZeroU16;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::checks::check;

/// The most partitions a queue may have: each idle worker keeps one blocking connection per
/// partition, and 16,384 slots spaced by fewer than 16 buy nothing more.
pub const MAX_PARTITIONS: u16 = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// Partitions of the queue, each on its own Redis Cluster slot (1 for a single Redis).
    pub partitions: u16,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self { partitions: 1 }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    pub partitions: NonZeroU16,
}

impl QueueConfig {
    pub(super) fn from_settings(s: &QueueSettings) -> Result<Self, ConfigError> {
        let n = check("queue.partitions", s.partitions, 1, MAX_PARTITIONS)?;
        let partitions = NonZeroU16::new(n).ok_or_else(|| ConfigError::Value {
            key: "queue.partitions",
            message: "must be at least 1".into(),
        })?;
        Ok(Self { partitions })
    }
}
