//! An email address that is safe to hand to SMTP: one recipient, no header or command injection,
//! RFC 5321 lengths, and the canonical forms used for code binding and rate limiting.
use std::fmt;

/// RFC 5321 §4.5.3.1: local part ≤ 64 octets; a path of ≤ 256 octets leaves 254 for the address.
const MAX_LOCAL_OCTETS: usize = 64;
const MAX_ADDRESS_OCTETS: usize = 254;
const MAX_LABEL_OCTETS: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the address is empty")]
    Empty,
    #[error("the address is longer than 254 octets")]
    TooLong,
    #[error("the address must contain exactly one '@'")]
    NotOneAt,
    #[error("the local part (before '@') must be 1 to 64 octets")]
    LocalLength,
    #[error(
        "the local part contains a character that is not allowed: only letters, digits, dots and #$&'*+-/=?^_`{{|}}~ are"
    )]
    LocalCharacter,
    #[error("the local part must not start or end with a dot or contain two dots in a row")]
    LocalDots,
    #[error("the domain is not a valid internet domain name")]
    Domain,
}

/// A validated address. `for_delivery` is what the mail is sent to (local part untouched, domain in
/// ASCII form); `identity` binds codes; `limit_key` groups aliases of one mailbox for rate limits.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress {
    local: String,
    domain_ascii: String,
}

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        if input.is_empty() {
            return Err(EmailError::Empty);
        }
        if input.len() > MAX_ADDRESS_OCTETS {
            return Err(EmailError::TooLong);
        }
        let mut parts = input.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::NotOneAt);
        };
        validate_local(local)?;
        let domain_ascii = to_ascii_domain(domain)?;
        if local.len() + 1 + domain_ascii.len() > MAX_ADDRESS_OCTETS {
            return Err(EmailError::TooLong);
        }
        Ok(Self {
            local: local.to_owned(),
            domain_ascii,
        })
    }

    /// The address the mail goes to: the local part as given, the domain as punycode.
    pub fn for_delivery(&self) -> String {
        super::concat(&[&self.local, "@", &self.domain_ascii])
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain_ascii
    }

    /// Case-insensitive form that a code is bound to: a code for `User@X` verifies as `user@x`.
    pub fn identity(&self) -> String {
        let mut identity = super::concat(&[&self.local, "@", &self.domain_ascii]);
        // The domain is lowercase already (punycode or the ASCII shortcut).
        identity.make_ascii_lowercase();
        identity
    }

    /// Aggressive form for rate limits, so aliases of one mailbox share a bucket:
    /// lowercase, `+tag` removed, and Gmail's ignored dots removed.
    pub fn limit_key(&self) -> String {
        let lower = self.local.to_ascii_lowercase();
        let base = lower.split('+').next().unwrap_or_default();
        let (local, domain) = match self.domain_ascii.as_str() {
            "gmail.com" | "googlemail.com" => (base.replace('.', ""), "gmail.com"),
            other => (base.to_owned(), other),
        };
        super::concat(&[&local, "@", domain])
    }

    /// For logs: `u***@example.com`. Never log the full address.
    pub fn masked(&self) -> String {
        let first = self.local.chars().next().map_or(0, char::len_utf8);
        super::concat(&[&self.local[..first], "***@", &self.domain_ascii])
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

/// RFC 5322 dot-atom of ASCII `atext`. Quoted strings, comments, whitespace, control characters
/// and non-ASCII are refused: they are where injection and misrouting payloads live.
fn validate_local(local: &str) -> Result<(), EmailError> {
    if local.is_empty() || local.len() > MAX_LOCAL_OCTETS {
        return Err(EmailError::LocalLength);
    }
    // Routing syntaxes that old relays still honour are left out of RFC 5322's atext: '%'
    // ("user%host@relay", the percent hack) and '!' ("host!user@relay", a UUCP bang path). Both
    // make a relay forward the mail to a host the address does not name.
    let is_atext = |c: char| c.is_ascii_alphanumeric() || "#$&'*+-/=?^_`{|}~.".contains(c);
    if !local.chars().all(is_atext) {
        return Err(EmailError::LocalCharacter);
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(EmailError::LocalDots);
    }
    Ok(())
}

/// IDN to punycode (UTS #46, strict), then LDH labels, at least two of them, no IP literals.
fn to_ascii_domain(domain: &str) -> Result<String, EmailError> {
    if domain.is_empty() || domain.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(EmailError::Domain);
    }
    if let Some(ascii) = plain_ascii_domain(domain) {
        return Ok(ascii);
    }
    let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| EmailError::Domain)?;
    match is_host_name(&ascii) {
        true => Ok(ascii),
        false => Err(EmailError::Domain),
    }
}

/// The common case without `idna`: an ASCII domain that is already a host name and has no
/// label that UTS #46 treats specially (`xn--`, or `--` in the third and fourth places). For
/// those, `idna`'s strict mapping only lowercases; anything else goes through `idna`. A test
/// compares both on generated domains.
fn plain_ascii_domain(domain: &str) -> Option<String> {
    let lower = domain.to_ascii_lowercase();
    let special = |l: &str| l.get(2..4) == Some("--");
    let plain = domain.is_ascii() && is_host_name(&lower) && !lower.split('.').any(special);
    plain.then_some(lower)
}

/// LDH labels of 1 to 63 octets, at least two, and a top-level label that is not all digits.
fn is_host_name(ascii: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_OCTETS
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    let mut labels = 0;
    let mut last = "";
    for label in ascii.split('.') {
        if !label_ok(label) {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && !last.bytes().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
#[path = "email_tests.rs"]
mod tests;
