//! In-process per-client-IP limit (governor) and the client-IP rule for trusted proxies.
//! Per-address limits live in Redis (codes::generate.lua) so they hold across API replicas.
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// Above this many tracked IPs, idle entries are dropped so memory stays bounded.
const RETAIN_THRESHOLD: usize = 100_000;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{e:?} is not an IP address or CIDR range"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client is the peer, unless the peer is a trusted proxy: then the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (left entries are client-forged).
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }
}

/// Requests per client IP and minute; `None` when `limits.ip_per_minute` is 0 (the default).
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

    /// `Err(wait)` when this IP is over its quota.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > RETAIN_THRESHOLD {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.1".into()]).unwrap();
        let got = t.client_ip(
            ip("10.1.1.1"),
            Some("6.6.6.6, 198.51.100.7, 192.168.1.1, 10.2.2.2"),
        );
        assert_eq!(got, ip("198.51.100.7"));
        assert_eq!(t.client_ip(ip("10.1.1.1"), None), ip("10.1.1.1"));
        assert_eq!(t.client_ip(ip("10.1.1.1"), Some("garbage")), ip("10.1.1.1"));
    }

    #[test]
    fn rejects_bad_proxy_entries() {
        assert!(TrustedProxies::parse(&["nope".into()]).is_err());
    }

    #[test]
    fn ip_limiter_blocks_after_quota_and_is_off_at_zero() {
        assert!(IpLimiter::new(0).is_none());
        let l = IpLimiter::new(3).unwrap();
        for _ in 0..3 {
            assert!(l.check(ip("1.1.1.1")).is_ok());
        }
        let wait = l.check(ip("1.1.1.1")).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        assert!(l.check(ip("2.2.2.2")).is_ok());
    }
}
