//! Limit types the configuration hands to the HTTP listeners and the queue.
use std::time::Duration;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time to send a request's head, counted from when the connection is ready for one.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), bytes; at least 8192.
    pub max_header_bytes: usize,
    pub max_connections: usize,
}

/// How much of the dead-letter list is kept: entries beyond `max` or older than `max_age` go.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetters {
    pub max: u64,
    pub max_age: Duration,
}

impl Default for DeadLetters {
    fn default() -> Self {
        Self {
            max: 10_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}
