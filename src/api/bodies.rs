//! The request and response bodies of the OTP operations, as the spec shows them.
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use super::strict_string::{EmailString, OtpString};

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct GenerateRequest {
    /// The address to confirm. One address, at most 254 octets; international domains are accepted.
    #[oai(validator(min_length = 3, max_length = 254))]
    // wire::EMAIL_MIN_CHARS, EMAIL_MAX_CHARS
    pub email: EmailString,
}

impl poem_openapi::types::Example for GenerateRequest {
    fn example() -> Self {
        Self {
            email: EmailString("user@example.com".into()),
        }
    }
}

#[derive(Debug, Object)]
#[oai(deny_unknown_fields, example)]
pub struct VerifyRequest {
    /// The address the code was sent to.
    #[oai(validator(min_length = 3, max_length = 254))]
    // wire::EMAIL_MIN_CHARS, EMAIL_MAX_CHARS
    pub email: EmailString,
    /// The code from the mail: 6 digits. (A deployment that sets `otp.digits` to another length
    /// expects codes of that length; the service checks the length it is configured with.)
    pub otp: OtpString,
}

impl poem_openapi::types::Example for VerifyRequest {
    fn example() -> Self {
        Self {
            email: EmailString("user@example.com".into()),
            otp: OtpString("456123".into()),
        }
    }
}

/// Always `accepted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum, serde::Serialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AcceptedStatus {
    Accepted,
}

#[derive(Debug, Object, serde::Serialize)]
#[oai(example)]
pub struct Accepted {
    pub status: AcceptedStatus,
    pub message: String,
    /// Seconds the code will be valid, counted from this answer (`otp.ttl_secs`).
    pub expires_in: u64,
    /// Seconds until another code can be requested for the address (the per-address cooldown).
    /// The same for every address, so it tells nothing about who asked before.
    pub retry_after: u64,
}

impl poem_openapi::types::Example for Accepted {
    fn example() -> Self {
        Self {
            status: AcceptedStatus::Accepted,
            message: "A code is on its way to the address".into(),
            expires_in: 600,
            retry_after: 60,
        }
    }
}

#[derive(Debug, Object, serde::Serialize)]
#[oai(example)]
pub struct Verified {
    /// Always `true`: a code that does not verify is an error response.
    pub verified: bool,
    pub message: String,
}

impl poem_openapi::types::Example for Verified {
    fn example() -> Self {
        Self {
            verified: true,
            message: "OTP is correct".into(),
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum GenerateResponse {
    /// The request passed validation and the limits; the code will be mailed shortly.
    #[oai(status = 202)]
    Accepted(Json<Accepted>),
}

#[derive(Debug, ApiResponse)]
pub enum VerifyResponse {
    /// The code is correct; it is now used up.
    #[oai(status = 200)]
    Verified(Json<Verified>),
}
