//! `wire` against poem-openapi: the same answers byte for byte, and a shortcut parse that accepts
//! only what poem accepts, with the same values.
use std::time::Duration;

use poem::IntoResponse;
use poem_openapi::payload::Json;
use proptest::prelude::*;

use super::*;
use crate::api::bodies::{Accepted, AcceptedStatus, Verified};
use crate::api::errors::{ErrorBody, ErrorCode};

/// Status, headers and body bytes of a response.
async fn dump(resp: Response) -> String {
    let mut out = format!("{}\n", resp.status());
    let mut headers: Vec<_> = resp
        .headers()
        .iter()
        .map(|(n, v)| format!("{n}: {}\n", v.to_str().unwrap()))
        .collect();
    headers.sort();
    out.extend(headers);
    out.push_str(&resp.into_body().into_string().await.unwrap());
    out
}

/// Messages with what JSON must escape: quotes, backslashes, controls, non-ASCII.
const MESSAGES: &[&str] = &[
    "plain",
    "a \"quote\" and \\",
    "tab\tnew\nline\u{1}",
    "é ✓ 🚀",
];

#[tokio::test]
async fn errors_are_written_as_poem_openapi_writes_them() {
    let codes = [
        ErrorCode::InvalidRequest,
        ErrorCode::OtpIncorrect,
        ErrorCode::RateLimited,
        ErrorCode::TooManyAttempts,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];
    let wait = Duration::from_millis(2500);
    for code in codes {
        for message in MESSAGES {
            let all = || {
                [
                    ApiError::BadRequest(ErrorBody::new(code, *message)),
                    ApiError::PayloadTooLarge(ErrorBody::new(code, *message)),
                    ApiError::UnsupportedMediaType(ErrorBody::new(code, *message)),
                    ApiError::too_many(code, message, wait),
                    ApiError::Internal(ErrorBody::new(code, *message)),
                    ApiError::busy(message, wait),
                ]
            };
            for (theirs, ours) in all().into_iter().zip(all()) {
                let theirs = dump(theirs.into_response()).await;
                let ours = dump(respond::<Verified>(Err(ours))).await;
                assert_eq!(ours, theirs);
            }
        }
    }
}

#[tokio::test]
async fn answers_are_written_as_poem_openapi_writes_them() {
    for message in MESSAGES {
        let accepted = || Accepted {
            status: AcceptedStatus::Accepted,
            message: (*message).into(),
            expires_in: 600,
            retry_after: 60,
        };
        let theirs = GenerateResponse::Accepted(Json(accepted())).into_response();
        let ours = respond(Ok(Answer::from(GenerateResponse::Accepted(Json(
            accepted(),
        )))));
        assert_eq!(dump(ours).await, dump(theirs).await);
        let verified = || Verified {
            verified: true,
            message: (*message).into(),
        };
        let theirs = VerifyResponse::Verified(Json(verified())).into_response();
        let ours = respond(Ok(Answer::from(VerifyResponse::Verified(Json(verified())))));
        assert_eq!(dump(ours).await, dump(theirs).await);
    }
}

#[test]
fn ordinary_bodies_take_the_shortcut() {
    let generate = br#" {"email": "a\u0040b.example\"x"} "#;
    let parsed = GenerateRequest::shortcut(generate).expect("a plain generate body");
    assert_eq!(parsed.email.0, "a@b.example\"x");
    let verify = br#"{"otp":"012345","email":"user@example.com"}"#;
    let parsed = VerifyRequest::shortcut(verify).expect("a plain verify body");
    assert_eq!(
        (parsed.email.0.as_str(), parsed.otp.0.as_str()),
        ("user@example.com", "012345")
    );
    let at_bounds = format!(r#"{{"email":"{}"}}"#, "é".repeat(EMAIL_MAX_CHARS));
    assert!(GenerateRequest::shortcut(at_bounds.as_bytes()).is_some());
    assert!(GenerateRequest::shortcut(br#"{"email":"abc"}"#).is_some());
}

#[test]
fn the_email_bounds_are_the_specs() {
    let spec: Value = serde_json::from_str(&crate::api::spec_json()).unwrap();
    for body in ["GenerateRequest", "VerifyRequest"] {
        let email = &spec["components"]["schemas"][body]["properties"]["email"];
        assert_eq!(email["minLength"], EMAIL_MIN_CHARS, "{body}");
        assert_eq!(email["maxLength"], EMAIL_MAX_CHARS, "{body}");
    }
}

/// JSON-ish bodies near the two shapes: the right keys, unknown and repeated keys, other types,
/// lengths around the bounds, arrays, junk.
fn body() -> impl Strategy<Value = String> {
    let string = prop_oneof![
        "[a-z@.é\\\\\"]{0,6}".prop_map(|s| format!("{s:?}")),
        (1usize..=4).prop_map(|k| format!("\"{}\"", "x".repeat(EMAIL_MAX_CHARS - 2 + k))),
        Just(r#""\ud800""#.to_owned()),
        Just(r#""\u00e9@x.y""#.to_owned()),
    ];
    let value = prop_oneof![
        4 => string,
        1 => Just("12".to_owned()),
        1 => Just("null".to_owned()),
        1 => Just("true".to_owned()),
        1 => Just("[\"a@b.c\"]".to_owned()),
    ];
    let key = prop_oneof![Just("email"), Just("otp"), Just("x"), Just("Email")];
    let field = (key, value).prop_map(|(k, v)| format!("\"{k}\":{v}"));
    let object = prop::collection::vec(field, 0..4).prop_map(|f| format!("{{{}}}", f.join(",")));
    prop_oneof![
        8 => object,
        1 => prop::collection::vec("\"[a-z@.]{3,8}\"", 1..3).prop_map(|v| format!("[{}]", v.join(","))),
        1 => "[ {}a-z\"]{0,8}",
    ]
}

proptest! {
    #[test]
    fn the_shortcut_accepts_only_what_poem_accepts_with_the_same_values(body in body()) {
        let bytes = body.as_bytes();
        if let Some(ours) = GenerateRequest::shortcut(bytes) {
            let theirs: GenerateRequest = as_poem_reads(bytes).expect("poem refused what wire read");
            prop_assert_eq!(ours.email, theirs.email);
        }
        if let Some(ours) = VerifyRequest::shortcut(bytes) {
            let theirs: VerifyRequest = as_poem_reads(bytes).expect("poem refused what wire read");
            prop_assert_eq!(ours.email, theirs.email);
            prop_assert_eq!(ours.otp, theirs.otp);
        }
    }
}
