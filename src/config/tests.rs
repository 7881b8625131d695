#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error by design.

use figment::Jail;

use super::*;

pub(super) const KEY: &str = "0123456789abcdef0123456789abcdef";

pub(super) fn load_err(jail_setup: impl FnOnce(&mut Jail) -> figment::Result<()>) -> String {
    let mut out = String::new();
    Jail::expect_with(|jail| {
        jail_setup(jail)?;
        out = Config::load(
            Some(Path::new("otp.toml")).filter(|p| p.exists()),
            Profile::Production,
        )
        .expect_err("load should fail")
        .to_string();
        Ok(())
    });
    out
}

#[test]
fn defaults_match_the_design_table() {
    Jail::expect_with(|jail| {
        jail.set_env("OTP_OTP__HMAC_KEY", KEY);
        let s = Settings::load(None, Profile::Production).unwrap();
        assert_eq!(s.http.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(s.admin.listen.to_string(), "0.0.0.0:9090");
        assert_eq!(s.redis.url.expose(), "redis://127.0.0.1:6379");
        assert_eq!(s.redis.key_prefix, "otp");
        assert_eq!(
            (s.otp.ttl_secs, s.otp.digits, s.otp.max_attempts),
            (600, 6, 5)
        );
        assert_eq!(
            (s.limits.email_cooldown_secs, s.limits.email_per_hour),
            (60, 5)
        );
        assert_eq!(
            (s.limits.ip_per_minute, s.limits.verify_failures_per_hour),
            (0, 100)
        );
        assert_eq!(s.mail.transport, MailTransportKind::Smtp);
        assert_eq!(s.runtime.worker_threads, 1);
        // 8 connections measured best in bench/run (BENCHMARKS.md).

        assert_eq!(
            (s.smtp.port, s.smtp.security, s.smtp.pool_size),
            (25, SmtpSecurity::Starttls, 8)
        );
        assert_eq!(s.worker.concurrency, 16);
        assert_eq!(s.log.format, LogFormat::Json);
        Ok(())
    });
}

#[test]
fn file_then_env_layers_override_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "otp.toml",
            "[smtp]\nport = 2525\nhost = \"mail.internal\"\n[limits]\nemail_per_hour = 9\n",
        )?;
        jail.set_env("OTP_SMTP__PORT", "587");
        jail.set_env("OTP_OTP__HMAC_KEY", KEY);
        jail.set_env("OTP_HTTP__TRUSTED_PROXIES", "[10.0.0.0/8, 192.168.1.1]");
        let s = Settings::load(Some(Path::new("otp.toml")), Profile::Production).unwrap();
        assert_eq!(s.smtp.port, 587);
        assert_eq!(s.smtp.host, "mail.internal");
        assert_eq!(s.limits.email_per_hour, 9);
        assert_eq!(s.http.trusted_proxies, vec!["10.0.0.0/8", "192.168.1.1"]);
        Ok(())
    });
}

#[test]
fn secrets_come_from_files_and_are_redacted() {
    Jail::expect_with(|jail| {
        jail.create_file("key", &format!("{KEY}\n"))?;
        jail.create_file("pw", "s3cret-password\n")?;
        jail.set_env("OTP_OTP__HMAC_KEY_FILE", "key");
        jail.set_env("OTP_SMTP__PASSWORD_FILE", "pw");
        jail.set_env("OTP_SMTP__USERNAME", "mailer");
        jail.set_env(
            "OTP_TELEMETRY__OTLP_ENDPOINT",
            "https://otel:collector-pw@collector:4318",
        );
        let c = Config::load(None, Profile::Production).unwrap();
        assert_eq!(c.otp.hmac_key.expose(), KEY);
        let s = c.settings;
        assert_eq!(
            s.smtp.password.as_ref().unwrap().expose(),
            "s3cret-password"
        );
        let printed = format!("{}{s:?}", s.to_redacted_toml());
        assert!(
            !printed.contains(KEY)
                && !printed.contains("s3cret")
                && !printed.contains("collector-pw"),
            "{printed}"
        );
        assert!(printed.contains("[redacted]"));
        Ok(())
    });
}

