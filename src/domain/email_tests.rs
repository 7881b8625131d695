//! Address parsing: what is accepted, refused, and the canonical forms.
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

/// `idna`'s answer for a domain, as `to_ascii_domain` used to compute it for every domain.
fn through_idna(domain: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii_strict(domain).ok()?;
    is_host_name(&ascii).then_some(ascii)
}

#[test]
fn ordinary_domains_skip_idna() {
    assert_eq!(
        plain_ascii_domain("Mail.Example.COM").as_deref(),
        Some("mail.example.com")
    );
    assert_eq!(plain_ascii_domain("xn--bcher-kva.example"), None);
    assert_eq!(plain_ascii_domain("ab--cd.example"), None);
    assert_eq!(plain_ascii_domain("bücher.example"), None);
}

proptest! {
    #[test]
    fn the_ascii_shortcut_answers_as_idna_does(
        labels in prop::collection::vec("(xn--)?[a-zA-Z0-9-]{0,5}(--)?[a-zA-Z0-9]{0,3}|[0-9]{1,3}|[a-z]{60,66}", 1..5),
        dot in prop::option::of(Just(".")),
    ) {
        let domain = labels.join(".") + dot.unwrap_or("");
        if let Some(ours) = plain_ascii_domain(&domain) {
            prop_assert_eq!(Some(ours), through_idna(&domain), "{}", domain);
        }
        prop_assert_eq!(to_ascii_domain(&domain).ok(), through_idna(&domain), "{}", domain);
    }
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
