//! The direct path against poem's: the same requests, in the same order, to two services that
//! differ only in the path, each on its own redis-server. Status, headers (but `date`), body bytes
//! and the request and outcome counters must be the same.
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ApiHandler;
use crate::api::{BodyLimits, OtpApi, ServerLimits, serve};
use crate::codes::{Codes, Policy};
use crate::config::SendBudgets;
use crate::domain::MacKey;
use crate::limits::{IpLimiter, TrustedProxies};
use crate::metrics::Metrics;
use crate::queue::Partitions;
use crate::store::test_server::Redis;

const MAX_BODY: usize = 512;

struct Service {
    url: String,
    metrics: Metrics,
    redis: Option<Redis>,
    stop: CancellationToken,
}

async fn start(direct: bool) -> Service {
    let redis = Redis::start(&[]).await;
    let policy = Policy {
        verify_failures_per_hour: 3,
        ..Policy::for_tests(SendBudgets::default())
    };
    let partitions = Partitions::single("t");
    let codes = Codes::new(redis.store(), "t", partitions, MacKey::new(b"k"), policy);
    let metrics = Metrics::new();
    let api = OtpApi {
        codes,
        ip_limiter: IpLimiter::new(4).map(Arc::new),
        verify_ip_limiter: None,
        proxies: TrustedProxies::parse(&["127.0.0.1/32".into()]).unwrap(),
        metrics: metrics.clone(),
        digits: 6,
        quiet: Default::default(),
    };
    let body = BodyLimits {
        max_bytes: MAX_BODY,
        read_timeout: Duration::from_secs(5),
    };
    let handler: ApiHandler = crate::api::app(api, body, metrics.clone(), false);
    let handler = if direct {
        handler
    } else {
        handler.through_poem()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let limits = ServerLimits {
        max_connections: 16,
        header_read_timeout: Duration::from_secs(5),
        max_header_bytes: 16 * 1024,
        write_timeout: Duration::from_secs(10),
    };
    tokio::spawn(serve(
        listener,
        handler,
        limits,
        stop.clone(),
        Duration::ZERO,
    ));
    Service {
        url,
        metrics,
        redis: Some(redis),
        stop,
    }
}

/// One request: method, path, headers, body.
type Call = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<u8>,
);

fn json(path: &'static str, body: &str) -> Call {
    let headers = vec![("content-type", "application/json")];
    ("POST", path, headers, body.as_bytes().to_vec())
}

fn with(mut call: Call, name: &'static str, value: &'static str) -> Call {
    call.2.retain(|(n, _)| *n != name);
    call.2.push((name, value));
    call
}

