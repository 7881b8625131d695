//! Personal data and secrets out of text that leaves the process (logs, span events, dead
//! letters, printed configuration): addresses masked, URL passwords removed.

/// Masks every address in free text, e.g. a relay's "550 5.1.1 <user@example.com> unknown" →
/// "550 5.1.1 <u***@example.com> unknown". A token counts as an address when it holds an '@' with
/// something on both sides; tokens end at whitespace and at the punctuation around addresses.
pub fn mask_addresses(text: &str) -> String {
    let is_boundary = |c: char| c.is_whitespace() || "<>,;()\"'[]{}=:".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        match token.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                out.extend(local.chars().take(1));
                out.push_str("***@");
                out.push_str(domain);
            }
            _ => out.push_str(token),
        }
        token.clear();
    };
    for c in text.chars() {
        if is_boundary(c) {
            flush(&mut token, &mut out);
            out.push(c);
        } else {
            token.push(c);
        }
    }
    flush(&mut token, &mut out);
    out
}

/// `scheme://user:password@host/…` → `scheme://user:[redacted]@host/…`, `scheme://token@host` →
/// `scheme://[redacted]@host`; anything else unchanged.
pub fn redact_url_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        // A user without a password is often a token: redact it whole.
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:[redacted]@{host}{tail}"),
            None => format!("{scheme}://[redacted]@{host}{tail}"),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_relay_replies_are_masked() {
        assert_eq!(
            mask_addresses("550 5.1.1 <jane.doe@example.com>: Recipient address rejected"),
            "550 5.1.1 <j***@example.com>: Recipient address rejected"
        );
        assert_eq!(
            mask_addresses("to=bob@x.org, from=alice@y.net"),
            "to=b***@x.org, from=a***@y.net"
        );
        assert_eq!(
            mask_addresses("no address @ here, a@ or @b"),
            "no address @ here, a@ or @b"
        );
        assert!(!mask_addresses("\"user@example.com\"").contains("user@"));
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_credentials("https://otel:s3cret@collector:4318/v1/traces"),
            "https://otel:[redacted]@collector:4318/v1/traces"
        );
        assert_eq!(
            redact_url_credentials("https://token@collector:4318"),
            "https://[redacted]@collector:4318"
        );
        assert_eq!(
            redact_url_credentials("http://collector:4318/a@b"),
            "http://collector:4318/a@b"
        );
        assert_eq!(redact_url_credentials("not a url"), "not a url");
    }
}
