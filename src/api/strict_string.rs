//! JSON strings that are only strings: poem-openapi's `String` also accepts numbers and booleans
//! (`"otp": 123456`), which the spec does not allow and which loses leading zeros.
//!
//! Each type also says in the spec what its value looks like (`format`, `pattern`). Those are
//! documentation for clients and hints for test generators, not validators: the handlers check
//! values with the address parser and `otp.digits`, which give the precise `invalid_request` message.
use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

/// What `domain::EmailAddress` accepts, as far as a pattern can say it: an RFC 5322 dot-atom local
/// part of ASCII letters, digits and ``#$&'*+-/=?^_`{|}~`` (no `%` or `!`: relay routing), one `@`, a domain without
/// whitespace. The domain rules (LDH labels, IDN per UTS #46, two labels or more, a TLD that is
/// not all digits) and the 64-octet local part are beyond a pattern; the parser enforces them.
pub const EMAIL_PATTERN: &str =
    r"^[A-Za-z0-9#$&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9#$&'*+/=?^_`{|}~-]+)*@[^\s@]+$";

/// The code as mailed with the default `otp.digits` (6).
pub const OTP_PATTERN: &str = "^[0-9]{6}$";

macro_rules! strict_string {
    ($(#[$attr:meta])* $name:ident, format: $format:expr, pattern: $pattern:expr) => {
        $(#[$attr])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = String;
            type RawElementValueType = String;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let mut schema = MetaSchema::new("string");
                schema.format = $format;
                schema.pattern = $pattern;
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(&self.0)
            }

            fn raw_element_iter<'a>(
                &'a self,
            ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(std::iter::once(&self.0))
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                match value {
                    Some(Value::String(s)) => Ok(Self(s)),
                    other => Err(ParseError::expected_type(other.unwrap_or_default())),
                }
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

strict_string!(
    /// An email address: `format: email` and [`EMAIL_PATTERN`] in the spec.
    EmailString,
    format: Some("email"),
    pattern: Some(EMAIL_PATTERN.into())
);

strict_string!(
    /// A one-time code: [`OTP_PATTERN`] in the spec.
    OtpString,
    format: None,
    pattern: Some(OTP_PATTERN.into())
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strings_parse() {
        assert_eq!(
            OtpString::parse_from_json(Some(Value::from("012345")))
                .unwrap()
                .0,
            "012345"
        );
        assert!(OtpString::parse_from_json(Some(Value::from(12345))).is_err());
        assert!(EmailString::parse_from_json(Some(Value::Bool(true))).is_err());
        assert!(EmailString::parse_from_json(None).is_err());
    }
}
