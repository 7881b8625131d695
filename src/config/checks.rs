//! The rules `Config::from_settings` applies to single values: each error names its key.
use super::{ConfigError, Secret};

/// `Err` names the key: `(key, rule)`.
pub(super) fn check<T: PartialOrd + std::fmt::Display + Copy>(
    key: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::Value {
            key,
            message: format!("must be {min} to {max} (got {value})"),
        });
    }
    Ok(value)
}

pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        key,
        message: message.into(),
    }
}

pub(super) fn hmac_key(key: Option<&Secret>) -> Result<Secret, ConfigError> {
    let key = key.ok_or(ConfigError::MissingHmacKey)?;
    if key.expose().len() < super::MIN_HMAC_KEY_LEN {
        return Err(ConfigError::ShortHmacKey);
    }
    Ok(key.clone())
}

pub(super) fn redis_url(url: &Secret) -> Result<Secret, ConfigError> {
    // Parsing only: nothing connects here.
    redis::Client::open(url.expose()).map_err(|e| {
        invalid(
            "redis.url",
            format!("not a Redis URL this build can use: {e}"),
        )
    })?;
    Ok(url.clone())
}

pub(super) fn key_prefix(p: &str) -> Result<String, ConfigError> {
    let ok = (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err(invalid(
            "redis.key_prefix",
            "must be 1-32 characters of a-z, 0-9, _ or -",
        ));
    }
    Ok(p.to_owned())
}

pub(super) fn non_empty_line(key: &'static str, v: &str) -> Result<String, ConfigError> {
    if v.trim().is_empty() || v.chars().any(char::is_control) {
        return Err(invalid(key, "must be a non-empty single line"));
    }
    Ok(v.to_owned())
}

pub(super) fn credentials(
    user: Option<&str>,
    password: Option<&Secret>,
) -> Result<Option<(String, Secret)>, ConfigError> {
    match (user, password) {
        (None, None) => Ok(None),
        (Some(u), Some(p)) if !u.is_empty() && !p.expose().is_empty() => {
            Ok(Some((u.to_owned(), p.clone())))
        }
        (Some(_), _) => Err(invalid(
            "smtp.password",
            "smtp.username is set: set smtp.password (or smtp.password_file) too",
        )),
        (None, Some(_)) => Err(invalid(
            "smtp.username",
            "smtp.password is set without a username",
        )),
    }
}

/// The PEM of an optional CA file, read and checked to hold at least one certificate.
pub(super) fn ca_pem(
    key: &'static str,
    path: Option<&std::path::Path>,
) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(Some(pem))
}

pub(super) fn endpoint_url(endpoint: &str) -> Result<(), ConfigError> {
    let ok = endpoint
        .split_once("://")
        .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
    if !ok {
        return Err(invalid(
            "telemetry.otlp_endpoint",
            "must be an http:// or https:// URL",
        ));
    }
    Ok(())
}
