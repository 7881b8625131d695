//! A lease: one claim of one job by one worker, unique even when the same job is claimed again.
use std::fmt;

/// `"<lease id>:<job>"`, exactly as the processing zset of its partition holds it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    member: String,
    job_at: usize,
    partition: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("a processing entry without a lease id")]
pub struct MalformedLease;

impl Lease {
    /// A lease of the first partition.
    pub fn from_member(member: String) -> Result<Self, MalformedLease> {
        Self::in_partition(member, 0)
    }

    pub fn in_partition(member: String, partition: usize) -> Result<Self, MalformedLease> {
        let colon = member.find(':').ok_or(MalformedLease)?;
        Ok(Self {
            job_at: colon + 1,
            member,
            partition,
        })
    }

    pub fn partition(&self) -> usize {
        self.partition
    }

    pub fn member(&self) -> &str {
        &self.member
    }

    /// The job as it was queued.
    pub fn job(&self) -> &str {
        &self.member[self.job_at..]
    }
}

/// The job (with its address) stays out of logs.
impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Lease({}/{})",
            self.partition,
            &self.member[..self.job_at - 1]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_first_colon_only() {
        let l = Lease::from_member(r#"17:{"email":"a:b@c.d"}"#.into()).unwrap();
        assert_eq!(l.job(), r#"{"email":"a:b@c.d"}"#);
        assert_eq!(format!("{l:?}"), "Lease(0/17)");
        assert!(Lease::from_member("no id".into()).is_err());
    }
}
