//! The typed configuration tree and its defaults (the README's configuration table).
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::redis_settings::{RedisMode, RedisSettings};
use super::{Secret, UrlWithCredentials};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub http: HttpSettings,
    pub admin: AdminSettings,
    pub redis: RedisSettings,
    pub otp: OtpSettings,
    pub limits: LimitSettings,
    pub mail: MailSettings,
    pub smtp: SmtpSettings,
    pub worker: WorkerSettings,
    pub queue: super::QueueSettings,
    pub telemetry: TelemetrySettings,
    pub log: LogSettings,
    pub runtime: super::RuntimeSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// IPs or CIDRs whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    pub max_body_bytes: usize,
    /// How long a draining API waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Time a client has to send a request's head, counted from when the connection is ready for
    /// one: it ends slow-header (slowloris) clients and idle keep-alive connections alike.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's body once its head is in: a client that takes
    /// longer (a slow-body or "slow POST" client) is disconnected without an answer.
    pub body_read_timeout_ms: u64,
    /// Time an answer's write may stay blocked because the client reads nothing (a slow-read
    /// client, or one that pipelines requests and never reads the answers); then the connection
    /// is closed. A client that reads slowly but steadily is never cut off.
    pub write_timeout_ms: u64,
    /// Largest request head (request line plus headers), in bytes.
    pub max_header_bytes: usize,
    /// Open connections the API listener keeps at most; past it, it stops accepting.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtpSettings {
    pub ttl_secs: u64,
    pub digits: u32,
    pub max_attempts: u32,
    pub hmac_key: Option<Secret>,
    pub hmac_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub email_cooldown_secs: u64,
    pub email_per_hour: u64,
    /// Per client IP and minute; 0 turns the limit off.
    pub ip_per_minute: u32,
    pub verify_failures_per_hour: u64,
    /// Failed verifies per client IP and hour; 0 turns the limit off.
    pub ip_verify_failures_per_hour: u32,
    /// Mails per minute over all addresses, Redis-wide; 0 turns the budget off.
    pub mails_per_minute: u32,
    /// Mails per minute to one recipient domain, Redis-wide; 0 turns the budget off.
    pub domain_mails_per_minute: u32,
    /// Jobs waiting (queued or retrying) past which generate answers 503; 0 turns the cap off.
    pub queue_max_depth: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    Smtp,
    Outbox,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    pub transport: MailTransportKind,
    pub from: String,
    /// The product or site the code is for, shown in the subject and the body.
    pub product_name: String,
    /// A Handlebars template with the same variables as the body (e.g. `{{product_name}}`).
    pub subject: String,
    pub template_dir: PathBuf,
    pub outbox_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub pool_size: u32,
    pub timeout_secs: u64,
    /// Allow AUTH over a connection without TLS (`security = none`), which sends the password in
    /// clear. Only for a relay on the same host or a trusted private network.
    pub allow_insecure_auth: bool,
    /// PEM file of extra CA certificates to trust for the relay (a private CA), besides the
    /// public web roots.
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    pub concurrency: usize,
    /// Most delivery attempts of one job; retries also stop when the code would expire.
    pub max_attempts: u32,
    /// How often a worker renews the leases of its jobs.
    pub heartbeat_secs: u64,
    /// How long a lease lasts without renewal: a job whose worker went away returns to pending
    /// after this.
    pub reap_after_secs: u64,
    /// First retry delay; attempt n waits `retry_base_ms * 2^(n-1)`, at most `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Entries the dead-letter list keeps at most, and for how long.
    pub dead_letter_max: u64,
    pub dead_letter_max_age_secs: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// Printed and debug-formatted with any password in it redacted.
    pub otlp_endpoint: Option<UrlWithCredentials>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: addr("0.0.0.0:8080"),
            trusted_proxies: Vec::new(),
            max_body_bytes: 4096,
            shutdown_grace_secs: 10,
            header_read_timeout_ms: 5000,
            body_read_timeout_ms: 5000,
            write_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: addr("0.0.0.0:9090"),
        }
    }
}

impl Default for OtpSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 600,
            digits: 6,
            max_attempts: 5,
            hmac_key: None,
            hmac_key_file: None,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            email_cooldown_secs: 60,
            email_per_hour: 5,
            ip_per_minute: 0,
            verify_failures_per_hour: 100,
            ip_verify_failures_per_hour: 0,
            mails_per_minute: 0,
            domain_mails_per_minute: 0,
            queue_max_depth: 50_000,
        }
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::Smtp,
            from: "Email OTP <no-reply@localhost>".into(),
            product_name: "Email OTP".into(),
            subject: "Your {{product_name}} verification code".into(),
            template_dir: "mailer".into(),
            outbox_dir: "outbox".into(),
        }
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            password_file: None,
            pool_size: 8,
            timeout_secs: 10,
            allow_insecure_auth: false,
            tls_ca_file: None,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            max_attempts: 20,
            heartbeat_secs: 5,
            reap_after_secs: 30,
            retry_base_ms: 2000,
            retry_max_ms: 60_000,
            dead_letter_max: 10_000,
            dead_letter_max_age_secs: 7 * 24 * 3600,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}
