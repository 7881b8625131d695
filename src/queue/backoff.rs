//! Retry timing as pure functions: capped exponential backoff, bounded by the code's lifetime.
use std::time::Duration;

/// Wait before attempt `attempt + 1`, after `attempt` (≥ 1) failures: `base * 2^(attempt-1)`, at most `cap`.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(cap)
}

/// When a failed delivery is tried again, or why it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPlan {
    At {
        due_ms: u64,
    },
    /// `worker.max_attempts` deliveries failed.
    AttemptsExhausted,
    /// The next attempt would come after the code expires: a mail then would carry a dead code.
    CodeWouldExpire,
}

pub struct RetryPolicy {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// `failed` deliveries so far (≥ 1); `expires_ms` is when the job's code stops verifying.
    pub fn plan(&self, failed: u32, now_ms: u64, expires_ms: u64) -> RetryPlan {
        if failed >= self.max_attempts {
            return RetryPlan::AttemptsExhausted;
        }
        let delay = retry_delay(failed, self.base, self.cap);
        let due_ms = now_ms.saturating_add(crate::clock::millis(delay));
        if due_ms >= expires_ms {
            RetryPlan::CodeWouldExpire
        } else {
            RetryPlan::At { due_ms }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_then_stays_at_the_cap() {
        let got: Vec<u64> = (1..=8)
            .map(|a| retry_delay(a, S(2), S(60)).as_secs())
            .collect();
        assert_eq!(got, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, S(2), S(60)), S(60));
    }

    #[test]
    fn retries_span_the_code_lifetime_not_a_fixed_count_of_doublings() {
        let policy = RetryPolicy {
            base: S(2),
            cap: S(60),
            max_attempts: 20,
        };
        // Walk a job whose relay is down from t=0 with a 600 s code: count attempts until it stops.
        let (mut now, mut failed, expires) = (0u64, 1u32, 600_000u64);
        while let RetryPlan::At { due_ms } = policy.plan(failed, now, expires) {
            now = due_ms;
            failed += 1;
        }
        assert!(now > 540_000, "last attempt at {now} ms");
        assert_eq!(
            policy.plan(failed, now, expires),
            RetryPlan::CodeWouldExpire
        );
        assert_eq!(policy.plan(20, 0, expires), RetryPlan::AttemptsExhausted);
    }
}
