//! Where rendered mail goes: an SMTP server (lettre, pooled, built once) or `.eml` files.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{MailTransportKind, Settings, SmtpSecurity};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: SMTP 4xx, timeouts, connection failures.
    #[error("transient: {0}")]
    Transient(String),
    /// Will fail again: SMTP 5xx, a refused address, a template error.
    #[error("permanent: {0}")]
    Permanent(String),
}

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl Transport {
    pub fn from_settings(s: &Settings) -> anyhow::Result<Self> {
        match s.mail.transport {
            MailTransportKind::Outbox => {
                std::fs::create_dir_all(&s.mail.outbox_dir).with_context(|| {
                    format!("creating the outbox {}", s.mail.outbox_dir.display())
                })?;
                Ok(Self::Outbox(s.mail.outbox_dir.clone()))
            }
            MailTransportKind::Smtp => Ok(Self::Smtp(smtp(s)?)),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Self::Smtp(t) => t.send(message).await.map(drop).map_err(classify),
            Self::Outbox(dir) => write_eml(dir, &message.formatted()).await,
        }
    }
}

fn smtp(s: &Settings) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let host = s.smtp.host.as_str();
    let tls =
        || TlsParameters::new(host.to_owned()).context("building TLS parameters for smtp.host");
    let tls = match s.smtp.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls => Tls::Required(tls()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(s.smtp.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(s.smtp.timeout_secs)))
        .pool_config(PoolConfig::new().max_size(s.smtp.pool_size));
    if let Some(user) = &s.smtp.username {
        let password = s
            .smtp
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else {
        SendError::Transient(e.to_string())
    }
}

/// Writes to a temporary name and renames, so a reader never sees half a mail.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> Result<(), SendError> {
    let name = format!(
        "{}-{}",
        super::super::queue::now_ms(),
        uuid::Uuid::new_v4().simple()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(format!("{name}.eml"));
    let io = |e: std::io::Error| SendError::Transient(format!("writing {}: {e}", path.display()));
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, &path).await.map_err(io)
}
