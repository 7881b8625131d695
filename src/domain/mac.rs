//! Keyed hashing with the server's pepper. The key never reaches Redis, so a Redis dump can neither
//! be brute-forced for codes (10^6 guesses) nor mapped back to addresses.
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{EmailAddress, OtpCode};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 keyed once at start-up; cloning the keyed state skips the key schedule per call.
#[derive(Clone)]
pub struct MacKey(HmacSha256);

/// The stored form of a code: HMAC(key, "code" ‖ identity ‖ code), 32 raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeMac(pub [u8; 32]);

impl MacKey {
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail; the fallback only satisfies types.
        Self(
            HmacSha256::new_from_slice(key)
                .unwrap_or_else(|_| HmacSha256::new(&Default::default())),
        )
    }

    fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.0.clone();
        for part in parts {
            // NUL cannot occur in an address or a code, so the encoding is unambiguous.
            mac.update(part);
            mac.update(b"\0");
        }
        mac.finalize().into_bytes().into()
    }

    pub fn code_mac(&self, address: &EmailAddress, code: &OtpCode) -> CodeMac {
        CodeMac(self.digest(&[
            b"code",
            address.identity().as_bytes(),
            code.reveal().as_bytes(),
        ]))
    }

    /// A Redis hash tag for per-address keys, so key names do not reveal addresses.
    pub fn address_tag(&self, purpose: &str, canonical: &str) -> String {
        let d = self.digest(&[purpose.as_bytes(), canonical.as_bytes()]);
        hex::encode(&d[..16])
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey([redacted])")
    }
}

impl fmt::Debug for CodeMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeMac({})", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    #[test]
    fn mac_binds_key_address_and_code() {
        let k = MacKey::new(b"key one");
        let code = OtpCode::parse("012345", 6).unwrap();
        let base = k.code_mac(&addr("a@example.com"), &code);
        assert_eq!(base, k.code_mac(&addr("A@Example.com"), &code));
        assert_ne!(base, k.code_mac(&addr("b@example.com"), &code));
        assert_ne!(
            base,
            k.code_mac(
                &addr("a@example.com"),
                &OtpCode::parse("012346", 6).unwrap()
            )
        );
        assert_ne!(
            base,
            MacKey::new(b"key two").code_mac(&addr("a@example.com"), &code)
        );
    }

    #[test]
    fn tags_are_hex_and_do_not_contain_the_address() {
        let tag = MacKey::new(b"k").address_tag("id", "user@example.com");
        assert_eq!(tag.len(), 32);
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            tag,
            MacKey::new(b"k").address_tag("limit", "user@example.com")
        );
    }
}
