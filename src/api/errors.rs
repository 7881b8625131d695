//! The one error shape of the API, `{"code": …, "message": …}`, declared in the spec for every
//! status, and the conversion of poem's own plain-text errors into it.
use std::time::Duration;

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object};

/// Machine-readable error codes. Clients switch on these, never on `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    OtpIncorrect,
    RateLimited,
    TooManyAttempts,
    PayloadTooLarge,
    UnsupportedMediaType,
    NotFound,
    MethodNotAllowed,
    Unavailable,
    Internal,
}

#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// Text for humans; it never contains internal error details.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Json<Self> {
        Json(Self {
            code,
            message: message.into(),
        })
    }
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        Self {
            code: ErrorCode::InvalidRequest,
            message: "email: the address must contain exactly one '@'".into(),
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed (`invalid_request`) or, on verify, the code is not valid (`otp_incorrect`).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// The body is larger than the limit (`payload_too_large`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is not `application/json` (`unsupported_media_type`).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests (`rate_limited` on generate, `too_many_attempts` on verify). Retry after the
    /// number of seconds in `Retry-After`.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ErrorBody>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// An unexpected server error (`internal`).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The service cannot take the request now (`unavailable`): Redis is unreachable or full, the
    /// queue holds `limits.queue_max_depth` jobs, or a send budget is spent. Retry after the
    /// number of seconds in `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before retrying: when the budget or queue has room, or 1 for an outage.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::BadRequest(ErrorBody::new(ErrorCode::InvalidRequest, message))
    }

    pub fn otp_incorrect() -> Self {
        Self::BadRequest(ErrorBody::new(ErrorCode::OtpIncorrect, "OTP is incorrect"))
    }

    /// Redis is unreachable or refused the write: how long it lasts is unknown, so "shortly".
    pub fn unavailable() -> Self {
        Self::busy(UNAVAILABLE_MESSAGE, OUTAGE_RETRY)
    }

    /// A right code whose use Redis replicas did not confirm (`redis.wait_replicas`): consumed on
    /// the primary, so a retry of the same code fails; the user needs a new one.
    pub fn unconfirmed() -> Self {
        Self::busy(
            "The code could not be confirmed; request a new code and retry",
            OUTAGE_RETRY,
        )
    }

    /// 503 with a known wait: a full queue or a spent send budget.
    pub fn busy(message: &str, retry_after: Duration) -> Self {
        Self::Unavailable(
            ErrorBody::new(ErrorCode::Unavailable, message),
            retry_after_secs(retry_after),
        )
    }

    pub fn too_many(code: ErrorCode, message: &str, retry_after: Duration) -> Self {
        Self::TooManyRequests(ErrorBody::new(code, message), retry_after_secs(retry_after))
    }

    pub fn internal() -> Self {
        Self::Internal(ErrorBody::new(ErrorCode::Internal, INTERNAL_MESSAGE))
    }

    /// Status, body and `Retry-After` (in seconds), as the spec declares each variant.
    pub fn into_parts(self) -> (StatusCode, ErrorBody, Option<u64>) {
        match self {
            Self::BadRequest(b) => (StatusCode::BAD_REQUEST, b.0, None),
            Self::PayloadTooLarge(b) => (StatusCode::PAYLOAD_TOO_LARGE, b.0, None),
            Self::UnsupportedMediaType(b) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, b.0, None),
            Self::TooManyRequests(b, secs) => (StatusCode::TOO_MANY_REQUESTS, b.0, Some(secs)),
            Self::Internal(b) => (StatusCode::INTERNAL_SERVER_ERROR, b.0, None),
            Self::Unavailable(b, secs) => (StatusCode::SERVICE_UNAVAILABLE, b.0, Some(secs)),
        }
    }
}

const INTERNAL_MESSAGE: &str = "Internal error";

const UNAVAILABLE_MESSAGE: &str = "The service is temporarily unavailable; retry shortly";

/// What a 503 from an outage asks clients to wait: a second, then their own backoff.
const OUTAGE_RETRY: Duration = Duration::from_secs(1);

/// `Retry-After` in whole seconds, rounded up so a client that waits exactly that long succeeds.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_millis().div_ceil(1000).max(1);
    u64::try_from(secs).unwrap_or(u64::MAX)
}

/// Turns any error that reached the edge into the JSON shape. Errors that already carry a JSON
/// response (our `ApiError`) pass through; poem's plain-text ones are mapped by status.
pub async fn render_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    let detail = err.to_string();
    let resp = err.into_response();
    let status = resp.status();
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => (
            ErrorCode::InvalidRequest,
            format!("The request body is not valid: {}", client_detail(&detail)),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            "The request body is too large".into(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            "The body must be JSON with Content-Type: application/json".into(),
        ),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "No such endpoint".into()),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "Method not allowed on this endpoint".into(),
        ),
        StatusCode::SERVICE_UNAVAILABLE => (ErrorCode::Unavailable, UNAVAILABLE_MESSAGE.into()),
        s if s.is_client_error() => (ErrorCode::InvalidRequest, "The request is not valid".into()),
        _ => {
            tracing::error!(status = %status, error = %detail, "unhandled error");
            (ErrorCode::Internal, INTERNAL_MESSAGE.into())
        }
    };
    let mut out = ErrorBody::new(code, message).into_response();
    out.set_status(status);
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let secs = HeaderValue::from(retry_after_secs(OUTAGE_RETRY));
        out.headers_mut().insert(header::RETRY_AFTER, secs);
    }
    out
}

/// poem's parse errors describe the client's input ("unknown field `x`"); keep only that part.
fn client_detail(detail: &str) -> &str {
    detail
        .rsplit_once(": ")
        .map_or(detail, |(_, tail)| tail)
        .trim()
}
