//! In-process per-client limits: requests per minute (governor) and failed verifies per window.
//! Both count per `limit_key` (an IPv4 address or an IPv6 /64). Neither cleans up on the request
//! path: `maintain` runs on a timer (see `startup`), so a flood of distinct addresses costs memory
//! for one window at most, never a scan per request.
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::proxies::limit_key;

/// Requests per client and minute; `None` when the configured rate is 0 (off).
pub struct IpLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl IpLimiter {
    pub fn new(per_minute: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
        })
    }

    /// `Err(wait)` when this client is over its quota.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter
            .check_key(&limit_key(ip))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose quota is full again.
    pub fn maintain(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

const SHARDS: usize = 16;

/// Failed verifies per client and window (a fixed window per client, started by its first
/// failure); `None` when the configured budget is 0 (off).
pub struct FailureLimiter {
    budget: u32,
    window: Duration,
    hasher: RandomState,
    shards: [Mutex<HashMap<IpAddr, (Instant, u32)>>; SHARDS],
}

impl FailureLimiter {
    pub fn new(budget: u32, window: Duration) -> Option<Self> {
        (budget > 0).then(|| Self {
            budget,
            window,
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        })
    }

    fn shard(&self, key: &IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        // Below SHARDS, so the cast keeps the value.
        let i = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        // A map of plain values stays consistent if a holder panicked: keep using it.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` when this client used up its failures for the current window.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = limit_key(ip);
        match self.shard(&key).get(&key) {
            Some(&(start, n)) if n >= self.budget && now < start + self.window => {
                Err(start + self.window - now)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        let key = limit_key(ip);
        let mut shard = self.shard(&key);
        let entry = shard.entry(key).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets clients whose window ended.
    pub fn maintain(&self, now: Instant) {
        for shard in &self.shards {
            let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, (start, _)| now < *start + self.window);
            map.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_limiter_blocks_after_quota_counts_a_64_once_and_is_off_at_zero() {
        assert!(IpLimiter::new(0).is_none());
        let l = IpLimiter::new(3).unwrap();
        for last in ["1", "2", "3"] {
            assert!(l.check(ip(&format!("2001:db8::{last}"))).is_ok());
        }
        let wait = l.check(ip("2001:db8::ffff")).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        assert!(l.check(ip("2001:db8:0:1::1")).is_ok(), "another /64");
        l.maintain();
    }

    #[test]
    fn failures_block_only_past_the_budget_and_only_for_the_window() {
        assert!(FailureLimiter::new(0, Duration::from_secs(60)).is_none());
        let l = FailureLimiter::new(2, Duration::from_secs(60)).unwrap();
        let t0 = Instant::now();
        let client = ip("198.51.100.7");
        for _ in 0..2 {
            assert!(l.check(client, t0).is_ok());
            l.record_failure(client, t0);
        }
        let wait = l.check(client, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            l.check(ip("198.51.100.8"), t0).is_ok(),
            "others are not affected"
        );
        let later = t0 + Duration::from_secs(61);
        assert!(l.check(client, later).is_ok(), "a new window");
        l.maintain(later);
        assert_eq!(l.tracked(), 0, "ended windows are forgotten");
    }
}
