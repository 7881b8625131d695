//! Smoke test for the progenitor client: generate → code from the outbox → verify → 200; a wrong
//! code → typed 400 `otp_incorrect`; a second generate → 429 with `Retry-After` read by the caller.
//! Usage: email-otp-rust-smoke BASE_URL OUTBOX_DIR EMAIL
use std::time::{Duration, Instant};

progenitor::generate_api!(spec = "../../../openapi/openapi.yaml");

use types::{ErrorCode, GenerateRequest, VerifyRequest};

/// The newest `.eml` in `dir` that is addressed to `email`, and the code in its text part: a line
/// that holds only digits (indented in the template).
fn code_from_outbox(dir: &str, email: &str) -> Option<String> {
    let mut newest: Option<(std::time::SystemTime, String)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        if !text
            .lines()
            .any(|l| l.starts_with("To:") && l.contains(email))
        {
            continue;
        }
        let code = text
            .lines()
            .filter(|l| l.starts_with(' '))
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()));
        let modified = entry.metadata().ok()?.modified().ok()?;
        if let Some(code) = code
            && newest.as_ref().is_none_or(|(t, _)| modified > *t)
        {
            newest = Some((modified, code.to_owned()));
        }
    }
    newest.map(|(_, c)| c)
}

async fn wait_for_code(dir: &str, email: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(code) = code_from_outbox(dir, email) {
            return code;
        }
        assert!(Instant::now() < deadline, "no mail for {email} in {dir}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, outbox, email] = args.as_slice() else {
        eprintln!("usage: email-otp-rust-smoke BASE_URL OUTBOX_DIR EMAIL");
        std::process::exit(2);
    };
    let client = Client::new(base);

    // generate → 202
    let accepted = client
        .generate_otp(&GenerateRequest {
            email: email.parse().unwrap(),
        })
        .await
        .expect("generate");
    assert_eq!(accepted.status().as_u16(), 202);
    assert_eq!(accepted.status.to_string(), "accepted");
    assert!(accepted.expires_in > 0 && accepted.retry_after > 0, "{accepted:?}");

    let code = wait_for_code(outbox, email).await;

    // a wrong code → typed 400 with code otp_incorrect
    let wrong = if code == "000000" { "111111" } else { "000000" };
    match client
        .verify_otp(&VerifyRequest {
            email: email.parse().unwrap(),
            otp: wrong.parse().unwrap(),
        })
        .await
    {
        Err(Error::ErrorResponse(r)) => {
            assert_eq!(r.status().as_u16(), 400);
            assert_eq!(r.code, ErrorCode::OtpIncorrect, "{:?}", r.message);
        }
        other => panic!("wrong code: expected a 400 ErrorResponse, got {other:?}"),
    }

    // the right code → 200 verified
    let verified = client
        .verify_otp(&VerifyRequest {
            email: email.parse().unwrap(),
            otp: code.parse().unwrap(),
        })
        .await
        .expect("verify");
    assert_eq!(verified.status().as_u16(), 200);
    assert!(verified.verified);
    assert_eq!(verified.message, "OTP is correct");

    // a second generate within the cooldown → 429 with Retry-After
    match client
        .generate_otp(&GenerateRequest {
            email: email.parse().unwrap(),
        })
        .await
    {
        Err(Error::ErrorResponse(r)) => {
            assert_eq!(r.status().as_u16(), 429);
            assert_eq!(r.code, ErrorCode::RateLimited);
            let retry_after: u64 = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("Retry-After header");
            assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
            println!("rust client: verified, otp_incorrect, 429 Retry-After={retry_after}");
        }
        other => panic!("second generate: expected a 429 ErrorResponse, got {other:?}"),
    }
}
