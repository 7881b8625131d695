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
        super::concat(&[&self.local.to_ascii_lowercase(), "@", &self.domain_ascii])
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
    let ascii = idna::domain_to_ascii_strict(domain).map_err(|_| EmailError::Domain)?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_OCTETS
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let tld_is_numeric = labels
        .last()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_digit()));
    if labels.len() < 2 || !labels.iter().all(label_ok) || tld_is_numeric {
        return Err(EmailError::Domain);
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "user@example.com",
            "a.b+tag@sub.example.co.uk",
            "x#$&'*/=?^_`{|}~-@example.org",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_injection_and_misrouting_payloads() {
        let bad = [
            "user@example.com\r\nBcc: x@evil.com",
            "user@example.com\n",
            "user%0d%0a@example.com",
            "a@example.com,b@example.com",
            "a@example.com;b@example.com",
            "\"a@x.com x\"@victim.com",
            "user@good.com(x)evil.com",
            "user(comment)@example.com",
            "<user@example.com>",
            "Name <user@example.com>",
            "user@[127.0.0.1]",
            "user@127.0.0.1",
            "user@localhost",
            " user@example.com",
            "user@@example.com",
            "user@",
            "@example.com",
            ".user@example.com",
            "us..er@example.com",
            "user@-example.com",
            "üser@example.com",
            "host!user@example.com",
            "user%host@example.com",
        ];
        for b in bad {
            assert!(EmailAddress::parse(b).is_err(), "accepted {b:?}");
        }
    }

    #[test]
    fn enforces_rfc5321_lengths() {
        let local64 = "a".repeat(64);
        assert!(EmailAddress::parse(&format!("{local64}@example.com")).is_ok());
        let local65 = "a".repeat(65);
        assert_eq!(
            EmailAddress::parse(&format!("{local65}@example.com")),
            Err(EmailError::LocalLength)
        );
        let at_limit = format!(
            "{}@{}.{}.{}.com",
            "a".repeat(61),
            "b".repeat(60),
            "c".repeat(63),
            "d".repeat(63)
        );
        assert_eq!(at_limit.len(), 254);
        assert!(EmailAddress::parse(&at_limit).is_ok());
        assert_eq!(
            EmailAddress::parse(&format!("{at_limit}x")),
            Err(EmailError::TooLong)
        );
    }

    #[test]
    fn idn_domains_become_punycode_and_share_a_limit_bucket() {
        let unicode = EmailAddress::parse("user@bücher.example").unwrap();
        let puny = EmailAddress::parse("User+news@XN--BCHER-KVA.example").unwrap();
        assert_eq!(unicode.domain(), "xn--bcher-kva.example");
        assert_eq!(unicode.limit_key(), puny.limit_key());
        assert_eq!(puny.for_delivery(), "User+news@xn--bcher-kva.example");
    }

    #[test]
    fn identity_ignores_case_but_keeps_tags() {
        let a = EmailAddress::parse("User@Example.COM").unwrap();
        let b = EmailAddress::parse("user@example.com").unwrap();
        let c = EmailAddress::parse("user+x@example.com").unwrap();
        assert_eq!(a.identity(), b.identity());
        assert_ne!(b.identity(), c.identity());
        assert_eq!(b.limit_key(), c.limit_key());
    }

    #[test]
    fn gmail_dots_are_one_mailbox_for_limits() {
        let a = EmailAddress::parse("first.last@googlemail.com").unwrap();
        let b = EmailAddress::parse("firstlast+x@gmail.com").unwrap();
        assert_eq!(a.limit_key(), b.limit_key());
    }

    #[test]
    fn masks_for_logs() {
        let a = EmailAddress::parse("user@example.com").unwrap();
        assert_eq!(a.masked(), "u***@example.com");
        assert!(!format!("{a:?}").contains("user"));
    }

    proptest! {
        #[test]
        fn any_accepted_address_is_one_safe_recipient(s in "\\PC{0,80}") {
            if let Ok(a) = EmailAddress::parse(&s) {
                let given = a.for_delivery();
                prop_assert!(given.len() <= 254);
                prop_assert_eq!(given.matches('@').count(), 1);
                prop_assert!(!given.chars().any(|c| c.is_control() || c.is_whitespace()
                    || "\"(),;:<>[]\\".contains(c)));
                prop_assert!(a.local_part().len() <= 64);
                prop_assert!(given.is_ascii());
            }
        }

        #[test]
        fn generated_valid_addresses_parse_and_round_trip(
            local in "[a-zA-Z0-9#$&'*+/=?^_`{|}~-]{1,20}(\\.[a-zA-Z0-9_-]{1,10}){0,2}",
            domain in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,8}(-[a-z0-9]{1,8})?)?\\.[a-z]{2,6}",
        ) {
            let input = format!("{local}@{domain}");
            let a = EmailAddress::parse(&input).unwrap();
            prop_assert_eq!(a.for_delivery(), input.clone());
            prop_assert_eq!(EmailAddress::parse(&a.for_delivery()).unwrap(), a);
        }

        #[test]
        fn control_characters_anywhere_are_rejected(pos in 0usize..16, c in prop::sample::select(vec!['\r', '\n', '\0', '\t', '\u{7f}', ' '])) {
            let mut s: Vec<char> = "user@example.com".chars().collect();
            s.insert(pos.min(s.len()), c);
            let s: String = s.into_iter().collect();
            prop_assert!(EmailAddress::parse(&s).is_err());
        }
    }
}
