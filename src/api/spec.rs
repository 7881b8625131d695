//! The printed spec: poem-openapi's document plus what it cannot express, edited as a JSON value
//! and printed as JSON or YAML. `/openapi.*`, `email-otp openapi` and the committed
//! `openapi/openapi.yaml` all come from here.
use serde_json::{Value, json};

use poem_openapi::OpenApi;

use super::operations::OtpOperations;
use super::service;

/// Request bodies that refuse unknown fields (`#[oai(deny_unknown_fields)]`): poem-openapi enforces
/// that when parsing but cannot say it, so they get `additionalProperties: false`, and generated
/// clients have no catch-all field whose contents the service would refuse.
const CLOSED_SCHEMAS: &[&str] = &["GenerateRequest", "VerifyRequest"];

/// One example per error status of each operation, as the service really answers.
const ERROR_EXAMPLES: &[(&str, &str, &str, &str)] = &[
    (
        "/otp/generate",
        "400",
        "invalid_request",
        "email: the address must contain exactly one '@'",
    ),
    ("/otp/verify", "400", "otp_incorrect", "OTP is incorrect"),
    (
        "/otp/generate",
        "429",
        "rate_limited",
        "Too many codes requested for this address",
    ),
    (
        "/otp/verify",
        "429",
        "too_many_attempts",
        "Too many failed attempts for this address",
    ),
    (
        "*",
        "413",
        "payload_too_large",
        "The request body is too large",
    ),
    (
        "*",
        "415",
        "unsupported_media_type",
        "The body must be JSON with Content-Type: application/json",
    ),
    ("*", "500", "internal", "Internal error"),
    (
        "*",
        "503",
        "unavailable",
        "The service is temporarily unavailable; retry shortly",
    ),
];

const MEDIA: &str = "application/json; charset=utf-8";

// The document comes from static metadata and a `Value` of strings, maps and arrays always
// prints: a failure here is a bug that the tests below (and the drift check) catch.
#[allow(clippy::expect_used, reason = "static input, checked by the tests")]
pub fn json() -> String {
    serde_json::to_string_pretty(&document()).expect("the spec prints as JSON")
}

#[allow(clippy::expect_used, reason = "static input, checked by the tests")]
pub fn yaml() -> String {
    serde_yaml::to_string(&document()).expect("the spec prints as YAML")
}

#[allow(clippy::expect_used, reason = "poem-openapi prints valid JSON")]
fn document() -> Value {
    let mut doc: Value =
        serde_json::from_str(&service(SpecOnly).spec()).expect("poem-openapi's spec is JSON");
    for name in CLOSED_SCHEMAS {
        if let Some(schema) = doc["components"]["schemas"][name].as_object_mut() {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
    }
    for (path, status, code, message) in ERROR_EXAMPLES {
        let paths: Vec<String> = match *path {
            "*" => doc["paths"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default(),
            one => vec![one.to_owned()],
        };
        for p in paths {
            if let Some(media) =
                doc["paths"][&p]["post"]["responses"][status]["content"][MEDIA].as_object_mut()
            {
                media.insert(
                    "example".into(),
                    json!({ "code": code, "message": message }),
                );
            }
        }
    }
    doc
}

/// The API's description without the API: what `email-otp openapi` prints needs no Redis, key
/// or policy, only the routes' static metadata.
pub struct SpecOnly;

impl OpenApi for SpecOnly {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        OtpOperations::meta()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        OtpOperations::register(registry);
    }

    fn add_routes(
        self,
        _: &mut std::collections::HashMap<
            String,
            std::collections::HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>,
        >,
    ) {
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_schemas_are_closed_in_both_formats() {
        let from_yaml: Value = serde_yaml::from_str(&yaml()).unwrap();
        let from_json: Value = serde_json::from_str(&json()).unwrap();
        assert_eq!(from_yaml, from_json);
        for name in CLOSED_SCHEMAS {
            let schema = &from_json["components"]["schemas"][name];
            assert_eq!(schema["additionalProperties"], false, "{name}: {schema}");
        }
    }

    #[test]
    fn every_error_status_has_its_own_example() {
        let doc: Value = serde_json::from_str(&json()).unwrap();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            let Some(responses) = ops["post"]["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                if status.starts_with('2') {
                    continue;
                }
                let example = &response["content"][MEDIA]["example"];
                assert!(example["code"].is_string(), "{path} {status}: {response}");
            }
        }
        let verify = &doc["paths"]["/otp/verify"]["post"]["responses"];
        assert_eq!(
            verify["400"]["content"][MEDIA]["example"]["code"],
            "otp_incorrect"
        );
        assert_eq!(
            verify["429"]["content"][MEDIA]["example"]["code"],
            "too_many_attempts"
        );
    }
}
