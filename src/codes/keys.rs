//! Per-address key names. An address's limit keys live in its queue partition, under the
//! partition's hash tag (generate checks limits and enqueues in one script); code keys share one
//! tag per address. Key names carry a keyed hash of the address, never the address.
use std::sync::Arc;

use crate::domain::{EmailAddress, MacKey, concat};
use crate::queue::{Partitions, QueueKeys};

/// Names of the per-address keys under one key prefix.
#[derive(Debug, Clone)]
pub struct AddressKeys {
    prefix: String,
    partitions: Partitions,
    budgets: Arc<[BudgetKeys]>,
}

/// The budget keys of one partition: each partition holds its share of every budget.
#[derive(Debug, Clone)]
pub struct BudgetKeys {
    pub global: String,
    /// What the generate script is given for a domain budget that is off: it never writes it, and
    /// naming a real domain's key would cost an HMAC per request for nothing.
    pub domain_off: String,
}

/// Keys of one address's code and failure counter.
#[derive(Debug, Clone)]
pub struct CodeKeys {
    pub code: String,
    pub fails: String,
}

/// Keys of one address's generate limits, in the address's queue partition.
#[derive(Debug, Clone)]
pub struct LimitKeys {
    pub partition: usize,
    pub cooldown: String,
    pub hour: String,
}

impl AddressKeys {
    pub fn new(prefix: &str, partitions: Partitions) -> Self {
        let budgets = partitions
            .all()
            .map(|(_, q)| BudgetKeys {
                global: format!("{{{}}}:budget:global", q.tag()),
                domain_off: format!("{{{}}}:budget:domain:off", q.tag()),
            })
            .collect();
        Self {
            prefix: prefix.to_owned(),
            partitions,
            budgets,
        }
    }

    pub fn partitions(&self) -> &Partitions {
        &self.partitions
    }

    pub fn queue(&self, partition: usize) -> &QueueKeys {
        self.partitions.keys(partition)
    }

    pub fn budgets(&self, partition: usize) -> &BudgetKeys {
        &self.budgets[partition % self.budgets.len()]
    }

    pub fn code_keys(&self, mac: &MacKey, address: &EmailAddress) -> CodeKeys {
        let tag = mac.address_tag("id", &address.identity());
        CodeKeys {
            code: concat(&[&self.prefix, ":{", &tag, "}:code"]),
            fails: concat(&[&self.prefix, ":{", &tag, "}:fails"]),
        }
    }

    /// Limit keys live under their partition's hash tag because the generate script also
    /// enqueues; the partition comes from the same keyed hash.
    pub fn limit_keys(&self, mac: &MacKey, address: &EmailAddress) -> LimitKeys {
        let tag = mac.address_tag("limit", &address.limit_key());
        let partition = self.partitions.of_tag(&tag);
        let p = self.partitions.keys(partition).tag();
        LimitKeys {
            partition,
            cooldown: concat(&["{", p, "}:limit:", &tag, ":cooldown"]),
            hour: concat(&["{", p, "}:limit:", &tag, ":hour"]),
        }
    }

    /// The address's domain's share of its send budget in `partition`.
    pub fn domain_budget(&self, mac: &MacKey, address: &EmailAddress, partition: usize) -> String {
        let tag = mac.address_tag("domain", address.domain());
        let p = self.partitions.keys(partition).tag();
        concat(&["{", p, "}:budget:domain:", &tag])
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

    fn keys(partitions: u16) -> AddressKeys {
        let n = std::num::NonZeroU16::new(partitions).unwrap();
        AddressKeys::new("otp", Partitions::new("otp", n))
    }

    #[test]
    fn keys_of_one_script_share_a_hash_tag() {
        let keys = keys(1);
        let mac = MacKey::new(b"k");
        let a = EmailAddress::parse("user@example.com").unwrap();
        let code = keys.code_keys(&mac, &a);
        assert_eq!(hash_tag(&code.code), hash_tag(&code.fails));
        let limit = keys.limit_keys(&mac, &a);
        assert_eq!(limit.partition, 0);
        let domain = keys.domain_budget(&mac, &a, 0);
        let queue = keys.queue(0);
        let same_slot = [
            &limit.cooldown,
            &limit.hour,
            &domain,
            &keys.budgets(0).global,
            &keys.budgets(0).domain_off,
            &queue.pending,
            &queue.wake,
            &queue.delayed,
        ];
        for k in same_slot {
            assert_eq!(hash_tag(k), "otp", "{k}");
        }
        assert!(!code.code.contains("user") && !limit.hour.contains("example"));
        assert!(!domain.contains("example") && domain != keys.budgets(0).domain_off);
    }

    #[test]
    fn an_address_has_its_limits_budgets_and_queue_in_one_partition() {
        let keys = keys(16);
        let mac = MacKey::new(b"k");
        let mut used = std::collections::HashSet::new();
        for i in 0..200 {
            let a = EmailAddress::parse(&format!("user{i}@example.com")).unwrap();
            let limit = keys.limit_keys(&mac, &a);
            let p = limit.partition;
            used.insert(p);
            let tag = hash_tag(&limit.cooldown);
            assert_eq!(tag, keys.queue(p).tag());
            for k in [
                &limit.hour,
                &keys.domain_budget(&mac, &a, p),
                &keys.budgets(p).global,
                &keys.queue(p).pending,
                &keys.queue(p).delayed,
            ] {
                assert_eq!(hash_tag(k), tag, "{k}");
            }
        }
        assert_eq!(used.len(), 16);
    }
}
