//! Limit types the configuration hands to the HTTP listeners and the queue.
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use super::checks::check;
use super::{ConfigError, LimitSettings};

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time to send a request's head, counted from when the connection is ready for one.
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), bytes; at least 8192.
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// Time a write may stay blocked because the client takes no data; then the connection ends.
    pub write_timeout: Duration,
}

/// What the API port takes of a request's body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Larger bodies get 413, whatever `Content-Length` claims.
    pub max_bytes: usize,
    /// Time to send the whole body, counted from when its head was read.
    pub read_timeout: Duration,
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

/// Redis-wide limits on what generate accepts, so no flood outruns the relay or spends the
/// sender's reputation; `None` turns one off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendBudgets {
    /// Mails per minute over all addresses.
    pub per_minute: Option<NonZeroU32>,
    /// Mails per minute to one recipient domain.
    pub per_domain_per_minute: Option<NonZeroU32>,
    /// Jobs waiting (queued or retrying) past which generate answers 503.
    pub queue_max_depth: Option<NonZeroU64>,
}

impl SendBudgets {
    pub(super) fn from_settings(s: &LimitSettings) -> Result<Self, ConfigError> {
        // A budget's interval is 60 s / n in µs: up to a million a minute keeps it ≥ 60 µs.
        let budget = |key, n| check(key, n, 0, 1_000_000).map(NonZeroU32::new);
        Ok(Self {
            per_minute: budget("limits.mails_per_minute", s.mails_per_minute)?,
            per_domain_per_minute: budget(
                "limits.domain_mails_per_minute",
                s.domain_mails_per_minute,
            )?,
            queue_max_depth: NonZeroU64::new(check(
                "limits.queue_max_depth",
                s.queue_max_depth,
                0,
                100_000_000,
            )?),
        })
    }
}
