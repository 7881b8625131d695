//! Layered configuration: defaults → TOML file → `OTP_<SECTION>__<KEY>` environment variables.
//! Secrets also come from `<key>_file` (`OTP_OTP__HMAC_KEY_FILE`), which is how Kubernetes mounts them.
mod checks;
mod limits;
mod queue;
mod redis_settings;
mod runtime;
mod secret;
mod settings;
mod topology;
mod validated;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

pub use limits::{BodyLimits, DeadLetters, SendBudgets, ServerLimits};
pub use queue::{MAX_PARTITIONS, QueueConfig, QueueSettings};
pub use runtime::{RuntimeSettings, WorkerThreads};
pub use secret::{Secret, UrlWithCredentials};
pub use settings::*;
pub use topology::{NodeAddress, RedisConfig, RedisTopology, ReplicaWait};
pub use validated::*;

const MIN_HMAC_KEY_LEN: usize = 32;
const ENV_PREFIX: &str = "OTP_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Each problem on its own line, named as the operator wrote it: `OTP_SMTP__HOSTT`, or
    /// `smtp.hostt in otp.toml`.
    #[error("configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
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

impl Config {
    /// Loads and validates: what start-up runs with and what `check-config` checks.
    pub fn load(file: Option<&Path>, profile: Profile) -> Result<Self, ConfigError> {
        Self::from_settings(Settings::load(file, profile)?)
    }
}

impl Settings {
    /// The layered input, secrets read from their files; not yet validated (see `Config`).
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
        // Only OTP_<SECTION>__<KEY>: Kubernetes injects service links such as
        // OTP_EMAIL_OTP_SERVICE_HOST for a release named "otp", which must not stop the pod.
        // (OTP_CONFIG names the file and has no section either.)
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let mut settings: Settings = figment.extract().map_err(describe)?;
        settings.resolve_secret_files()?;
        if profile == Profile::Dev && settings.otp.hmac_key.is_none() {
            settings.otp.hmac_key = Some(Secret::new(ephemeral_key()));
        }
        Ok(settings)
    }

    /// `<key>_file` wins over `<key>`; setting both is refused as ambiguous. Hand-wired rather
    /// than figment's file-provider adapter, which neither trims the trailing newline that
    /// Kubernetes Secrets often carry nor keeps a numeric password a string.
    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        let both = |key: &'static str| ConfigError::Value {
            key,
            message: format!("set either {key} or {key}_file, not both"),
        };
        if self.otp.hmac_key.is_some() && self.otp.hmac_key_file.is_some() {
            return Err(both("otp.hmac_key"));
        }
        if self.smtp.password.is_some() && self.smtp.password_file.is_some() {
            return Err(both("smtp.password"));
        }
        if self.redis.sentinel_password.is_some() && self.redis.sentinel_password_file.is_some() {
            return Err(both("redis.sentinel_password"));
        }
        if let Some(path) = &self.otp.hmac_key_file {
            self.otp.hmac_key = Some(read_secret("otp.hmac_key_file", path)?);
        }
        if let Some(path) = &self.smtp.password_file {
            self.smtp.password = Some(read_secret("smtp.password_file", path)?);
        }
        if let Some(path) = &self.redis.url_file {
            self.redis.url = read_secret("redis.url_file", path)?;
        }
        if let Some(path) = &self.redis.sentinel_password_file {
            self.redis.sentinel_password = Some(read_secret("redis.sentinel_password_file", path)?);
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

fn describe(errors: figment::Error) -> ConfigError {
    ConfigError::Invalid(
        errors
            .into_iter()
            .map(|e| {
                let key = match &e.metadata {
                    Some(m) if m.name.contains("environment") => {
                        format!("{}{}", ENV_PREFIX, e.path.join("__").to_ascii_uppercase())
                    }
                    Some(m) => {
                        let source = m
                            .source
                            .as_ref()
                            .map_or(m.name.to_string(), |s| s.to_string());
                        format!("{} in {source}", e.path.join("."))
                    }
                    None => e.path.join("."),
                };
                format!("{key}: {}", e.kind)
            })
            .collect(),
    )
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
#[cfg(test)]
mod topology_tests;
