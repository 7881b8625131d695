//! Layered configuration: defaults → TOML file → `OTP_<SECTION>__<KEY>` environment variables.
//! Secrets also come from `<key>_file` (`OTP_OTP__HMAC_KEY_FILE`), which is how Kubernetes mounts them.
mod secret;
mod settings;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

pub use secret::Secret;
pub use settings::*;

const MIN_HMAC_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("cannot read the secret file {path} (for {key}): {source}")]
    SecretFile {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "otp.hmac_key is required outside `email-otp dev`: set OTP_OTP__HMAC_KEY_FILE (or OTP_OTP__HMAC_KEY) \
         to at least {MIN_HMAC_KEY_LEN} random characters, e.g. the output of `openssl rand -hex 32`"
    )]
    MissingHmacKey,
    #[error(
        "otp.hmac_key is too short: use at least {MIN_HMAC_KEY_LEN} characters (e.g. `openssl rand -hex 32`)"
    )]
    ShortHmacKey,
    #[error("{key}: {message}")]
    Value { key: &'static str, message: String },
}

/// Which defaults apply below the file and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Production,
    /// `email-otp dev`: outbox mail, pretty logs, loopback listeners, an ephemeral key.
    Dev,
}

impl Settings {
    pub fn load(file: Option<&Path>, profile: Profile) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if profile == Profile::Dev {
            figment = figment
                .merge(Serialized::default("mail.transport", "outbox"))
                .merge(Serialized::default("log.format", "pretty"))
                .merge(Serialized::default("http.listen", "127.0.0.1:8080"))
                .merge(Serialized::default("admin.listen", "127.0.0.1:9090"));
        }
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // OTP_CONFIG names the file; it is not a key of the tree.
        figment = figment.merge(Env::prefixed("OTP_").split("__").ignore(&["config"]));
        let mut settings: Settings = figment.extract().map_err(Box::new)?;
        settings.resolve_secret_files()?;
        if profile == Profile::Dev && settings.otp.hmac_key.is_none() {
            settings.otp.hmac_key = Some(Secret::new(ephemeral_key()));
        }
        settings.validate()?;
        Ok(settings)
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.otp.hmac_key_file {
            self.otp.hmac_key = Some(read_secret("otp.hmac_key_file", path)?);
        }
        if let Some(path) = &self.smtp.password_file {
            self.smtp.password = Some(read_secret("smtp.password_file", path)?);
        }
        if let Some(path) = &self.redis.url_file {
            self.redis.url = read_secret("redis.url_file", path)?;
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let key = self
            .otp
            .hmac_key
            .as_ref()
            .ok_or(ConfigError::MissingHmacKey)?;
        if key.expose().len() < MIN_HMAC_KEY_LEN {
            return Err(ConfigError::ShortHmacKey);
        }
        let checks: [(&'static str, bool, &str); 14] = [
            (
                "otp.ttl_secs",
                (1..=86_400).contains(&self.otp.ttl_secs),
                "must be 1 to 86400",
            ),
            (
                "otp.digits",
                (6..=10).contains(&self.otp.digits),
                "must be 6 to 10",
            ),
            (
                "otp.max_attempts",
                self.otp.max_attempts >= 1,
                "must be at least 1",
            ),
            (
                "limits.email_per_hour",
                self.limits.email_per_hour >= 1,
                "must be at least 1",
            ),
            (
                "limits.verify_failures_per_hour",
                self.limits.verify_failures_per_hour >= 1,
                "must be at least 1",
            ),
            (
                "worker.concurrency",
                (1..=4096).contains(&self.worker.concurrency),
                "must be 1 to 4096",
            ),
            (
                "worker.max_attempts",
                (1..=1000).contains(&self.worker.max_attempts),
                "must be 1 to 1000",
            ),
            (
                "worker.retry_base_ms",
                (1..=3_600_000).contains(&self.worker.retry_base_ms),
                "must be 1 to 3600000",
            ),
            (
                "worker.retry_max_ms",
                self.worker.retry_max_ms >= self.worker.retry_base_ms
                    && self.worker.retry_max_ms <= 3_600_000,
                "must be at least worker.retry_base_ms and at most 3600000",
            ),
            (
                "smtp.timeout_secs",
                (1..=600).contains(&self.smtp.timeout_secs),
                "must be 1 to 600",
            ),
            (
                "redis.timeout_ms",
                (1..=60_000).contains(&self.redis.timeout_ms),
                "must be 1 to 60000",
            ),
            (
                "worker.reap_after_secs",
                self.worker.reap_after_secs > self.worker.heartbeat_secs,
                "must be greater than worker.heartbeat_secs",
            ),
            (
                "smtp.pool_size",
                self.smtp.pool_size >= 1,
                "must be at least 1",
            ),
            (
                "redis.key_prefix",
                is_valid_prefix(&self.redis.key_prefix),
                "must be 1-32 characters of a-z, 0-9, _ or -",
            ),
        ];
        for (key, ok, message) in checks {
            if !ok {
                return Err(ConfigError::Value {
                    key,
                    message: message.into(),
                });
            }
        }
        if self.worker.heartbeat_secs == 0 {
            return Err(ConfigError::Value {
                key: "worker.heartbeat_secs",
                message: "must be at least 1".into(),
            });
        }
        crate::limits::TrustedProxies::parse(&self.http.trusted_proxies).map_err(|message| {
            ConfigError::Value {
                key: "http.trusted_proxies",
                message,
            }
        })?;
        Ok(())
    }

    /// The HMAC key; `load` guarantees it is present.
    pub fn hmac_key(&self) -> &str {
        self.otp
            .hmac_key
            .as_ref()
            .map(Secret::expose)
            .unwrap_or_default()
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

fn is_valid_prefix(p: &str) -> bool {
    (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn read_secret(key: &'static str, path: &Path) -> Result<Secret, ConfigError> {
    let raw = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        key,
        path: path.to_owned(),
        source,
    })?;
    Ok(Secret::new(raw.trim_end_matches(['\r', '\n'])))
}

fn ephemeral_key() -> String {
    let mut key = [0u8; 32];
    rand::fill(&mut key);
    hex::encode(key)
}

#[cfg(test)]
mod tests;
