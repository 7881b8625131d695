//! The command line: spec drift, config checks, and the dev walk-through of the README.
use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_email-otp"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn committed_spec_matches_the_code() {
    let out = bin().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.yaml"))
            .unwrap();
    assert!(
        String::from_utf8(out.stdout).unwrap() == committed,
        "openapi/openapi.yaml is stale: run `cargo run -q -- openapi > openapi/openapi.yaml`"
    );
}

#[test]
fn spec_declares_every_error_status_with_the_error_body() {
    let out = bin()
        .args(["openapi", "--format", "json"])
        .output()
        .unwrap();
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (path, ok) in [("/otp/generate", "202"), ("/otp/verify", "200")] {
        let responses = &spec["paths"][path]["post"]["responses"];
        assert!(responses[ok].is_object(), "{path} {ok}");
        for status in ["400", "413", "415", "429", "503"] {
            let schema =
                &responses[status]["content"]["application/json; charset=utf-8"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/ErrorBody",
                "{path} {status}: {responses}"
            );
        }
        // poem-openapi writes header names upper-case; HTTP header names are case-insensitive.
        let headers = responses["429"]["headers"].as_object().unwrap();
        assert!(
            headers
                .keys()
                .any(|h| h.eq_ignore_ascii_case("retry-after")),
            "{path}"
        );
    }
}

#[test]
fn check_config_prints_the_config_with_secrets_redacted() {
    let out = bin()
        .arg("check-config")
        .env("OTP_OTP__HMAC_KEY", KEY)
        .env("OTP_SMTP__USERNAME", "mailer")
        .env("OTP_SMTP__PASSWORD", "smtp-secret-pw")
        .env(
            "OTP_MAIL__TEMPLATE_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/mailer"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[redacted]") && stdout.contains("key_prefix = \"otp\""),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY) && !stdout.contains("smtp-secret-pw"));
}

#[test]
fn start_up_fails_clearly_without_a_key_or_with_an_unknown_key() {
    let out = bin().arg("serve").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("otp.hmac_key is required"), "{err}");

    let out = bin()
        .arg("check-config")
        .env("OTP_OTP__HMAC_KEY", KEY)
        .env("OTP_SMTP__PASWORD", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pasword"));
}

/// One table for both: `check-config` must refuse exactly what start-up refuses, naming the key.
#[test]
fn check_config_and_start_up_refuse_the_same_bad_values() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("OTP_MAIL__FROM", "not a mailbox")], "mail.from"),
        (
            &[("OTP_SMTP__TLS_CA_FILE", "/nonexistent/ca.pem")],
            "smtp.tls_ca_file",
        ),
        (&[("OTP_REDIS__TIMEOUT_MS", "0")], "redis.timeout_ms"),
        (&[("OTP_SMTP__TIMEOUT_SECS", "0")], "smtp.timeout_secs"),
        (&[("OTP_SMTP__USERNAME", "mailer")], "smtp.password"),
        (
            &[
                ("OTP_SMTP__USERNAME", "mailer"),
                ("OTP_SMTP__PASSWORD", "pw"),
                ("OTP_SMTP__SECURITY", "none"),
            ],
            "smtp.security",
        ),
        (
            &[("OTP_WORKER__CONCURRENCY", "100000000")],
            "worker.concurrency",
        ),
        (
            &[
                ("OTP_WORKER__HEARTBEAT_SECS", "10"),
                ("OTP_WORKER__REAP_AFTER_SECS", "10"),
            ],
            "worker.reap_after_secs",
        ),
        (
            &[("OTP_HTTP__TRUSTED_PROXIES", "[\"10.0.0.0/33\"]")],
            "http.trusted_proxies",
        ),
        (&[("OTP_OTP__DIGITS", "12")], "otp.digits"),
        (&[("OTP_LOG__LEVEL", "info,[")], "log.level"),
        (&[("OTP_SMTP__HOSTNAME", "x")], "hostname"),
    ];
    for (env, key) in cases {
        for mode in ["check-config", "serve"] {
            let out = bin()
                .arg(mode)
                .env("OTP_OTP__HMAC_KEY", KEY)
                .env("OTP_HTTP__LISTEN", format!("127.0.0.1:{}", free_port()))
                .env("OTP_ADMIN__LISTEN", format!("127.0.0.1:{}", free_port()))
                .envs(env.iter().copied())
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{mode} accepted {env:?}");
            assert!(
                err.contains(key),
                "{mode} with {env:?} should name {key}: {err}"
            );
        }
    }
}

#[test]
fn a_broken_template_stops_the_worker_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("otp.hbs"), "{{code}} {{#if}}").unwrap();
    std::fs::write(dir.path().join("otp.txt.hbs"), "{{code}}").unwrap();
    let out = bin()
        .arg("worker")
        .env("OTP_OTP__HMAC_KEY", KEY)
        .env("OTP_MAIL__TEMPLATE_DIR", dir.path())
        .env("OTP_ADMIN__LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("otp.hbs"));
}

/// The README walk-through: `email-otp dev` with no Redis running starts its own, writes the mail
/// to outbox/, and the code from that file verifies.
#[tokio::test]
async fn dev_mode_runs_the_readme_walkthrough() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("mailer")).unwrap();
    for f in ["otp.hbs", "otp.txt.hbs"] {
        std::fs::copy(
            format!("{}/mailer/{f}", env!("CARGO_MANIFEST_DIR")),
            work.path().join("mailer").join(f),
        )
        .unwrap();
    }
    let (http, admin) = (free_port(), free_port());
    let log_path = work.path().join("dev.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_email-otp"))
        .arg("dev")
        .current_dir(work.path())
        .env(
            "OTP_REDIS__URL",
            format!("redis://127.0.0.1:{}", free_port()),
        )
        .env("OTP_HTTP__LISTEN", format!("127.0.0.1:{http}"))
        .env("OTP_ADMIN__LISTEN", format!("127.0.0.1:{admin}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let client = &client;
    eventually("dev ready", Duration::from_secs(20), || async move {
        let r = client.get(format!("http://127.0.0.1:{admin}/readyz"));
        r.send().await.is_ok_and(|r| r.status() == 200)
    })
    .await;
    let r = client
        .post(format!("http://127.0.0.1:{http}/otp/generate"))
        .json(&serde_json::json!({"email": "you@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let outbox = work.path().join("outbox");
    let eml = eventually("an .eml in outbox/", Duration::from_secs(10), || async {
        let mut dir = std::fs::read_dir(&outbox).ok()?;
        dir.find_map(|e| {
            let path = e.ok()?.path();
            path.extension().is_some_and(|x| x == "eml").then_some(path)
        })
    })
    .await;
    // The code counts once the job is finished, a moment after the file is written: ask the
    // redis-server dev started (its log names it).
    let log = std::fs::read_to_string(&log_path).unwrap();
    let dev_redis = log
        .lines()
        .filter(|l| l.contains("started a private redis-server"))
        .find_map(|l| l.split("redis://127.0.0.1:").nth(1))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no dev redis-server in the log:\n{log}"));
    TestRedis::attach(dev_redis)
        .wait_drained(Duration::from_secs(10))
        .await;
    let data = std::fs::read_to_string(eml).unwrap();
    let code = code_from(&Mail {
        from: String::new(),
        rcpt: vec![],
        data,
    });
    let r = client
        .post(format!("http://127.0.0.1:{http}/otp/verify"))
        .json(&serde_json::json!({"email": "you@example.com", "otp": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["message"],
        "OTP is correct"
    );
    let pid = child.id().unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}
