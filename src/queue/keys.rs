//! The key names of one queue partition. They all share the partition's hash tag, so every queue
//! script touches one Redis Cluster slot.

/// Most wake-up tokens the wake list keeps: enough to wake every idle worker of a large fleet.
pub const WAKE_TOKENS: &str = "64";

#[derive(Debug, Clone)]
pub struct QueueKeys {
    /// The hash tag (without braces) every key of this partition carries.
    tag: String,
    /// Jobs waiting for a worker (list; producers push left, workers take right).
    pub pending: String,
    /// Jobs being worked on (zset: member "<lease id>:<job>", score = lease deadline in ms).
    pub processing: String,
    /// Jobs waiting for a retry (zset: score = due time in ms).
    pub delayed: String,
    /// Jobs that could not be delivered (list, newest first, bounded).
    pub dead: String,
    /// Wake-up tokens for idle workers (list, bounded); losing one costs at most one wait.
    pub wake: String,
    /// Counter that makes every lease unique.
    pub lease_seq: String,
}

impl QueueKeys {
    pub fn for_tag(tag: &str) -> Self {
        let q = format!("{{{tag}}}:queue");
        Self {
            tag: tag.to_owned(),
            pending: format!("{q}:pending"),
            processing: format!("{q}:processing"),
            delayed: format!("{q}:delayed"),
            dead: format!("{q}:dead"),
            wake: format!("{q}:wake"),
            lease_seq: format!("{q}:lease_seq"),
        }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}
