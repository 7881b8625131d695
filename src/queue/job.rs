//! What travels through the queue: the address as given and metadata, never a code.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub email: String,
    pub created_ms: u64,
    /// Delivery attempts that failed so far.
    #[serde(default)]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the job was dead-lettered (Unix ms); only on dead-letter entries, whose age limit
    /// reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_ms: Option<u64>,
    /// W3C trace context of the request that queued the job.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub trace: HashMap<String, String>,
}

impl Job {
    pub fn new(email: String, created_ms: u64) -> Self {
        Self {
            id: crate::domain::random_id(),
            email,
            created_ms,
            attempt: 0,
            last_error: None,
            dead_ms: None,
            trace: HashMap::new(),
        }
    }

    #[allow(
        clippy::expect_used,
        reason = "strings, integers and a string map always serialise to JSON"
    )]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a Job serialises")
    }

    pub fn parse(raw: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }

    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.created_ms)
    }

    /// When the job's code stops verifying: a fixed time after the generate, however long
    /// delivery took.
    pub fn expires_ms(&self, code_ttl: std::time::Duration) -> u64 {
        self.created_ms
            .saturating_add(crate::clock::millis(code_ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_missing_optional_fields() {
        let job = Job::new("user@example.com".into(), 1);
        assert_eq!(Job::parse(&job.to_json()).unwrap(), job);
        let old = Job::parse(r#"{"id":"x","email":"a@b.co","created_ms":5}"#).unwrap();
        assert_eq!((old.attempt, old.age_ms(7)), (0, 2));
        assert_eq!(old.last_error, None);
    }

    #[test]
    fn ids_are_unique() {
        assert_ne!(
            Job::new("a@b.co".into(), 1).id,
            Job::new("a@b.co".into(), 1).id
        );
    }
}
