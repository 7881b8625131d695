//! Everything one test needs: its own Redis, SMTP sink and a running service, built with
//! `Stack::builder().no_limits().env(..).start()` (or `Stack::start()` for the defaults).
use std::collections::HashMap;
use std::time::Duration;

use crate::app::TestApp;
use crate::helpers::{KEY, code_from};
use crate::smtp_sink::SmtpSink;
use crate::test_redis::TestRedis;

pub struct Stack {
    pub redis: TestRedis,
    pub sink: SmtpSink,
    pub app: TestApp,
    /// The service's environment; `spawn` starts more processes with it.
    pub env: HashMap<String, String>,
    mode: String,
}

pub struct StackBuilder {
    mode: String,
    env: Vec<(String, String)>,
}

/// Environment for a test service: fast timings, our Redis and SMTP sink.
pub fn base_env(redis: &TestRedis, sink: &SmtpSink) -> HashMap<String, String> {
    base_env_for(vec![("OTP_REDIS__URL".into(), redis.url())], sink)
}

/// `base_env` for any Redis deployment: `redis_env` holds its `OTP_REDIS__*` variables.
pub fn base_env_for(redis_env: Vec<(String, String)>, sink: &SmtpSink) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("OTP_OTP__HMAC_KEY", KEY.into()),
        ("OTP_SMTP__HOST", "127.0.0.1".into()),
        ("OTP_SMTP__PORT", sink.port.to_string()),
        ("OTP_SMTP__SECURITY", "none".into()),
        ("OTP_MAIL__FROM", "Email OTP <otp@sender.test>".into()),
        (
            "OTP_MAIL__TEMPLATE_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/mailer").into(),
        ),
        ("OTP_WORKER__HEARTBEAT_SECS", "1".into()),
        ("OTP_WORKER__REAP_AFTER_SECS", "3".into()),
        ("OTP_WORKER__RETRY_BASE_MS", "200".into()),
        ("OTP_LOG__LEVEL", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(redis_env);
    env
}

impl Stack {
    /// A stack with the default settings, running `serve`.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    pub fn builder() -> StackBuilder {
        StackBuilder {
            mode: "serve".into(),
            env: Vec::new(),
        }
    }

    /// Another process of the service (`api`, `worker`, …) with this stack's environment.
    pub async fn spawn(&self, mode: &str) -> TestApp {
        TestApp::spawn(mode, &self.env).await
    }

    /// Replaces the running service by one with `key` set to `value`.
    pub async fn restart_with(&mut self, key: &str, value: &str) {
        self.app.stop();
        self.env.insert(key.to_owned(), value.to_owned());
        self.app = TestApp::spawn(&self.mode, &self.env).await;
    }

    /// Asks for a code and returns it from the new mail once its job is finished. A code counts
    /// only once the worker has seen the relay accept its mail, a moment after the sink stored
    /// it, so a verify right after the mail lands could race the worker.
    pub async fn code_for(&self, email: &str) -> String {
        let before = self.sink.mails_to(email).len();
        let r = self.app.generate(email).await;
        assert_eq!(r.status, 202, "{}", r.body);
        let mails = self
            .sink
            .wait_for(email, before + 1, Duration::from_secs(10))
            .await;
        self.redis.wait_drained(Duration::from_secs(10)).await;
        code_from(&mails[before])
    }
}

impl StackBuilder {
    /// `serve` (the default), `api` or `worker`.
    pub fn mode(mut self, mode: &str) -> Self {
        self.mode = mode.to_owned();
        self
    }

    /// Sets one configuration variable, e.g. `.env("OTP_OTP__TTL_SECS", 2)`.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    /// Limits loose enough for tests that ask one address for many codes.
    pub fn no_limits(self) -> Self {
        self.env("OTP_LIMITS__EMAIL_COOLDOWN_SECS", 0)
            .env("OTP_LIMITS__EMAIL_PER_HOUR", 100_000)
    }

    pub async fn start(self) -> Stack {
        let redis = TestRedis::start().await;
        let sink = SmtpSink::start().await;
        let mut env = base_env(&redis, &sink);
        env.extend(self.env);
        let app = TestApp::spawn(&self.mode, &env).await;
        Stack {
            redis,
            sink,
            app,
            env,
            mode: self.mode,
        }
    }
}
