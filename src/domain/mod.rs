//! Types parsed at the edge: once a value has one of these types it is valid.
mod code;
mod email;
mod mac;
mod redact;

pub use code::{CodeFormatError, OtpCode};
pub use email::{EmailAddress, EmailError};
pub use mac::{CodeMac, MacKey};
pub use redact::{mask_addresses, redact_url_credentials};

/// Asserts that ten digit counts look uniform: chi-square with 9 degrees of freedom, where a
/// value above 33.7 has p < 0.0001 (a failure means bias, not bad luck).
#[cfg(test)]
fn assert_uniform_digits(counts: &[u32; 10], what: &str) {
    let n: u32 = counts.iter().sum();
    let expected = f64::from(n) / 10.0;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (f64::from(c) - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 33.7, "{what}: chi-square {chi2} for {counts:?}");
}
