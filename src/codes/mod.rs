//! The life of a code: ask for one (limits + enqueue), activate a mailed one, verify one. Each is
//! one script, one round trip; the scripts' headers in `lua/` name their KEYS, ARGV and returns.
mod budgets;
mod keys;
mod scripts;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use budgets::{BURST_TOLERANCE_US, Budget, QUEUE_FULL_RETRY};
pub use keys::{AddressKeys, BudgetKeys, CodeKeys, LimitKeys};
use scripts::SCRIPTS;

use crate::clock::millis;
use crate::config::SendBudgets;
use crate::domain::{CodeMac, EmailAddress, MacKey, OtpCode};
use crate::queue::{Job, Partitions, WAKE_TOKENS};
use crate::store::{Store, StoreError};

/// Limits and lifetimes from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub code_ttl: Duration,
    pub digits: u32,
    pub max_attempts: u32,
    pub email_cooldown: Duration,
    pub email_per_hour: u64,
    pub verify_failures_per_hour: u64,
    pub send: SendBudgets,
}

#[cfg(test)]
impl Policy {
    /// What the tests start from: 10-minute codes of 6 digits, 5 attempts, a 60 s cooldown,
    /// 5 codes an hour, 100 failures an hour.
    pub fn for_tests(send: SendBudgets) -> Self {
        Self {
            code_ttl: Duration::from_secs(600),
            digits: 6,
            max_attempts: 5,
            email_cooldown: Duration::from_secs(60),
            email_per_hour: 5,
            verify_failures_per_hour: 100,
            send,
        }
    }
}

const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateOutcome {
    Queued,
    /// The address's cooldown or hourly cap.
    Limited {
        retry_after: Duration,
    },
    /// More jobs wait than `limits.queue_max_depth`.
    QueueFull {
        retry_after: Duration,
    },
    /// A send budget is spent until `retry_after`.
    OverBudget {
        budget: Budget,
        retry_after: Duration,
    },
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
    /// The code was right and is now consumed, but fewer replicas than `redis.wait_replicas`
    /// confirmed it: a failover could bring it back, so this is not a success.
    Unconfirmed,
}

/// What activating a mailed code did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The code is now the address's valid code.
    Activated,
    /// This job's code was activated before (a redelivery): left as it was.
    AlreadyActive,
    /// A newer generate's code is active: this older one never becomes valid.
    Superseded,
}

#[derive(Clone)]
pub struct Codes {
    store: Store,
    keys: AddressKeys,
    mac: MacKey,
    policy: Policy,
    /// The generate script's budget and cap arguments: each partition's share.
    budget_args: [String; 3],
}

impl Codes {
    pub fn new(
        store: Store,
        prefix: &str,
        partitions: Partitions,
        mac: MacKey,
        policy: Policy,
    ) -> Self {
        let budget_args = budgets::script_args(&policy.send, partitions.count());
        Self {
            store,
            keys: AddressKeys::new(prefix, partitions),
            mac,
            policy,
            budget_args,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks the per-address limits, the queue partition's depth and its share of the send
    /// budgets and, when they all allow it, queues `job` in the address's partition in the same
    /// step. The job's creation time is the budgets' "now".
    pub async fn request(
        &self,
        address: &EmailAddress,
        job: &Job,
    ) -> Result<GenerateOutcome, StoreError> {
        let payload = job.to_json();
        let k = self.keys.limit_keys(&self.mac, address);
        let (queue, budget) = (self.keys.queue(k.partition), self.keys.budgets(k.partition));
        let domain_budget = match self.policy.send.per_domain_per_minute {
            Some(_) => self.keys.domain_budget(&self.mac, address, k.partition),
            None => budget.domain_off.clone(),
        };
        let cooldown = millis(self.policy.email_cooldown).to_string();
        let per_hour = self.policy.email_per_hour.to_string();
        let window = HOUR_MS.to_string();
        let [global, domain, max_depth] = &self.budget_args;
        let now_us = job.created_ms.saturating_mul(1000).to_string();
        let tolerance = BURST_TOLERANCE_US.to_string();
        let full_retry = millis(QUEUE_FULL_RETRY).to_string();
        let (status, retry_ms): (i64, u64) = self
            .store
            .invoke(
                &SCRIPTS.generate,
                &[
                    &k.cooldown,
                    &k.hour,
                    &queue.pending,
                    &queue.wake,
                    &queue.delayed,
                    &budget.global,
                    &domain_budget,
                ],
                &[
                    cooldown.as_bytes(),
                    per_hour.as_bytes(),
                    window.as_bytes(),
                    payload.as_bytes(),
                    WAKE_TOKENS.as_bytes(),
                    max_depth.as_bytes(),
                    now_us.as_bytes(),
                    global.as_bytes(),
                    domain.as_bytes(),
                    tolerance.as_bytes(),
                    full_retry.as_bytes(),
                ],
            )
            .await?;
        let retry_after = Duration::from_millis(retry_ms);
        match status {
            1 => Ok(GenerateOutcome::Queued),
            0 => Ok(GenerateOutcome::Limited { retry_after }),
            2 => Ok(GenerateOutcome::QueueFull { retry_after }),
            3 => Ok(GenerateOutcome::OverBudget {
                budget: Budget::Global,
                retry_after,
            }),
            4 => Ok(GenerateOutcome::OverBudget {
                budget: Budget::Domain,
                retry_after,
            }),
            other => Err(StoreError::Protocol(format!("generate returned {other}"))),
        }
    }

    /// The code a job mails: derived from the job with the server's key, so every delivery
    /// attempt of one generate carries the same code and nothing secret is stored anywhere.
    pub fn code_for_job(&self, job_id: &str) -> OtpCode {
        self.mac.job_code(job_id, self.policy.digits)
    }

    /// Makes a job's code (`code_for_job`, as mailed) the address's valid code, once the relay
    /// accepted its mail.
    /// `lifetime_left` runs to the code's fixed expiry (the generate time plus the code TTL).
    pub async fn activate(
        &self,
        address: &EmailAddress,
        job_id: &str,
        job_created_ms: u64,
        code: &OtpCode,
        lifetime_left: Duration,
    ) -> Result<Activation, StoreError> {
        let k = self.keys.code_keys(&self.mac, address);
        let CodeMac(mac) = self.mac.code_mac(address, code);
        let created = job_created_ms.to_string();
        let ttl = millis(lifetime_left).max(1).to_string();
        let status: i64 = self
            .store
            .invoke(
                &SCRIPTS.activate,
                &[&k.code],
                &[job_id.as_bytes(), created.as_bytes(), &mac, ttl.as_bytes()],
            )
            .await?;
        match status {
            1 => Ok(Activation::Activated),
            0 => Ok(Activation::AlreadyActive),
            -1 => Ok(Activation::Superseded),
            other => Err(StoreError::Protocol(format!("activate returned {other}"))),
        }
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
        // Durable: a consumed code or a counted failure must survive a failover before it is
        // answered (when `redis.wait_replicas` asks for that).
        let replicated = self
            .store
            .invoke_durable::<(i64, u64)>(
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
        let (status, retry_ms) = replicated.value;
        match status {
            1 if !replicated.is_replicated() => Ok(VerifyOutcome::Unconfirmed),
            1 => Ok(VerifyOutcome::Verified),
            0 => Ok(VerifyOutcome::Incorrect),
            2 => Ok(VerifyOutcome::Locked {
                retry_after: Duration::from_millis(retry_ms),
            }),
            other => Err(StoreError::Protocol(format!("verify returned {other}"))),
        }
    }
}