#[test]
fn unknown_keys_are_named() {
    let err = load_err(|j| {
        j.set_env("OTP_OTP__HMAC_KEY", KEY);
        j.set_env("OTP_SMTP__HOSTNAME", "x");
        Ok(())
    });
    assert!(err.contains("hostname"), "{err}");
    let err = load_err(|j| {
        j.set_env("OTP_OTP__HMAC_KEY", KEY);
        j.create_file("otp.toml", "[limitz]\nx = 1\n").map(drop)
    });
    assert!(err.contains("limitz"), "{err}");
}

#[test]
fn missing_or_short_hmac_key_is_a_clear_error() {
    let err = load_err(|_| Ok(()));
    assert!(
        err.contains("otp.hmac_key is required") && err.contains("OTP_OTP__HMAC_KEY_FILE"),
        "{err}"
    );
    let err = load_err(|j| {
        j.set_env("OTP_OTP__HMAC_KEY", "short");
        Ok(())
    });
    assert!(err.contains("too short"), "{err}");
}

#[test]
fn bad_values_name_their_key() {
    for (var, value, key) in [
        ("OTP_SMTP__SECURITY", "ssl", "security"),
        ("OTP_OTP__DIGITS", "4", "otp.digits"),
        (
            "OTP_HTTP__TRUSTED_PROXIES",
            "[not-an-ip]",
            "http.trusted_proxies",
        ),
        ("OTP_REDIS__KEY_PREFIX", "{bad}", "redis.key_prefix"),
        ("OTP_MAIL__FROM", "not a mailbox", "mail.from"),
        (
            "OTP_SMTP__TLS_CA_FILE",
            "/nonexistent/ca.pem",
            "smtp.tls_ca_file",
        ),
        ("OTP_REDIS__TIMEOUT_MS", "0", "redis.timeout_ms"),
        (
            "OTP_HTTP__BODY_READ_TIMEOUT_MS",
            "0",
            "http.body_read_timeout_ms",
        ),
        ("OTP_HTTP__WRITE_TIMEOUT_MS", "0", "http.write_timeout_ms"),
        ("OTP_SMTP__TIMEOUT_SECS", "0", "smtp.timeout_secs"),
        ("OTP_SMTP__USERNAME", "user", "smtp.password"),
        ("OTP_WORKER__CONCURRENCY", "100000000", "worker.concurrency"),
        (
            "OTP_RUNTIME__WORKER_THREADS",
            "5000",
            "runtime.worker_threads",
        ),
        ("OTP_WORKER__REAP_AFTER_SECS", "5", "worker.reap_after_secs"),
        ("OTP_LOG__LEVEL", "info,[", "log.level"),
        (
            "OTP_TELEMETRY__OTLP_ENDPOINT",
            "collector:4318",
            "telemetry.otlp_endpoint",
        ),
        ("OTP_REDIS__URL", "http://x", "redis.url"),
    ] {
        let err = load_err(|j| {
            j.set_env("OTP_OTP__HMAC_KEY", KEY);
            j.set_env(var, value);
            Ok(())
        });
        assert!(err.to_lowercase().contains(key), "{var}={value}: {err}");
    }
}

#[test]
fn variables_without_a_section_such_as_kubernetes_service_links_are_ignored() {
    Jail::expect_with(|jail| {
        jail.set_env("OTP_OTP__HMAC_KEY", KEY);
        jail.set_env("OTP_EMAIL_OTP_SERVICE_HOST", "10.0.0.1");
        jail.set_env("OTP_EMAIL_OTP_PORT_8080_TCP", "tcp://10.0.0.1:8080");
        jail.set_env("OTP_CONFIG", "ignored-here");
        Config::load(None, Profile::Production).unwrap();
        Ok(())
    });
}

#[test]
fn a_secret_and_its_file_together_are_refused() {
    let err = load_err(|j| {
        j.create_file("key", KEY)?;
        j.set_env("OTP_OTP__HMAC_KEY", KEY);
        j.set_env("OTP_OTP__HMAC_KEY_FILE", "key");
        Ok(())
    });
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn dev_profile_needs_no_key_and_writes_to_the_outbox() {
    Jail::expect_with(|_| {
        let c = Config::load(None, Profile::Dev).unwrap();
        assert!(matches!(c.mail.transport, MailTransport::Outbox(_)));
        assert_eq!(c.settings.log.format, LogFormat::Pretty);
        assert!(c.otp.hmac_key.expose().len() >= MIN_HMAC_KEY_LEN);
        Ok(())
    });
}
