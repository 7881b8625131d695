//! For log lines that can come at request rate when the service is already struggling (refusals
//! under a flood, Redis errors in an outage): at most one line per second per kind, carrying the
//! number held back since, so logging never adds load to an overload. Metrics count every case.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct LogThrottle {
    /// The second (since the epoch, plus one so that 0 means "never") of the last line.
    last_second: AtomicU64,
    held_back: AtomicU64,
}

impl LogThrottle {
    pub const fn new() -> Self {
        Self {
            last_second: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be logged at `now_ms`.
    pub fn admit(&self, now_ms: u64) -> Option<u64> {
        let second = now_ms / 1000 + 1;
        let last = self.last_second.load(Relaxed);
        if last != second
            && self
                .last_second
                .compare_exchange(last, second, Relaxed, Relaxed)
                .is_ok()
        {
            Some(self.held_back.swap(0, Relaxed))
        } else {
            self.held_back.fetch_add(1, Relaxed);
            None
        }
    }
}

/// The Redis client library logs each failed reconnect of each of its connections: in an
/// outage, dozens of lines a second per process. One a second is enough to see it; the service's
/// own throttled lines and `email_otp_redis_up` say the rest.
static REDIS_CLIENT_LINES: LibraryThrottle = LibraryThrottle::new();

/// Whether a log event may pass: every one of ours, about one a second of the Redis client's.
pub fn admit_event(target: &str, now_ms: u64) -> bool {
    let from_redis_client = target == "redis" || target.starts_with("redis::");
    !from_redis_client || REDIS_CLIENT_LINES.admit(now_ms)
}

/// One line a second, where a line is asked about twice: the `log` bridge checks a record once
/// before building it and once when it logs it, back to back. So the millisecond of an admitted
/// line admits again (a few more lines of that millisecond can pass too).
pub struct LibraryThrottle {
    /// The millisecond of the last admitted line, plus one (0: never).
    admitted: AtomicU64,
}

impl LibraryThrottle {
    pub const fn new() -> Self {
        Self {
            admitted: AtomicU64::new(0),
        }
    }

    pub fn admit(&self, now_ms: u64) -> bool {
        let last = self.admitted.load(Relaxed);
        if last == now_ms + 1 {
            return true;
        }
        let new_second = last == 0 || (last - 1) / 1000 != now_ms / 1000;
        new_second
            && self
                .admitted
                .compare_exchange(last, now_ms + 1, Relaxed, Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_second_with_the_count_held_back() {
        let t = LogThrottle::default();
        assert_eq!(t.admit(5_000), Some(0));
        assert_eq!(t.admit(5_001), None);
        assert_eq!(t.admit(5_999), None);
        assert_eq!(t.admit(6_000), Some(2));
        assert_eq!(t.admit(9_500), Some(0));
        assert_eq!(
            t.admit(0),
            Some(0),
            "the first second of the epoch is a second too"
        );
    }

    #[test]
    fn a_library_line_passes_both_checks_once_a_second() {
        let t = LibraryThrottle::new();
        // Each record is checked twice in a row, as the log bridge does.
        let passed = (0..50)
            .filter(|i| t.admit(7_000 + i * 10) && t.admit(7_000 + i * 10))
            .count();
        assert_eq!(passed, 1);
        assert!(t.admit(8_000) && t.admit(8_000));
        assert!(!t.admit(8_001));
        assert!(admit_event("email_otp::worker", 8_001));
        assert!(
            admit_event("redisson", 8_001),
            "another crate's name only looks alike"
        );
    }
}
