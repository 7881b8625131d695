//! Test fixtures: a private redis-server, the real binary on free ports, and mail helpers.
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub use crate::smtp_sink::{Mail, SmtpSink};

pub const KEY: &str = "test-hmac-key-0123456789abcdef0123456789";

/// A port nobody listens on. The OS may hand a just-released port out again, so ports given to
/// earlier callers in this test binary are never returned twice.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A redis-server of our own: free port, temp dir, AOF on (so restarts keep data), killed on drop.
pub struct TestRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Extra redis-server arguments, kept across restarts.
    args: Vec<String>,
}

impl TestRedis {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A redis-server with extra arguments, e.g. `["--maxmemory", "4mb"]`.
    pub async fn start_with(args: &[&str]) -> Self {
        let mut r = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        r.restart().await;
        r
    }

    /// The redis-server's pid (for SIGSTOP/SIGCONT).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server running").id()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .args([
                "--appendfsync",
                "always",
                "--maxmemory-policy",
                "noeviction",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if self.conn().await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn conn(&self) -> Option<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut c = tokio::time::timeout(
            Duration::from_millis(500),
            client.get_multiplexed_async_connection(),
        )
        .await
        .ok()?
        .ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .ok()?;
        Some(c)
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        self.conn().await.expect("redis connection")
    }

    /// Every key with its type, TTL in ms and every value it holds, as text.
    pub async fn dump(&self) -> Vec<(String, i64, Vec<String>)> {
        let mut c = self.connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .unwrap();
        let mut out = Vec::new();
        for k in keys {
            let t: String = redis::cmd("TYPE")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap();
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&k)
                .query_async(&mut c)
                .await
                .unwrap();
            let read = match t.as_str() {
                "string" => None,
                "hash" => Some(redis::cmd("HGETALL").arg(&k).clone()),
                "list" => Some(redis::cmd("LRANGE").arg(&k).arg(0).arg(-1).clone()),
                "set" => Some(redis::cmd("SMEMBERS").arg(&k).clone()),
                "zset" => Some(redis::cmd("ZRANGE").arg(&k).arg(0).arg(-1).clone()),
                other => panic!("unexpected type {other} for {k}"),
            };
            let values: Vec<Vec<u8>> = match read {
                Some(cmd) => cmd.query_async(&mut c).await.unwrap(),
                None => vec![redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap()],
            };
            let values = values
                .into_iter()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .collect();
            out.push((k, ttl, values));
        }
        out
    }

    pub async fn llen(&self, key: &str) -> i64 {
        redis::cmd("LLEN")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .unwrap()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `email-otp` binary as a child process with its own ports and log file.
pub struct TestApp {
    pub http: String,
    pub admin: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    pub log_path: PathBuf,
    _logdir: tempfile::TempDir,
}

/// Environment for a test service: fast timings, our Redis and SMTP sink.
pub fn base_env(redis: &TestRedis, sink: &SmtpSink) -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (k, v) in [
        ("OTP_REDIS__URL", redis.url()),
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
    ] {
        env.insert(k.to_string(), v);
    }
    env
}

impl TestApp {
    pub async fn spawn(mode: &str, env: &HashMap<String, String>) -> Self {
        let (http_port, admin_port) = (free_port(), free_port());
        let logdir = tempfile::tempdir().unwrap();
        let log_path = logdir.path().join("service.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // EMAIL_OTP_BIN runs the tests against another build of the service.
        let bin = std::env::var("EMAIL_OTP_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_email-otp").to_string());
        let child = Command::new(bin)
            .arg(mode)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("OTP_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
            .env("OTP_ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let app = Self {
            http: format!("http://127.0.0.1:{http_port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            child: Some(child),
            log_path,
            _logdir: logdir,
        };
        app.wait_ready().await;
        app
    }

    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.admin))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("service not ready; log:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.http))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap())
    }

    pub async fn generate(&self, email: &str) -> (u16, reqwest::header::HeaderMap, String) {
        self.post("/otp/generate", json!({ "email": email })).await
    }

    pub async fn verify(&self, email: &str, otp: &str) -> (u16, String) {
        let (s, _, b) = self
            .post("/otp/verify", json!({ "email": email, "otp": otp }))
            .await;
        (s, b)
    }

    /// Sends one verify per code, all at once; returns the statuses.
    pub async fn verify_concurrently(&self, email: &str, codes: Vec<String>) -> Vec<u16> {
        let tasks: Vec<_> = codes
            .into_iter()
            .map(|otp| {
                let (client, url) = (self.client.clone(), format!("{}/otp/verify", self.http));
                let body = json!({ "email": email, "otp": otp });
                tokio::spawn(async move {
                    client
                        .post(url)
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses
    }

    /// A generate as if from `client_ip` behind a trusted proxy.
    pub async fn generate_from(&self, client_ip: &str, email: &str) -> u16 {
        let r = self
            .client
            .post(format!("{}/otp/generate", self.http))
            .header("x-forwarded-for", client_ip)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// GET on the admin port: status and body, or `None` when nothing answered.
    pub async fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        let r = self
            .client
            .get(format!("{}{path}", self.admin))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("process did not exit in {timeout:?}; log:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `check` every 50 ms until it holds; fails the test naming `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The code in a mail's plain-text part, after checking the mail's shape.
pub fn code_from(mail: &Mail) -> String {
    let msg = mail_parser::MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("parseable mail");
    let text = msg.body_text(0).expect("a text/plain part").into_owned();
    let code: String = text
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("a 6-digit code in the text part")
        .to_owned();
    code
}

/// A code guaranteed to differ from `code`.
pub fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Everything one test needs: Redis, the sink and a running service.
pub struct Stack {
    pub redis: TestRedis,
    pub sink: SmtpSink,
    pub app: TestApp,
    pub env: HashMap<String, String>,
}

impl Stack {
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_mode("serve", extra).await
    }

    pub async fn start_mode(mode: &str, extra: &[(&str, &str)]) -> Self {
        let redis = TestRedis::start().await;
        let sink = SmtpSink::start().await;
        let mut env = base_env(&redis, &sink);
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let app = TestApp::spawn(mode, &env).await;
        Self {
            redis,
            sink,
            app,
            env,
        }
    }

    /// Asks for a code and returns it from the mail (the `n`th mail to the address).
    pub async fn code_for(&self, email: &str, n: usize) -> String {
        let (status, _, body) = self.app.generate(email).await;
        assert_eq!(status, 202, "{body}");
        let mails = self.sink.wait_for(email, n, Duration::from_secs(10)).await;
        code_from(&mails[n - 1])
    }
}

/// Polls `f` every 50 ms until it returns `Some`, failing the test after `timeout`.
pub async fn poll<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Limits loose enough for tests that ask for many codes.
pub const NO_LIMITS: &[(&str, &str)] = &[
    ("OTP_LIMITS__EMAIL_COOLDOWN_SECS", "0"),
    ("OTP_LIMITS__EMAIL_PER_HOUR", "100000"),
];
