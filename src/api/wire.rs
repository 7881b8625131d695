//! The two operations' bodies read and written with serde, straight to and from bytes.
//! poem-openapi goes through a `serde_json::Value` both ways (an IndexMap, a String per key and
//! value, SipHash): about a tenth of a verify. The bytes are the same, which the tests below and
//! the direct path's comparison with poem check.
//!
//! Reading is a shortcut, not a second parser: it accepts only bodies that poem-openapi accepts
//! and gives the same values. Anything else (a duplicate or unknown key, a wrong type, a length
//! outside the spec's bounds, not an object) returns `None`, and the caller parses it poem's way
//! for poem's exact error.
use std::borrow::Cow;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::error::ParseRequestPayloadError;
use poem_openapi::types::ParseFromJSON;
use poem_openapi::validation::{MaxLength, MinLength, Validator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::bodies::{GenerateRequest, GenerateResponse, VerifyRequest, VerifyResponse};
use super::errors::ApiError;
use super::strict_string::{EmailString, OtpString};

/// The bounds of `email` in the spec (`validator(min_length, max_length)` on both bodies),
/// counted in characters as poem-openapi counts them. A test compares them with the spec.
pub const EMAIL_MIN_CHARS: usize = 3;
pub const EMAIL_MAX_CHARS: usize = 254;

/// What poem's JSON responses carry.
const JSON: &str = "application/json; charset=utf-8";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateBody<'a> {
    #[serde(borrow)]
    email: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody<'a> {
    #[serde(borrow)]
    email: Cow<'a, str>,
    #[serde(borrow)]
    otp: Cow<'a, str>,
}

/// A request body the shortcut can read.
pub trait Shortcut: ParseFromJSON {
    /// The body, when it is one poem-openapi accepts and the shortcut reads; else `None`.
    fn shortcut(body: &[u8]) -> Option<Self>;
}

impl Shortcut for GenerateRequest {
    fn shortcut(body: &[u8]) -> Option<Self> {
        let parsed: GenerateBody = object(body)?;
        Some(Self {
            email: email(parsed.email)?,
        })
    }
}

impl Shortcut for VerifyRequest {
    fn shortcut(body: &[u8]) -> Option<Self> {
        let parsed: VerifyBody = object(body)?;
        Some(Self {
            email: email(parsed.email)?,
            otp: OtpString(parsed.otp.into_owned()),
        })
    }
}

/// The body by the shortcut, or else poem-openapi's way (with poem's error when it refuses).
pub fn request<T: Shortcut>(body: &[u8]) -> poem::Result<T> {
    match T::shortcut(body) {
        Some(parsed) => Ok(parsed),
        None => as_poem_reads(body),
    }
}

/// A JSON object. serde's derive would also read a struct from an array, which poem refuses.
fn object<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Option<T> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_slice(body).ok()
}

fn email(value: Cow<'_, str>) -> Option<EmailString> {
    let fits = MinLength::new(EMAIL_MIN_CHARS).check(&value)
        && MaxLength::new(EMAIL_MAX_CHARS).check(&value);
    fits.then(|| EmailString(value.into_owned()))
}

/// poem-openapi's `Json<T>` parsing (an empty body is JSON `null`, then the spec's type), for
/// the bodies the shortcut leaves to it: this gives poem's error for a body it refuses.
pub fn as_poem_reads<T: ParseFromJSON>(body: &[u8]) -> poem::Result<T> {
    let value = match body.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(body).map_err(|err| ParseRequestPayloadError {
            reason: err.to_string(),
        })?,
    };
    let parsed = T::parse_from_json(Some(value)).map_err(|err| ParseRequestPayloadError {
        reason: err.into_message(),
    })?;
    Ok(parsed)
}

/// An answer of either operation as poem-openapi would write it.
pub fn respond<T: Serialize>(result: Result<Answer<T>, ApiError>) -> Response {
    match result {
        Ok(Answer { status, body }) => json(status, &body, None),
        Err(e) => {
            let (status, body, retry_after) = e.into_parts();
            json(status, &body, retry_after)
        }
    }
}

/// A success answer: its status and body.
pub struct Answer<T> {
    pub status: StatusCode,
    pub body: T,
}

impl From<GenerateResponse> for Answer<super::bodies::Accepted> {
    fn from(r: GenerateResponse) -> Self {
        let GenerateResponse::Accepted(body) = r;
        Self {
            status: StatusCode::ACCEPTED,
            body: body.0,
        }
    }
}

impl From<VerifyResponse> for Answer<super::bodies::Verified> {
    fn from(r: VerifyResponse) -> Self {
        let VerifyResponse::Verified(body) = r;
        Self {
            status: StatusCode::OK,
            body: body.0,
        }
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T, retry_after: Option<u64>) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        // These bodies are structs of strings, numbers and enums: serde_json fails only on map
        // keys that are not strings or on a Serialize impl that errs, neither of which they have.
        Err(e) => {
            tracing::error!(error = %e, "an answer could not be written as JSON");
            return ApiError::internal().into_response();
        }
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(JSON))
        .body(bytes);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
