//! The request-path operations: ask for a code (limits + enqueue), store a code, verify a code.
//! Each is one script, one round trip.
use std::time::Duration;

use super::{Keys, SCRIPTS, Store, StoreError};
use crate::domain::{CodeMac, EmailAddress, MacKey, OtpCode};

/// Limits and lifetimes from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub code_ttl: Duration,
    pub digits: u32,
    pub max_attempts: u32,
    pub email_cooldown: Duration,
    pub email_per_hour: u64,
    pub verify_failures_per_hour: u64,
}

const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateOutcome {
    Queued,
    Limited { retry_after: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    Verified,
    /// Wrong, expired, used, never issued or burned: deliberately indistinguishable.
    Incorrect,
    /// The address is over its failure limit.
    Locked {
        retry_after: Duration,
    },
}

#[derive(Clone)]
pub struct Codes {
    store: Store,
    keys: Keys,
    mac: MacKey,
    policy: Policy,
}

impl Codes {
    pub fn new(store: Store, keys: Keys, mac: MacKey, policy: Policy) -> Self {
        Self {
            store,
            keys,
            mac,
            policy,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks the per-address limits and, when they allow it, queues `job` in the same step.
    pub async fn request(
        &self,
        address: &EmailAddress,
        job: &str,
    ) -> Result<GenerateOutcome, StoreError> {
        let k = self.keys.limit_keys(&self.mac, address);
        let cooldown = millis(self.policy.email_cooldown).to_string();
        let per_hour = self.policy.email_per_hour.to_string();
        let window = HOUR_MS.to_string();
        let (queued, retry_ms): (i64, u64) = self
            .store
            .invoke(
                &SCRIPTS.generate,
                &[&k.cooldown, &k.hour, &self.keys.pending],
                &[
                    cooldown.as_bytes(),
                    per_hour.as_bytes(),
                    window.as_bytes(),
                    job.as_bytes(),
                ],
            )
            .await?;
        Ok(if queued == 1 {
            GenerateOutcome::Queued
        } else {
            GenerateOutcome::Limited {
                retry_after: Duration::from_millis(retry_ms),
            }
        })
    }

    /// Stores the MAC of a fresh code, replacing any older code and its attempt count.
    pub async fn store(&self, address: &EmailAddress, code: &OtpCode) -> Result<(), StoreError> {
        let k = self.keys.code_keys(&self.mac, address);
        let CodeMac(mac) = self.mac.code_mac(address, code);
        let ttl = millis(self.policy.code_ttl).to_string();
        self.store
            .invoke::<i64>(&SCRIPTS.store_code, &[&k.code], &[&mac, ttl.as_bytes()])
            .await
            .map(drop)
    }

    pub async fn verify(
        &self,
        address: &EmailAddress,
        code: &OtpCode,
    ) -> Result<VerifyOutcome, StoreError> {
        let k = self.keys.code_keys(&self.mac, address);
        let CodeMac(mac) = self.mac.code_mac(address, code);
        let attempts = self.policy.max_attempts.to_string();
        let fails = self.policy.verify_failures_per_hour.to_string();
        let window = HOUR_MS.to_string();
        let (status, retry_ms): (i64, u64) = self
            .store
            .invoke(
                &SCRIPTS.verify,
                &[&k.code, &k.fails],
                &[
                    &mac,
                    attempts.as_bytes(),
                    fails.as_bytes(),
                    window.as_bytes(),
                ],
            )
            .await?;
        Ok(match status {
            1 => VerifyOutcome::Verified,
            2 => VerifyOutcome::Locked {
                retry_after: Duration::from_millis(retry_ms),
            },
            _ => VerifyOutcome::Incorrect,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
