//! Wall-clock time in Unix milliseconds, injected so tests move it instead of sleeping.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// A clock that moves only when its `ManualTime` handle says so.
    Manual(Arc<AtomicU64>),
}

/// The hand that moves a manual clock.
#[derive(Clone, Debug)]
pub struct ManualTime(Arc<AtomicU64>);

impl Clock {
    pub fn manual(start_ms: u64) -> (Self, ManualTime) {
        let t = Arc::new(AtomicU64::new(start_ms));
        (Self::Manual(t.clone()), ManualTime(t))
    }

    pub fn now_ms(&self) -> u64 {
        match self {
            Self::System => system_now_ms(),
            Self::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// `now + d`, saturating.
    pub fn after(&self, d: Duration) -> u64 {
        self.now_ms().saturating_add(millis(d))
    }
}

impl ManualTime {
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(millis(d), Ordering::SeqCst);
    }
}

/// Milliseconds of a duration, saturating (no configured duration comes near u64::MAX ms).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn system_now_ms() -> u64 {
    // A clock before 1970 is a broken host; 0 then makes every job look old, which drops it
    // visibly (counted as expired) instead of keeping it forever.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

/// The proleptic Gregorian date (year, month, day) of a day count since 1970-01-01: Howard
/// Hinnant's `civil_from_days` in unsigned arithmetic (shifting the epoch to 0000-03-01 keeps
/// every value positive), for the timestamps of logs and the status page.
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let (clock, hand) = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        hand.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        assert_eq!(clock.after(Duration::from_secs(1)), 2_250);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::System.now_ms() > 1_577_836_800_000);
    }
}
