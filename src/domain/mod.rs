//! Types parsed at the edge: once a value has one of these types it is valid.
mod code;
mod email;
mod mac;
mod redact;

pub use code::{CodeFormatError, OtpCode};
pub use email::{EmailAddress, EmailError};
pub use mac::{CodeMac, MacKey};
pub use redact::{mask_addresses, redact_url_credentials};

/// A random version-4 UUID in its 32-hex-digit form (job ids, Message-IDs, outbox names). Its
/// bytes come from the thread's CSPRNG (seeded from the OS), not a `getrandom` call per id as
/// `Uuid::new_v4` makes: one system call less per generate and per mail. Codes keep coming from
/// the OS directly (`OtpCode::generate`).
pub fn random_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .simple()
        .to_string()
}

/// The parts joined into one string, allocated once: key names and address forms are built per
/// request, and `format!` costs about ten times as many instructions for them.
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn random_ids_are_distinct_version_4_uuids() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| super::random_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(id.len(), 32);
        }
    }
}
