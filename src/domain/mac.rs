//! Keyed hashing with the server's pepper. The key never reaches Redis, so a Redis dump can neither
//! be brute-forced for codes (10^6 guesses) nor mapped back to addresses.
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::code::{MAX_DIGITS, MIN_DIGITS};
use super::{EmailAddress, OtpCode};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 keyed once at start-up; cloning the keyed state skips the key schedule per call.
#[derive(Clone)]
pub struct MacKey(HmacSha256);

/// The stored form of a code: HMAC(key, "code" ‖ identity ‖ code), 32 raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeMac(pub [u8; 32]);

impl MacKey {
    /// HMAC's own key preparation (RFC 2104 §2): a key longer than the 64-byte block is hashed
    /// first, then the key is zero-padded to the block. Done here so construction cannot fail.
    pub fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > block.len() {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        Self(HmacSha256::new(&block.into()))
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

    /// The code of one job: uniform over `digits` digits, by rejection sampling over successive
    /// 64-bit words of HMAC(key, "job-code" ‖ job id ‖ counter). Without the key, knowing the job
    /// (which sits in Redis) tells nothing about its code.
    pub fn job_code(&self, job_id: &str, digits: u32) -> OtpCode {
        let digits = digits.clamp(MIN_DIGITS, MAX_DIGITS);
        let range = 10u64.pow(digits);
        // The largest multiple of `range` that fits: values at or above it would bias the result.
        let limit = u64::MAX - (u64::MAX % range);
        let mut counter = 0u64;
        loop {
            let d = self.digest(&[b"job-code", job_id.as_bytes(), &counter.to_be_bytes()]);
            for word in d.chunks_exact(8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                let n = u64::from_be_bytes(w);
                if n < limit {
                    return OtpCode::from_number(n % range, digits);
                }
            }
            // Four words all rejected: probability below 2^-150 for 10 digits; try the next block.
            counter += 1;
        }
    }

    /// A Redis hash tag for per-address keys, so key names do not reveal addresses.
    pub fn address_tag(&self, purpose: &str, canonical: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let d = self.digest(&[purpose.as_bytes(), canonical.as_bytes()]);
        // Written digit by digit: `hex::encode` collects an iterator of chars (a tenth of the
        // cost of a verify's key names).
        let mut tag = String::with_capacity(32);
        for b in &d[..16] {
            tag.push(char::from(HEX[usize::from(b >> 4)]));
            tag.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        tag
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
    fn job_codes_are_stable_per_job_and_uniform() {
        let k = MacKey::new(b"key one");
        assert_eq!(k.job_code("job-1", 6), k.job_code("job-1", 6));
        assert_ne!(
            k.job_code("job-1", 6),
            MacKey::new(b"key two").job_code("job-1", 6)
        );
        assert_eq!(k.job_code("job-1", 8).reveal().len(), 8);
        let n = 20_000;
        let mut counts = [0u32; 10];
        for i in 0..n {
            let code = k.job_code(&format!("job-{i}"), 6);
            counts[usize::from(code.reveal().as_bytes()[0] - b'0')] += 1;
        }
        super::super::assert_uniform_digits(&counts, "first digits of job codes");
    }

    #[test]
    fn key_preparation_matches_the_hmac_crate_for_every_length() {
        for len in [0, 1, 31, 32, 63, 64, 65, 200] {
            let key = vec![7u8; len];
            let reference = HmacSha256::new_from_slice(&key).unwrap();
            let a = MacKey(reference).digest(&[b"x"]);
            assert_eq!(MacKey::new(&key).digest(&[b"x"]), a, "key length {len}");
        }
    }

    #[test]
    fn tags_are_hex_and_do_not_contain_the_address() {
        let tag = MacKey::new(b"k").address_tag("id", "user@example.com");
        let d = MacKey::new(b"k").digest(&[b"id", b"user@example.com"]);
        assert_eq!(tag, hex::encode(&d[..16]));
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            tag,
            MacKey::new(b"k").address_tag("limit", "user@example.com")
        );
    }
}
