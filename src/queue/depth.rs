//! Queue depth by state, per partition and summed, for `/metrics` and `/status` in every mode.
use super::scripts::SCRIPTS;
use super::{Job, Partitions};
use crate::clock::Clock;
use crate::store::{Store, StoreError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    pub pending: i64,
    pub processing: i64,
    pub delayed: i64,
    pub dead: i64,
    pub oldest_pending_age_ms: Option<u64>,
}

impl Depth {
    /// The whole queue: counts add up, the oldest pending job is the oldest of any partition.
    pub fn sum(parts: &[Depth]) -> Depth {
        parts.iter().fold(Depth::default(), |a, d| Depth {
            pending: a.pending + d.pending,
            processing: a.processing + d.processing,
            delayed: a.delayed + d.delayed,
            dead: a.dead + d.dead,
            oldest_pending_age_ms: a.oldest_pending_age_ms.max(d.oldest_pending_age_ms),
        })
    }
}

/// Reads every partition's depth, one script call each, all at once; by partition index.
pub async fn depth(store: &Store, partitions: &Partitions) -> Result<Vec<Depth>, StoreError> {
    let reads = partitions.all().map(|(_, keys)| {
        let k = [
            keys.pending.as_str(),
            keys.processing.as_str(),
            keys.delayed.as_str(),
            keys.dead.as_str(),
        ];
        async move {
            let (pending, processing, delayed, dead, oldest): (i64, i64, i64, i64, Option<String>) =
                store.invoke(&SCRIPTS.depth, &k, &[]).await?;
            let now = Clock::System.now_ms();
            let oldest_pending_age_ms = oldest
                .and_then(|raw| Job::parse(&raw).ok())
                .map(|j| j.age_ms(now));
            Ok(Depth {
                pending,
                processing,
                delayed,
                dead,
                oldest_pending_age_ms,
            })
        }
    });
    futures_util::future::try_join_all(reads).await
}
