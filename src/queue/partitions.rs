//! The queue's partitions. Each has its own hash tag, so on a Redis Cluster each lives on one
//! slot and the partitions together spread over every shard. Partition 0's tag is the key prefix
//! itself (the single queue's tag, so growing from one partition keeps the queued jobs); the
//! others' tags are picked so their slots sit evenly around the slot ring, which puts the same
//! share of partitions on each shard of any cluster whose shards own equal slot ranges.
use std::num::NonZeroU16;
use std::sync::Arc;

use super::QueueKeys;

/// Redis Cluster's slot count.
const SLOTS: u32 = 16_384;

#[derive(Debug, Clone)]
pub struct Partitions {
    /// The keys of each partition, by index.
    keys: Arc<[QueueKeys]>,
}

impl Partitions {
    pub fn new(prefix: &str, count: NonZeroU16) -> Self {
        let n = u32::from(count.get());
        let first = slot(prefix);
        // At least one slot wide, so the search below always ends (past 16,384 partitions some
        // share a slot; the configuration allows far fewer).
        let width = (SLOTS / n).max(1);
        let keys = (0..n)
            .map(|i| {
                if i == 0 {
                    return QueueKeys::for_tag(prefix);
                }
                let start = (first + i * width) % SLOTS;
                QueueKeys::for_tag(&tag_in(prefix, i, start, width))
            })
            .collect();
        Self { keys }
    }

    /// A single partition: the queue as it was before partitions.
    pub fn single(prefix: &str) -> Self {
        Self::new(prefix, NonZeroU16::MIN)
    }

    pub fn count(&self) -> usize {
        self.keys.len()
    }

    pub fn keys(&self, partition: usize) -> &QueueKeys {
        &self.keys[partition % self.keys.len()]
    }

    pub fn all(&self) -> impl Iterator<Item = (usize, &QueueKeys)> {
        self.keys.iter().enumerate()
    }

    /// The partition of a keyed-hash tag (as `MacKey::address_tag` makes): FNV-1a of its
    /// text, so any tag maps to one partition and keyed-hash tags spread evenly.
    pub fn of_tag(&self, tag: &str) -> usize {
        let h = tag.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        // The remainder is below the partition count, a usize.
        (h % self.keys.len() as u64) as usize
    }
}

/// The first tag `<prefix>:<i>:<k>` (k = 0, 1, …) whose slot is in `[start, start + width)`.
/// CRC16 spreads short strings evenly, so about SLOTS / width tries find one.
fn tag_in(prefix: &str, i: u32, start: u32, width: u32) -> String {
    let mut k = 0u64;
    loop {
        let tag = format!("{prefix}:{i}:{k}");
        if (slot(&tag) + SLOTS - start) % SLOTS < width {
            return tag;
        }
        k += 1;
    }
}

/// The Redis Cluster slot of a hash tag: CRC16 (XMODEM) mod 16384.
pub fn slot(tag: &str) -> u32 {
    let mut crc: u16 = 0;
    for &b in tag.as_bytes() {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    u32::from(crc) % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis_cluster() {
        // CLUSTER KEYSLOT answers: the reference vector of Redis's cluster spec, and "otp".
        assert_eq!(slot("123456789"), 12739);
        assert_eq!(slot("otp"), 3408);
    }

    #[test]
    fn partitions_spread_evenly_over_the_slot_ring() {
        let p = Partitions::new("otp", NonZeroU16::new(16).unwrap());
        assert_eq!(p.count(), 16);
        assert_eq!(p.keys(0).pending, "{otp}:queue:pending");
        let mut slots: Vec<u32> = p.all().map(|(_, k)| slot(k.tag())).collect();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 16, "{slots:?}");
        // Three shards with equal ranges, as `redis-cli --cluster create` makes them.
        let mut per_shard = [0; 3];
        for s in slots {
            per_shard[(s * 3 / SLOTS) as usize] += 1;
        }
        assert!(
            per_shard.iter().all(|&n| (5..=6).contains(&n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn a_tag_always_maps_to_the_same_partition() {
        let p = Partitions::new("otp", NonZeroU16::new(7).unwrap());
        let tag = "ffffffffffffffff0123";
        assert_eq!(p.of_tag(tag), p.of_tag(tag));
        assert_eq!(Partitions::single("otp").of_tag(tag), 0);
        let mut per_partition = [0; 7];
        for i in 0u64..7000 {
            per_partition[p.of_tag(&format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))] +=
                1;
        }
        assert!(
            per_partition.iter().all(|&n| (800..1200).contains(&n)),
            "{per_partition:?}"
        );
    }
}
