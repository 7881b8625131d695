//! The pieces of a JSON log line: escaped strings and RFC 3339 timestamps in UTC, appended to a
//! `String` without intermediate allocations.
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `s` as a JSON string, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

/// Appends `s` escaped for the inside of a JSON string (RFC 8259 §7): quote, backslash and the
/// control characters; everything else is copied as is, in runs.
fn push_escaped(out: &mut String, s: &str) {
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        if short.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(short);
        }
        run = i + 1;
    }
    out.push_str(&s[run..]);
}

/// A `fmt::Write` that escapes what is written into it, for `Debug` and `Display` values.
pub struct Escaped<'a>(pub &'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        push_escaped(self.0, s);
        Ok(())
    }
}

/// Appends `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds), the form tracing-subscriber
/// writes. A clock set before 1970 is written as the epoch.
pub fn push_timestamp(out: &mut String, at: SystemTime) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = crate::clock::civil_from_days(secs / 86_400);
    let in_day = secs % 86_400;
    // Digit by digit: `write!` with seven arguments cost more than the rest of a log line.
    push_digits(out, year, 4);
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
    out.push('T');
    push_digits(out, in_day / 3600, 2);
    out.push(':');
    push_digits(out, in_day / 60 % 60, 2);
    out.push(':');
    push_digits(out, in_day % 60, 2);
    out.push('.');
    push_digits(out, u64::from(since.subsec_micros()), 6);
    out.push('Z');
}

/// The last `width` decimal digits of `n`, zero-padded (a year past 9999 is not a log's).
fn push_digits(out: &mut String, n: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = n / 10u64.pow(place) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn timestamp(secs: u64, micros: u32) -> String {
        let mut out = String::new();
        let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros.into());
        push_timestamp(&mut out, at);
        out
    }

    #[test]
    fn timestamps_at_known_dates() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(
            timestamp(1_796_437_353, 123_456),
            "2026-12-05T02:22:33.123456Z"
        );
        assert_eq!(
            timestamp(4_107_542_399, 999_999),
            "2100-02-28T23:59:59.999999Z"
        );
        assert_eq!(timestamp(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
    }

    proptest! {
        /// Every string survives escaping: a JSON parser reads back exactly what was written.
        #[test]
        fn escaped_strings_parse_back(s in any::<String>()) {
            let mut out = String::new();
            push_str(&mut out, &s);
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }

        /// Date arithmetic agrees with httpdate's own (an independent implementation).
        #[test]
        fn timestamps_agree_with_httpdate(secs in 0u64..8_000_000_000) {
            let at = UNIX_EPOCH + Duration::from_secs(secs);
            // "Tue, 15 Nov 1994 08:12:31 GMT"
            let http = httpdate::fmt_http_date(at);
            let parts: Vec<&str> = http.split([' ', ':']).collect();
            let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            let month = months.iter().position(|m| *m == parts[2]).unwrap() + 1;
            let expected = format!(
                "{}-{month:02}-{}T{}:{}:{}.000000Z",
                parts[3], parts[1], parts[4], parts[5], parts[6]
            );
            prop_assert_eq!(timestamp(secs, 0), expected);
        }
    }
}