fn calls() -> Vec<Call> {
    let gen_a = || json("/otp/generate", r#"{"email":"a@example.com"}"#);
    let verify_a = |otp: &str| {
        let body = format!(r#"{{"email":"a@example.com","otp":"{otp}"}}"#);
        ("POST", "/otp/verify", json("", "").2, body.into_bytes())
    };
    let mut calls = vec![
        gen_a(),
        gen_a(),
        with(gen_a(), "x-forwarded-for", "192.0.2.1"),
        json("/otp/generate", r#"{"email":"no-at-sign"}"#),
        json("/otp/generate", r#"{"email":12}"#),
        json("/otp/generate", r#"{"email":"b@example.com","x":1}"#),
        json("/otp/generate", r#"{"email":"#),
        json("/otp/generate", ""),
        json("/otp/generate", "[]"),
        json("/otp/generate", r#"["d@example.com"]"#),
        json(
            "/otp/generate",
            r#"{"email":"d@example.com","email":"e@example.com"}"#,
        ),
        json("/otp/generate", r#" {"email" : "f\u0040example.com"} "#),
        json("/otp/generate", r#"{"email":"ab"}"#),
        with(gen_a(), "content-type", "text/plain"),
        with(gen_a(), "content-type", "application/problem+json"),
        with(gen_a(), "content-type", "application/json; charset=utf-8"),
        with(gen_a(), "content-type", "not a type"),
        ("POST", "/otp/generate", vec![], b"{}".to_vec()),
        json(
            "/otp/generate",
            &format!(r#"{{"email":"{}"}}"#, "x".repeat(600)),
        ),
        verify_a("000000"),
        verify_a("12a"),
        verify_a("0000000"),
        json("/otp/verify", r#"{"email":"a@example.com"}"#),
        json("/otp/verify", r#"{"otp":"000001","email":"a@example.com"}"#),
        json("/otp/verify", r#"{"email":"a@example.com","otp":123456}"#),
        verify_a("111111"),
        verify_a("222222"),
        verify_a("333333"),
        ("GET", "/otp/verify", vec![], vec![]),
        ("PUT", "/otp/generate", json("", "").2, b"{}".to_vec()),
        ("HEAD", "/otp/generate", vec![], vec![]),
        ("GET", "/nowhere", vec![], vec![]),
        ("POST", "/nowhere", json("", "").2, b"{}".to_vec()),
        ("GET", "/openapi.json", vec![], vec![]),
    ];
    // The IP limit (4 a minute) behind a trusted proxy: the fifth from one client is refused.
    for i in 0..5 {
        let body = format!(r#"{{"email":"ip{i}@example.com"}}"#);
        let call = json("/otp/generate", "");
        calls.push(with(
            (call.0, call.1, call.2, body.into_bytes()),
            "x-forwarded-for",
            "198.51.100.7",
        ));
    }
    calls
}

/// Status, headers but `date`, and body, as one comparable text.
async fn send(client: &reqwest::Client, base: &str, call: &Call) -> String {
    let (method, path, headers, body) = call;
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.body(body.clone()).send().await.unwrap();
    let mut out = format!("{} {}\n", resp.status(), path);
    let mut headers: Vec<_> = resp
        .headers()
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(n, v)| format!("{n}: {}\n", v.to_str().unwrap()))
        .collect();
    headers.sort();
    out.extend(headers);
    out.push_str(&String::from_utf8_lossy(&resp.bytes().await.unwrap()));
    out
}

/// The request and outcome counters (not the durations).
fn counters(metrics: &Metrics) -> Vec<String> {
    metrics
        .encode()
        .lines()
        .filter(|l| {
            [
                "email_otp_http_requests_total",
                "email_otp_generate_total",
                "email_otp_verify_total",
            ]
            .iter()
            .any(|name| l.starts_with(name))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_direct_path_answers_as_poem_does() {
    let (direct, mut poem) = tokio::join!(start(true), start(false));
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for call in calls() {
        let a = send(&client, &direct.url, &call).await;
        let b = send(&client, &poem.url, &call).await;
        assert_eq!(a, b, "{} {}", call.0, call.1);
        answers.push(a);
    }
    // The sequence reaches every kind of answer, so the comparison covers them.
    for expected in [
        "202 ",
        "400 ",
        "404 ",
        "405 ",
        "413 ",
        "415 ",
        "429 ",
        "200 ",
        "otp_incorrect",
        "too_many_attempts",
        "rate_limited",
        "allow: POST",
        "retry-after: ",
    ] {
        assert!(
            answers.iter().any(|a| a.contains(expected)),
            "no answer has {expected}"
        );
    }
    assert_eq!(counters(&direct.metrics), counters(&poem.metrics));
    // The request series count each answer under its route, method and status class.
    let page = direct.metrics.encode();
    for (path, class) in [
        ("/otp/generate", '2'),
        ("/otp/generate", '4'),
        ("/otp/verify", '4'),
    ] {
        let posts = calls()
            .iter()
            .zip(&answers)
            .filter(|(call, answer)| {
                call.0 == "POST" && call.1 == path && answer.starts_with(class)
            })
            .count();
        let series = format!(
            "email_otp_http_requests_total{{method=\"POST\",route=\"{path}\",status_class=\"{class}xx\"}} {posts}"
        );
        assert!(
            posts > 0 && page.lines().any(|l| l == series),
            "{series}\n{page}"
        );
    }
    assert!(
        counters(&direct.metrics)
            .iter()
            .any(|l| l.contains("invalid") && !l.ends_with(" 0"))
    );

    // Redis gone: both answer 503 with Retry-After.
    let mut direct = direct;
    drop(direct.redis.take());
    drop(poem.redis.take());
    let call = json("/otp/generate", r#"{"email":"c@example.com"}"#);
    let call = with(call, "x-forwarded-for", "203.0.113.9");
    let a = send(&client, &direct.url, &call).await;
    assert_eq!(a, send(&client, &poem.url, &call).await);
    assert!(a.starts_with("503 ") && a.contains("retry-after: 1"), "{a}");
    direct.stop.cancel();
    poem.stop.cancel();
}
