//! The configuration after validation: every value range-checked, every reference loaded, every
//! cross-field rule applied. Start-up and `check-config` both build this, so they fail alike.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use super::checks::{ca_pem, check, credentials, endpoint_url, hmac_key, invalid, non_empty_line};
use super::{
    BodyLimits, ConfigError, DeadLetters, RedisConfig, Secret, SendBudgets, ServerLimits, Settings,
    SmtpSecurity,
};
use crate::limits::TrustedProxies;

/// Everything the service runs with. `settings` is what was given, for printing.
#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    pub http: HttpConfig,
    pub admin_listen: SocketAddr,
    pub redis: RedisConfig,
    pub otp: OtpConfig,
    pub limits: LimitsConfig,
    pub mail: MailConfig,
    pub smtp: SmtpConfig,
    pub worker: WorkerConfig,
    pub queue: super::QueueConfig,
    pub worker_threads: super::WorkerThreads,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub trusted_proxies: TrustedProxies,
    pub body: BodyLimits,
    pub shutdown_grace: Duration,
    pub limits: ServerLimits,
}

#[derive(Debug, Clone)]
pub struct OtpConfig {
    pub ttl: Duration,
    pub digits: u32,
    pub max_attempts: u32,
    /// At least 32 characters.
    pub hmac_key: Secret,
}

#[derive(Debug, Clone)]
pub struct LimitsConfig {
    pub email_cooldown: Duration,
    pub email_per_hour: u64,
    /// 0 = off.
    pub ip_per_minute: u32,
    pub verify_failures_per_hour: u64,
    /// 0 = off.
    pub ip_verify_failures_per_hour: u32,
    pub send: SendBudgets,
}

#[derive(Debug, Clone)]
pub enum MailTransport {
    Smtp,
    Outbox(PathBuf),
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub from: Mailbox,
    pub product_name: String,
    /// A template; compiled (and checked) with the body templates.
    pub subject: String,
    pub template_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// `None`: no AUTH. A username always comes with a password.
    pub credentials: Option<(String, Secret)>,
    pub pool_size: usize,
    pub timeout: Duration,
    /// PEM of `smtp.tls_ca_file`, read and checked to hold at least one certificate.
    pub extra_ca_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub renew_every: Duration,
    pub lease: Duration,
    pub dead_letters: DeadLetters,
}

