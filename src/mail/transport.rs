//! Where rendered mail goes: an SMTP server (lettre, pooled, built once) or `.eml` files.
use std::path::PathBuf;

use anyhow::Context;
use lettre::Message;

use super::smtp_pool::SmtpPool;
use crate::config::{MailConfig, MailTransport, SmtpConfig};
use crate::outcome::{SmtpError, SmtpReply};

/// What to do about a failed send (the variant) and what the relay answered (the `SmtpReply`,
/// a bounded class for `email_otp_smtp_replies_total`), with the error text for logs and the
/// dead-letter record.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: SMTP 4xx, timeouts, connection failures, all before the relay
    /// could have taken the mail.
    #[error("transient: {1}")]
    Transient(SmtpReply, String),
    /// The whole mail was sent but no reply to it came (a timeout or a dropped connection after
    /// the final dot): the relay may have taken it. Retried after a backoff, never at once, so
    /// a duplicate is possible but not routine.
    #[error("unconfirmed: {1}")]
    Unconfirmed(SmtpReply, String),
    /// Will fail again: SMTP 5xx, a refused address, a template error.
    #[error("permanent: {1}")]
    Permanent(SmtpReply, String),
}

pub enum Transport {
    Smtp(SmtpPool),
    Outbox(PathBuf),
}

impl SendError {
    pub fn class(&self) -> SmtpError {
        match self {
            Self::Transient(..) => SmtpError::Transient,
            Self::Unconfirmed(..) => SmtpError::Unconfirmed,
            Self::Permanent(..) => SmtpError::Permanent,
        }
    }

    /// How the relay answered: a 4xx or 5xx reply, no reply in time, no connection, or a refusal
    /// here before the relay was asked.
    pub fn reply(&self) -> SmtpReply {
        match self {
            Self::Transient(r, _) | Self::Unconfirmed(r, _) | Self::Permanent(r, _) => *r,
        }
    }

    /// The error text, without the class.
    /// The error text for logs and dead letters, with any address in it (relays quote the
    /// recipient in their replies) masked.
    pub fn into_message(self) -> String {
        match self {
            Self::Transient(_, m) | Self::Unconfirmed(_, m) | Self::Permanent(_, m) => {
                crate::domain::mask_addresses(&m)
            }
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
        crate::domain::random_id()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    let io = |e: std::io::Error| {
        SendError::Transient(SmtpReply::Local, format!("writing {}: {e}", path.display()))
    };
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, &path).await.map_err(io)
}
