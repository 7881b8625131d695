//! Who the client is: the peer, or behind trusted proxies the right-most `X-Forwarded-For` hop that
//! is not itself a trusted proxy (hops to its left are whatever the client chose to send).
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

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

    /// `forwarded_for`: every `X-Forwarded-For` header line in order (several lines are one list).
    /// A hop that is not an address (garbage, non-ASCII) ends the walk at the last trusted hop.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for line in forwarded_for.rev() {
            for hop in line.rsplit(|b| *b == b',') {
                match parse_hop(hop) {
                    Some(ip) => {
                        client = ip;
                        if !self.contains(ip) {
                            return client;
                        }
                    }
                    None => return client,
                }
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?.trim();
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    // IPv4 with a port; a bare IPv6 address has more than one ':' and parsed above.
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// What limits count per: an IPv4 address, or an IPv6 /64 (one subscriber's usual allocation,
/// so a client cannot step through its own prefix to get a fresh quota per address).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn walk(t: &TrustedProxies, peer: &str, lines: &[&str]) -> IpAddr {
        t.client_ip(ip(peer), lines.iter().map(|l| l.as_bytes()))
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(walk(&t, "203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
    }

    #[test]
    fn every_header_line_is_walked_from_the_right_past_trusted_hops() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "192.168.1.1".into()]).unwrap();
        let got = walk(
            &t,
            "10.1.1.1",
            &["6.6.6.6, 198.51.100.7, 192.168.1.1, 10.2.2.2"],
        );
        assert_eq!(got, ip("198.51.100.7"));
        // A forged first line cannot hide the hop the proxy appended on the last line.
        let got = walk(&t, "10.1.1.1", &["6.6.6.6", "198.51.100.7"]);
        assert_eq!(got, ip("198.51.100.7"));
        let got = walk(&t, "10.1.1.1", &["198.51.100.7", "10.2.2.2"]);
        assert_eq!(got, ip("198.51.100.7"));
        assert_eq!(walk(&t, "10.1.1.1", &[]), ip("10.1.1.1"));
    }

    #[test]
    fn ports_brackets_and_garbage() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        assert_eq!(
            walk(&t, "10.1.1.1", &["198.51.100.7:5555"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            walk(&t, "10.1.1.1", &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(walk(&t, "10.1.1.1", &["2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(walk(&t, "10.1.1.1", &["garbage"]), ip("10.1.1.1"));
        assert_eq!(
            walk(&t, "10.1.1.1", &["1.2.3.4, \u{e9}t\u{e9}, 10.2.2.2"]),
            ip("10.2.2.2")
        );
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb::9")), ip("2001:db8:1:2::"));
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn rejects_bad_proxy_entries() {
        assert!(TrustedProxies::parse(&["nope".into()]).is_err());
    }
}
