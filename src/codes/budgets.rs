//! The send budgets as the generate script takes them: a GCRA interval per budget and one burst
//! tolerance, in microseconds.
use std::num::NonZeroU32;
use std::time::Duration;

use crate::config::SendBudgets;

const MINUTE_US: u64 = 60_000_000;

/// How far ahead of the sustained rate a budget may run: a tenth of a minute, so a quiet budget
/// lets a burst of a tenth of its minute through at once and no 60 s ever sees more than
/// 1.1 × the budget (plus one mail).
pub const BURST_TOLERANCE_US: u64 = MINUTE_US / 10;

/// What a client is told to wait when the queue is full: long enough for workers to make room,
/// short enough that a transient spike costs a user little.
pub const QUEUE_FULL_RETRY: Duration = Duration::from_secs(5);

/// Which send budget refused a generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Global,
    Domain,
}

/// The script arguments of the budgets: (global interval, domain interval, max depth), with 0
/// for each one that is off. With the queue in `partitions` partitions each holds its share: the
/// intervals grow by the count and the depth cap is divided by it (rounded up, at least 1).
pub fn script_args(b: &SendBudgets, partitions: usize) -> [String; 3] {
    let n = partitions.max(1) as u64;
    [
        (interval_us(b.per_minute) * n).to_string(),
        (interval_us(b.per_domain_per_minute) * n).to_string(),
        b.queue_max_depth
            .map_or(0, |d| d.get().div_ceil(n))
            .to_string(),
    ]
}

/// µs between mails at `per_minute`; 0 (off) when unset. The config caps the rate at a
/// million a minute, so the interval is at least 60 µs and never 0 for a budget that is on.
fn interval_us(per_minute: Option<NonZeroU32>) -> u64 {
    per_minute.map_or(0, |n| MINUTE_US / u64::from(n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_spread_a_minute_and_off_is_zero() {
        let b = SendBudgets {
            per_minute: NonZeroU32::new(600),
            per_domain_per_minute: None,
            queue_max_depth: std::num::NonZeroU64::new(7),
        };
        assert_eq!(script_args(&b, 1), ["100000", "0", "7"]);
        let fastest = NonZeroU32::new(1_000_000);
        assert_eq!(interval_us(fastest), 60);
        assert_eq!(script_args(&SendBudgets::default(), 1), ["0", "0", "0"]);
    }

    #[test]
    fn each_partition_holds_its_share() {
        let b = SendBudgets {
            per_minute: NonZeroU32::new(600),
            per_domain_per_minute: NonZeroU32::new(60),
            queue_max_depth: std::num::NonZeroU64::new(50_000),
        };
        assert_eq!(script_args(&b, 16), ["1600000", "16000000", "3125"]);
        let tiny = SendBudgets {
            queue_max_depth: std::num::NonZeroU64::new(3),
            ..b
        };
        assert_eq!(script_args(&tiny, 16)[2], "1");
    }
}
