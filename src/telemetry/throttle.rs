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
}
