//! The one-time code: N decimal digits from the OS CSPRNG, uniform and zero-padded.
use std::fmt;

use rand::RngExt;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;

pub const MIN_DIGITS: u32 = 6;
pub const MAX_DIGITS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the code must be exactly {digits} digits (0-9)")]
pub struct CodeFormatError {
    pub digits: u32,
}

/// A code of `digits` ASCII digits. `Debug` never shows it, so it cannot leak through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// Draws from the OS generator; `random_range` rejects out-of-range samples, so no modulo bias.
    pub fn generate(digits: u32) -> Self {
        let digits = digits.clamp(MIN_DIGITS, MAX_DIGITS);
        let bound = 10u64.pow(digits);
        let n = UnwrapErr(SysRng).random_range(0..bound);
        Self::from_number(n, digits)
    }

    pub(super) fn from_number(n: u64, digits: u32) -> Self {
        Self(format!("{n:0width$}", width = digits as usize))
    }

    pub fn parse(input: &str, digits: u32) -> Result<Self, CodeFormatError> {
        if input.len() == digits as usize && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(CodeFormatError { digits })
        }
    }

    /// The digits, for the mail body only.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_codes_are_six_digits_and_cover_leading_zeros() {
        let codes: Vec<OtpCode> = (0..5000).map(|_| OtpCode::generate(6)).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.reveal().len() == 6 && c.reveal().bytes().all(|b| b.is_ascii_digit()))
        );
        // P(no leading zero in 5000 uniform draws) = 0.9^5000: a failure means bias, not bad luck.
        let leading_zero = codes.iter().filter(|c| c.reveal().starts_with('0')).count();
        assert!(
            (350..650).contains(&leading_zero),
            "{leading_zero} of 5000 start with 0"
        );
    }

    #[test]
    fn digits_are_uniform_per_position() {
        let n = 20_000;
        let mut counts = [[0u32; 10]; 6];
        for _ in 0..n {
            for (pos, b) in OtpCode::generate(6).reveal().bytes().enumerate() {
                counts[pos][(b - b'0') as usize] += 1;
            }
        }
        for (pos, row) in counts.iter().enumerate() {
            super::super::assert_uniform_digits(row, &format!("position {pos}"));
        }
    }

    #[test]
    fn debug_does_not_reveal_the_code() {
        let code = OtpCode::parse("123456", 6).unwrap();
        assert!(!format!("{code:?}").contains("123456"));
    }

    proptest! {
        #[test]
        fn formatting_zero_pads_to_the_width(n in 0u64..1_000_000) {
            let code = OtpCode::from_number(n, 6);
            prop_assert_eq!(code.reveal().len(), 6);
            prop_assert_eq!(code.reveal().parse::<u64>().unwrap(), n);
            prop_assert_eq!(OtpCode::parse(code.reveal(), 6).unwrap(), code);
        }

        #[test]
        fn parse_accepts_only_exact_digit_strings(s in "\\PC{0,10}") {
            let ok = s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(OtpCode::parse(&s, 6).is_ok(), ok);
        }
    }
}
