//! Where rendered mail goes: an SMTP server (lettre, pooled, built once) or `.eml` files.
use std::path::PathBuf;

use anyhow::Context;
use lettre::Message;

use super::smtp_pool::SmtpPool;
use crate::config::{MailConfig, MailTransport, SmtpConfig};
use crate::outcome::SmtpError;

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: SMTP 4xx, timeouts, connection failures, all before the relay
    /// could have taken the mail.
    #[error("transient: {0}")]
    Transient(String),
    /// The whole mail was sent but no reply to it came (a timeout or a dropped connection after
    /// the final dot): the relay may have taken it. Retried after a backoff, never at once, so
    /// a duplicate is possible but not routine.
    #[error("unconfirmed: {0}")]
    Unconfirmed(String),
    /// Will fail again: SMTP 5xx, a refused address, a template error.
    #[error("permanent: {0}")]
    Permanent(String),
}

pub enum Transport {
    Smtp(SmtpPool),
    Outbox(PathBuf),
}

impl SendError {
    pub fn class(&self) -> SmtpError {
        match self {
            Self::Transient(_) => SmtpError::Transient,
            Self::Unconfirmed(_) => SmtpError::Unconfirmed,
            Self::Permanent(_) => SmtpError::Permanent,
        }
    }
}

impl Transport {
    pub fn new(mail: &MailConfig, smtp: &SmtpConfig) -> anyhow::Result<Self> {
        match &mail.transport {
            MailTransport::Outbox(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the outbox {}", dir.display()))?;
                Ok(Self::Outbox(dir.clone()))
            }
            MailTransport::Smtp => Ok(Self::Smtp(SmtpPool::new(smtp)?)),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp(pool) => pool.send(message.envelope(), &message.formatted()).await,
            Self::Outbox(dir) => write_eml(dir, &message.formatted()).await,
        }
    }
}

/// Writes to a temporary name and renames, so a reader never sees half a mail.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> Result<(), SendError> {
    let name = format!(
        "{}-{}",
        crate::clock::Clock::System.now_ms(),
        uuid::Uuid::new_v4().simple()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    let io = |e: std::io::Error| SendError::Transient(format!("writing {}: {e}", path.display()));
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, &path).await.map_err(io)
}
