//! Bad input: every case gets a 4xx JSON error and nothing is queued or mailed.
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn bad_input_matrix_is_rejected_with_json_errors_and_sends_nothing() {
    let s = Stack::start(&[]).await;
    // Early 413s close the connection with the body unread: no pooling, so no request lands on it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_total = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(62),
        "b".repeat(60),
        "c".repeat(63),
        "d".repeat(63)
    );
    assert_eq!(long_total.len(), 255);
    let json = "application/json";
    let cases: Vec<(&str, &str, String, &str, u16, &str)> = vec![
        (
            "malformed JSON",
            "/otp/generate",
            "{\"email\": ".into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "not an object",
            "/otp/generate",
            "[1,2]".into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            "/otp/generate",
            r#"{"email":"a@example.com","admin":true}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "missing field",
            "/otp/generate",
            "{}".into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "email not a string",
            "/otp/generate",
            r#"{"email":42}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "CR/LF injection",
            "/otp/generate",
            r#"{"email":"a@example.com\r\nBcc: b@evil.com"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "encoded CR/LF",
            "/otp/generate",
            r#"{"email":"a%0d%0a@example.com"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "two addresses",
            "/otp/generate",
            r#"{"email":"a@example.com,b@example.com"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "quoted @",
            "/otp/generate",
            r#"{"email":"\"a@x.com x\"@victim.com"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "comment",
            "/otp/generate",
            r#"{"email":"user@good.com(x)evil.com"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "65-octet local part",
            "/otp/generate",
            format!(r#"{{"email":"{long_local}"}}"#),
            json,
            400,
            "invalid_request",
        ),
        (
            "255-char address",
            "/otp/generate",
            format!(r#"{{"email":"{long_total}"}}"#),
            json,
            400,
            "invalid_request",
        ),
        (
            "5-digit otp",
            "/otp/verify",
            r#"{"email":"a@example.com","otp":"12345"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "letters in otp",
            "/otp/verify",
            r#"{"email":"a@example.com","otp":"12345a"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "7-digit otp",
            "/otp/verify",
            r#"{"email":"a@example.com","otp":"1234567"}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "numeric otp",
            "/otp/verify",
            r#"{"email":"a@example.com","otp":123456}"#.into(),
            json,
            400,
            "invalid_request",
        ),
        (
            "wrong content type",
            "/otp/generate",
            r#"{"email":"a@example.com"}"#.into(),
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            "form body",
            "/otp/generate",
            "email=a@example.com".into(),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
        ),
        (
            "1 MB body",
            "/otp/generate",
            format!(
                r#"{{"email":"a@example.com","pad":"{}"}}"#,
                "x".repeat(1 << 20)
            ),
            json,
            413,
            "payload_too_large",
        ),
    ];
    for (name, path, body, ctype, status, code) in cases {
        let r = client
            .post(format!("{}{path}", s.app.http))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{name}"
        );
        let body: Value = serde_json::from_str(&r.text().await.unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(body["code"], code, "{name}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}"
        );
    }
    // A chunked body with no Content-Length is capped as well.
    let stream = futures_stream(vec![vec![b'x'; 3000]; 3]);
    let r = client
        .post(format!("{}/otp/generate", s.app.http))
        .header("content-type", json)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.sink.mails().is_empty(), "nothing mailed");
    assert_eq!(
        s.redis.llen("{otp}:queue:pending").await,
        0,
        "nothing queued"
    );
    let metrics = s.app.metrics().await;
    assert!(
        metrics.contains("email_otp_generate_total{outcome=\"invalid\"} 16"),
        "{metrics}"
    );
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    tokio_stream::iter(chunks.into_iter().map(Ok))
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_json_shape() {
    let s = Stack::start(&[]).await;
    for (method, path, status, code) in [
        (reqwest::Method::GET, "/nope", 404, "not_found"),
        (
            reqwest::Method::GET,
            "/otp/generate",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::DELETE,
            "/openapi.json",
            405,
            "method_not_allowed",
        ),
    ] {
        let r = s
            .app
            .client
            .request(method.clone(), format!("{}{path}", s.app.http))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(body["code"], code, "{method} {path}");
    }
}

#[tokio::test]
async fn spec_and_docs_are_served() {
    let s = Stack::start(&[]).await;
    let spec: Value = s
        .app
        .client
        .get(format!("{}/openapi.json", s.app.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/otp/generate"]["post"].is_object());
    let yaml = s
        .app
        .client
        .get(format!("{}/openapi.yaml", s.app.http))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yaml.contains("/otp/verify"));
    let docs = s
        .app
        .client
        .get(format!("{}/docs", s.app.http))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );
}