impl Config {
    pub fn from_settings(s: Settings) -> Result<Self, ConfigError> {
        let secs = |key, v, min, max| check(key, v, min, max).map(Duration::from_secs);
        let millis = |key, v, min, max| check(key, v, min, max).map(Duration::from_millis);
        let http = HttpConfig {
            listen: s.http.listen,
            trusted_proxies: TrustedProxies::parse(&s.http.trusted_proxies)
                .map_err(|m| invalid("http.trusted_proxies", m))?,
            body: BodyLimits {
                max_bytes: check("http.max_body_bytes", s.http.max_body_bytes, 256, 1 << 20)?,
                read_timeout: millis(
                    "http.body_read_timeout_ms",
                    s.http.body_read_timeout_ms,
                    100,
                    300_000,
                )?,
            },
            shutdown_grace: secs(
                "http.shutdown_grace_secs",
                s.http.shutdown_grace_secs,
                0,
                3600,
            )?,
            limits: ServerLimits {
                header_read_timeout: millis(
                    "http.header_read_timeout_ms",
                    s.http.header_read_timeout_ms,
                    100,
                    300_000,
                )?,
                // hyper's buffer needs at least 8 KiB.
                max_header_bytes: check(
                    "http.max_header_bytes",
                    s.http.max_header_bytes,
                    8192,
                    1 << 20,
                )?,
                write_timeout: millis(
                    "http.write_timeout_ms",
                    s.http.write_timeout_ms,
                    100,
                    300_000,
                )?,
                max_connections: check(
                    "http.max_connections",
                    s.http.max_connections,
                    1,
                    1_000_000,
                )?,
            },
        };
        let redis = RedisConfig::from_settings(&s.redis)?;
        let otp = OtpConfig {
            ttl: secs("otp.ttl_secs", s.otp.ttl_secs, 1, 86_400)?,
            digits: check("otp.digits", s.otp.digits, 6, 10)?,
            max_attempts: check("otp.max_attempts", s.otp.max_attempts, 1, 1000)?,
            hmac_key: hmac_key(s.otp.hmac_key.as_ref())?,
        };
        let limits = LimitsConfig {
            email_cooldown: secs(
                "limits.email_cooldown_secs",
                s.limits.email_cooldown_secs,
                0,
                86_400,
            )?,
            email_per_hour: check(
                "limits.email_per_hour",
                s.limits.email_per_hour,
                1,
                1_000_000,
            )?,
            ip_per_minute: check("limits.ip_per_minute", s.limits.ip_per_minute, 0, 1_000_000)?,
            verify_failures_per_hour: check(
                "limits.verify_failures_per_hour",
                s.limits.verify_failures_per_hour,
                1,
                1_000_000,
            )?,
            ip_verify_failures_per_hour: check(
                "limits.ip_verify_failures_per_hour",
                s.limits.ip_verify_failures_per_hour,
                0,
                1_000_000,
            )?,
            send: SendBudgets::from_settings(&s.limits)?,
        };
        let mail = MailConfig {
            transport: match s.mail.transport {
                super::MailTransportKind::Smtp => MailTransport::Smtp,
                super::MailTransportKind::Outbox => {
                    MailTransport::Outbox(s.mail.outbox_dir.clone())
                }
            },
            from: s.mail.from.parse().map_err(|e| {
                invalid(
                    "mail.from",
                    format!("{:?} is not a mailbox: {e}", s.mail.from),
                )
            })?,
            product_name: non_empty_line("mail.product_name", &s.mail.product_name)?,
            subject: non_empty_line("mail.subject", &s.mail.subject)?,
            template_dir: s.mail.template_dir.clone(),
        };
        let smtp = SmtpConfig {
            host: non_empty_line("smtp.host", &s.smtp.host)?,
            port: check("smtp.port", s.smtp.port, 1, u16::MAX)?,
            security: s.smtp.security,
            credentials: credentials(s.smtp.username.as_deref(), s.smtp.password.as_ref())?,
            pool_size: check("smtp.pool_size", s.smtp.pool_size, 1, 1024)? as usize,
            timeout: secs("smtp.timeout_secs", s.smtp.timeout_secs, 1, 600)?,
            extra_ca_pem: ca_pem("smtp.tls_ca_file", s.smtp.tls_ca_file.as_deref())?,
        };
        if smtp.credentials.is_some()
            && smtp.security == SmtpSecurity::None
            && !s.smtp.allow_insecure_auth
        {
            return Err(invalid(
                "smtp.security",
                "is none while smtp.username is set: the password would cross the network in clear; \
                 use starttls or tls, or set smtp.allow_insecure_auth = true for a local relay",
            ));
        }
        let w = &s.worker;
        let heartbeat = secs("worker.heartbeat_secs", w.heartbeat_secs, 1, 3600)?;
        let retry_base = millis("worker.retry_base_ms", w.retry_base_ms, 1, 3_600_000)?;
        let worker = WorkerConfig {
            concurrency: check("worker.concurrency", w.concurrency, 1, 4096)?,
            max_attempts: check("worker.max_attempts", w.max_attempts, 1, 1000)?,
            retry_base,
            retry_max: millis(
                "worker.retry_max_ms",
                w.retry_max_ms,
                w.retry_base_ms,
                3_600_000,
            )?,
            dead_letters: DeadLetters {
                max: check("worker.dead_letter_max", w.dead_letter_max, 1, 1_000_000)?,
                max_age: secs(
                    "worker.dead_letter_max_age_secs",
                    w.dead_letter_max_age_secs,
                    60,
                    366 * 24 * 3600,
                )?,
            },
            renew_every: heartbeat,
            lease: secs(
                "worker.reap_after_secs",
                w.reap_after_secs,
                w.heartbeat_secs + 1,
                86_400,
            )?,
        };
        if let Some(endpoint) = &s.telemetry.otlp_endpoint {
            endpoint_url(endpoint.expose())?;
        }
        tracing_subscriber::EnvFilter::try_new(&s.log.level)
            .map_err(|e| invalid("log.level", format!("not a log filter: {e}")))?;
        Ok(Self {
            http,
            admin_listen: s.admin.listen,
            redis,
            otp,
            limits,
            mail,
            smtp,
            worker,
            queue: super::QueueConfig::from_settings(&s.queue)?,
            worker_threads: super::WorkerThreads::from_settings(&s.runtime)?,
            settings: s,
        })
    }
}
