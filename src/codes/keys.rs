//! Per-address key names. Limit keys share the queue's `{prefix}` hash tag (generate checks limits
//! and enqueues in one script); code keys share one tag per address. Key names carry a keyed hash
//! of the address, never the address.
use crate::domain::{EmailAddress, MacKey};

/// Names of the per-address keys under one key prefix.
#[derive(Debug, Clone)]
pub struct AddressKeys {
    prefix: String,
    /// The global send budget, under the queue's hash tag like the limit keys.
    pub global_budget: String,
    /// What the generate script is given for a domain budget that is off: it never writes it, and
    /// naming a real domain's key would cost an HMAC per request for nothing.
    pub domain_budget_off: String,
}

/// Keys of one address's code and failure counter.
#[derive(Debug, Clone)]
pub struct CodeKeys {
    pub code: String,
    pub fails: String,
}

/// Keys of one address's generate limits.
#[derive(Debug, Clone)]
pub struct LimitKeys {
    pub cooldown: String,
    pub hour: String,
}

impl AddressKeys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            global_budget: format!("{{{prefix}}}:budget:global"),
            domain_budget_off: format!("{{{prefix}}}:budget:domain:off"),
        }
    }

    pub fn code_keys(&self, mac: &MacKey, address: &EmailAddress) -> CodeKeys {
        let tag = mac.address_tag("id", &address.identity());
        CodeKeys {
            code: format!("{}:{{{tag}}}:code", self.prefix),
            fails: format!("{}:{{{tag}}}:fails", self.prefix),
        }
    }

    /// Limit keys live under the queue's hash tag because the generate script also enqueues.
    pub fn limit_keys(&self, mac: &MacKey, address: &EmailAddress) -> LimitKeys {
        let tag = mac.address_tag("limit", &address.limit_key());
        LimitKeys {
            cooldown: format!("{{{}}}:limit:{tag}:cooldown", self.prefix),
            hour: format!("{{{}}}:limit:{tag}:hour", self.prefix),
        }
    }

    /// The send budget of the address's domain, under the queue's hash tag too.
    pub fn domain_budget(&self, mac: &MacKey, address: &EmailAddress) -> String {
        let tag = mac.address_tag("domain", address.domain());
        format!("{{{}}}:budget:domain:{tag}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        &key[open + 1..close]
    }

    #[test]
    fn keys_of_one_script_share_a_hash_tag() {
        let keys = AddressKeys::new("otp");
        let queue = crate::queue::QueueKeys::new("otp");
        let mac = MacKey::new(b"k");
        let a = EmailAddress::parse("user@example.com").unwrap();
        let code = keys.code_keys(&mac, &a);
        assert_eq!(hash_tag(&code.code), hash_tag(&code.fails));
        let limit = keys.limit_keys(&mac, &a);
        let domain = keys.domain_budget(&mac, &a);
        let same_slot = [
            &limit.cooldown,
            &limit.hour,
            &domain,
            &keys.global_budget,
            &keys.domain_budget_off,
            &queue.pending,
            &queue.wake,
            &queue.delayed,
        ];
        for k in same_slot {
            assert_eq!(hash_tag(k), "otp", "{k}");
        }
        assert!(!code.code.contains("user") && !limit.hour.contains("example"));
        assert!(!domain.contains("example") && domain != keys.domain_budget_off);
    }
}
