//! Bad input: every case gets a 4xx JSON error and nothing is queued or mailed.
use serde_json::Value;

use crate::helpers::*;

const GENERATE: &str = "/otp/generate";
const VERIFY: &str = "/otp/verify";
const JSON: &str = "application/json";

/// One bad request and the error it must get.
struct Case {
    name: &'static str,
    path: &'static str,
    body: Body,
    content_type: &'static str,
    status: u16,
    code: &'static str,
}

enum Body {
    Whole(String),
    /// Chunks with no Content-Length.
    Chunked(Vec<Vec<u8>>),
}

/// A JSON body the endpoint must answer with 400 `invalid_request`.
fn case(name: &'static str, path: &'static str, body: impl Into<String>) -> Case {
    Case {
        name,
        path,
        body: Body::Whole(body.into()),
        content_type: JSON,
        status: 400,
        code: "invalid_request",
    }
}

impl Case {
    fn sent_as(self, content_type: &'static str) -> Self {
        Case {
            content_type,
            ..self
        }
    }

    fn answered(self, status: u16, code: &'static str) -> Self {
        Case {
            status,
            code,
            ..self
        }
    }
}

fn cases() -> Vec<Case> {
    let long_local = format!("{}@example.com", "a".repeat(65));
    let long_total = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(62),
        "b".repeat(60),
        "c".repeat(63),
        "d".repeat(63)
    );
    assert_eq!(long_total.len(), 255);
    let email = |e: &str| format!(r#"{{"email":"{e}"}}"#);
    let one_mb = format!(
        r#"{{"email":"a@example.com","pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    vec![
        case("malformed JSON", GENERATE, "{\"email\": "),
        case("not an object", GENERATE, "[1,2]"),
        case(
            "unknown field",
            GENERATE,
            r#"{"email":"a@example.com","admin":true}"#,
        ),
        case("missing field", GENERATE, "{}"),
        case("email not a string", GENERATE, r#"{"email":42}"#),
        case(
            "CR/LF injection",
            GENERATE,
            email(r"a@example.com\r\nBcc: b@evil.com"),
        ),
        case("encoded CR/LF", GENERATE, email("a%0d%0a@example.com")),
        case(
            "two addresses",
            GENERATE,
            email("a@example.com,b@example.com"),
        ),
        case("quoted @", GENERATE, email(r#"\"a@x.com x\"@victim.com"#)),
        case("comment", GENERATE, email("user@good.com(x)evil.com")),
        case("65-octet local part", GENERATE, email(&long_local)),
        case("255-char address", GENERATE, email(&long_total)),
        case(
            "5-digit otp",
            VERIFY,
            r#"{"email":"a@example.com","otp":"12345"}"#,
        ),
        case(
            "letters in otp",
            VERIFY,
            r#"{"email":"a@example.com","otp":"12345a"}"#,
        ),
        case(
            "7-digit otp",
            VERIFY,
            r#"{"email":"a@example.com","otp":"1234567"}"#,
        ),
        case(
            "numeric otp",
            VERIFY,
            r#"{"email":"a@example.com","otp":123456}"#,
        ),
        case("wrong content type", GENERATE, email("a@example.com"))
            .sent_as("text/plain")
            .answered(415, "unsupported_media_type"),
        case("form body", GENERATE, "email=a@example.com")
            .sent_as("application/x-www-form-urlencoded")
            .answered(415, "unsupported_media_type"),
        case("1 MB body", GENERATE, one_mb).answered(413, "payload_too_large"),
        Case {
            body: Body::Chunked(vec![vec![b'x'; 3000]; 3]),
            ..case("9 KB chunked body", GENERATE, "").answered(413, "payload_too_large")
        },
    ]
}

#[tokio::test]
async fn bad_input_matrix_is_rejected_with_json_errors_and_sends_nothing() {
    let s = Stack::start().await;
    // Early 413s close the connection with the body unread: no pooling, so no request lands on it.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let cases = cases();
    for c in &cases {
        let body = match &c.body {
            Body::Whole(text) => reqwest::Body::from(text.clone()),
            Body::Chunked(chunks) => {
                let chunks = chunks.clone().into_iter().map(Ok::<_, std::io::Error>);
                reqwest::Body::wrap_stream(tokio_stream::iter(chunks))
            }
        };
        let r = client
            .post(format!("{}{}", s.app.http, c.path))
            .header("content-type", c.content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let r = Reply::read(r).await;
        let name = c.name;
        assert_eq!(r.status, c.status, "{name}: {}", r.body);
        let content_type = r.headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with("application/json"), "{name}");
        assert_eq!(r.code(), c.code, "{name}");
        let message = r.json()["message"].as_str().map(str::to_owned);
        assert!(message.is_some_and(|m| !m.is_empty()), "{name}");
    }

    // Every request was answered, and one answered with an error queues nothing: the counters
    // say so, and with no job left unfinished any mail would already be at the sink.
    let per_path = |path| cases.iter().filter(|c| c.path == path).count() as f64;
    let series = [
        (
            "email_otp_generate_total{outcome=\"invalid\"}",
            per_path(GENERATE),
        ),
        (
            "email_otp_verify_total{outcome=\"invalid\"}",
            per_path(VERIFY),
        ),
        ("email_otp_generate_total{outcome=\"accepted\"}", 0.0),
    ];
    for (series, expected) in series {
        assert_eq!(s.app.metric(series).await, expected, "{series}");
    }
    assert_eq!(s.redis.unfinished_jobs().await, (0, 0, 0), "nothing queued");
    assert_eq!(s.redis.llen(DEAD).await, 0);
    assert!(s.sink.mails().is_empty(), "nothing mailed");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_json_shape() {
    let s = Stack::start().await;
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
    let s = Stack::start().await;
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
