//! Every Redis key name in one place. Queue and limit keys share the `{prefix}` hash tag;
//! per-address code keys share one tag per address, so every script touches one cluster slot.
use crate::domain::{EmailAddress, MacKey};

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    /// Jobs waiting for a worker (list; producers push left, workers take right).
    pub pending: String,
    /// Jobs being worked on (zset: member "<lease id>:<job>", score = lease deadline in ms).
    pub processing: String,
    /// Jobs waiting for a retry (zset: score = due time in ms).
    pub delayed: String,
    /// Jobs that could not be delivered (list, newest first, bounded).
    pub dead: String,
    /// Wake-up tokens for idle workers (list, bounded); losing one costs at most one poll interval.
    pub wake: String,
    /// Counter that makes every lease unique.
    pub lease_seq: String,
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

impl Keys {
    pub fn new(prefix: &str) -> Self {
        let q = format!("{{{prefix}}}:queue");
        Self {
            prefix: prefix.to_owned(),
            pending: format!("{q}:pending"),
            processing: format!("{q}:processing"),
            delayed: format!("{q}:delayed"),
            dead: format!("{q}:dead"),
            wake: format!("{q}:wake"),
            lease_seq: format!("{q}:lease_seq"),
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
        let keys = Keys::new("otp");
        let mac = MacKey::new(b"k");
        let a = EmailAddress::parse("user@example.com").unwrap();
        let code = keys.code_keys(&mac, &a);
        assert_eq!(hash_tag(&code.code), hash_tag(&code.fails));
        let limit = keys.limit_keys(&mac, &a);
        for k in [
            &limit.cooldown,
            &limit.hour,
            &keys.pending,
            &keys.processing,
            &keys.delayed,
            &keys.dead,
            &keys.wake,
            &keys.lease_seq,
        ] {
            assert_eq!(hash_tag(k), "otp", "{k}");
        }
        assert!(!code.code.contains("user") && !limit.hour.contains("example"));
    }
}
