//! Test helpers every module uses: `eventually` (the one way a test waits), the `Reply` of an HTTP
//! call, metric and mail parsing. The fixtures live in `test_redis`, `app` and `stack`.
use std::fmt::Display;
use std::time::Duration;

use serde_json::Value;

pub use crate::app::TestApp;
pub use crate::smtp_sink::{Answer, Mail, SmtpSink};
pub use crate::stack::Stack;
pub use crate::test_redis::{DEAD, PENDING, PROCESSING, TestRedis};

pub const KEY: &str = "test-hmac-key-0123456789abcdef0123456789";

/// How often `eventually` looks again.
const POLL_EVERY: Duration = Duration::from_millis(25);

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

/// What a check given to `eventually` answers: done, with a value, or not yet, with what it saw
/// (shown when the wait times out).
pub trait Check {
    type Value;
    fn done(self) -> Result<Self::Value, String>;
}

impl Check for bool {
    type Value = ();
    fn done(self) -> Result<(), String> {
        if self { Ok(()) } else { Err(String::new()) }
    }
}

impl<T> Check for Option<T> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl<T, E: Display> Check for Result<T, E> {
    type Value = T;
    fn done(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Runs `check` until it is done (`true`, `Some(v)` or `Ok(v)`) and returns its value; fails the
/// test naming `what`, and what the check last saw, after `timeout`.
pub async fn eventually<C, F, Fut>(what: impl Display, timeout: Duration, check: F) -> C::Value
where
    C: Check,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    match within(timeout, check).await {
        Ok(v) => v,
        Err(last) if last.is_empty() => panic!("timed out after {timeout:?} waiting for {what}"),
        Err(last) => panic!("timed out after {timeout:?} waiting for {what}; last seen:\n{last}"),
    }
}

/// `eventually` without the panic: `Err` with what the check last saw after `timeout`, for callers
/// that clean up or add context first.
pub async fn within<C, F, Fut>(timeout: Duration, mut check: F) -> Result<C::Value, String>
where
    C: Check,
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await.done() {
            Ok(v) => return Ok(v),
            Err(last) if tokio::time::Instant::now() >= deadline => return Err(last),
            Err(_) => tokio::time::sleep(POLL_EVERY).await,
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(r: reqwest::Response) -> Self {
        Self {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} body is not JSON ({e}): {}", self.status, self.body))
    }

    /// The `code` of an error body (`"rate_limited"`, …).
    pub fn code(&self) -> String {
        let code = self.json()["code"].as_str().map(str::to_owned);
        code.unwrap_or_else(|| panic!("no error code in {} {}", self.status, self.body))
    }

    /// The `Retry-After` header, in seconds.
    pub fn retry_after(&self) -> u64 {
        let h = self.headers.get("retry-after");
        let secs = h.and_then(|v| v.to_str().ok()?.parse().ok());
        secs.unwrap_or_else(|| panic!("no Retry-After in {self:?}"))
    }
}

/// The value of one series (`name{labels}`, exactly as exposed) in a Prometheus text page.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
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
