//! The worker under crashes, shutdown and SMTP faults: nothing is lost, failures are classified.
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::helpers::*;

async fn queue_len(redis: &TestRedis, key: &str) -> i64 {
    let mut c = redis.connection().await;
    let t: String = redis::cmd("TYPE")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    let cmd = if t == "zset" { "ZCARD" } else { "LLEN" };
    redis::cmd(cmd).arg(key).query_async(&mut c).await.unwrap()
}

/// Jobs under a lease (the processing zset).
async fn processing_total(redis: &TestRedis) -> i64 {
    queue_len(redis, "{otp}:queue:processing").await
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{series} not in metrics"))
}

#[tokio::test]
async fn a_worker_killed_mid_jobs_loses_none_and_only_one_mailed_code_per_address_verifies() {
    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await;
    sink.state.delay_ms.store(1500, Ordering::SeqCst);
    let mut env = base_env(&redis, &sink);
    env.insert("OTP_WORKER__CONCURRENCY".into(), "4".into());
    let api = TestApp::spawn("api", &env).await;
    let doomed = TestApp::spawn("worker", &env).await;
    let addrs: Vec<String> = (0..8).map(|i| format!("crash{i}@example.com")).collect();
    for a in &addrs {
        assert_eq!(api.generate(a).await.0, 202);
    }
    wait_until("sends in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert!(
        processing_total(&redis).await >= 1,
        "jobs are leased to the doomed worker"
    );
    doomed.signal("KILL");
    sink.state.delay_ms.store(0, Ordering::SeqCst);

    let rescuer = TestApp::spawn("worker", &env).await;
    for a in &addrs {
        sink.wait_for(a, 1, Duration::from_secs(20)).await;
    }
    wait_until("queue drained", Duration::from_secs(10), || async {
        queue_len(&redis, "{otp}:queue:pending").await == 0 && processing_total(&redis).await == 0
    })
    .await;
    assert!(metric(&rescuer.metrics().await, "email_otp_jobs_reaped_total") >= 1.0);
    tokio::time::sleep(Duration::from_millis(1600)).await; // let any half-sent mail of the dead worker land
    for a in &addrs {
        let codes: Vec<String> = sink.mails_to(a).iter().map(code_from).collect();
        let mut verified = 0;
        for c in &codes {
            verified += usize::from(api.verify(a, c).await.0 == 200);
        }
        assert_eq!(verified, 1, "{a}: codes {codes:?}");
    }
}

#[tokio::test]
async fn sigterm_drains_jobs_in_flight_and_exits_zero() {
    let mut s = Stack::start(&[NO_LIMITS[0], NO_LIMITS[1]]).await;
    s.sink.state.delay_ms.store(1000, Ordering::SeqCst);
    let addrs: Vec<String> = (0..10).map(|i| format!("drain{i}@example.com")).collect();
    for a in &addrs {
        assert_eq!(s.app.generate(a).await.0, 202);
    }
    let sink = s.sink.clone();
    wait_until("sends in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 4
    })
    .await;
    s.app.signal("TERM");
    assert_eq!(
        s.app.wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "log:\n{}",
        s.app.logs()
    );
    for a in &addrs {
        assert_eq!(s.sink.mails_to(a).len(), 1, "{a}");
    }
    assert_eq!(queue_len(&s.redis, "{otp}:queue:pending").await, 0);
    assert_eq!(processing_total(&s.redis).await, 0);
    let api = TestApp::spawn("api", &s.env).await;
    let code = code_from(&s.sink.mails_to(&addrs[0])[0]);
    assert_eq!(
        api.verify(&addrs[0], &code).await.0,
        200,
        "the drained mail's code is live"
    );
}

#[tokio::test]
async fn smtp_4xx_is_retried_with_backoff_then_delivered() {
    let s = Stack::start(&[]).await;
    s.sink.state.fail_transient.store(2, Ordering::SeqCst);
    let started = std::time::Instant::now();
    assert_eq!(s.app.generate("retry@example.com").await.0, 202);
    let mails = s
        .sink
        .wait_for("retry@example.com", 1, Duration::from_secs(15))
        .await;
    // Backoff 200 ms then 400 ms (retry_base_ms = 200).
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        s.app
            .verify("retry@example.com", &code_from(&mails[0]))
            .await
            .0,
        200
    );
    let m = s.app.metrics().await;
    assert_eq!(metric(&m, "email_otp_jobs_total{outcome=\"retried\"}"), 2.0);
    assert_eq!(metric(&m, "email_otp_jobs_total{outcome=\"sent\"}"), 1.0);
    assert_eq!(
        metric(&m, "email_otp_smtp_send_errors_total{class=\"transient\"}"),
        2.0
    );
}

#[tokio::test]
async fn smtp_5xx_goes_to_dead_letter_without_retry() {
    let s = Stack::start(&[]).await;
    s.sink.state.fail_permanent.store(true, Ordering::SeqCst);
    assert_eq!(s.app.generate("dead@example.com").await.0, 202);
    let redis = &s.redis;
    wait_until("dead letter", Duration::from_secs(10), || async {
        redis.llen("{otp}:queue:dead").await == 1
    })
    .await;
    let dump = s.redis.dump().await;
    let (_, _, dead) = dump
        .iter()
        .find(|(k, _, _)| k == "{otp}:queue:dead")
        .unwrap();
    let job: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(job["email"], "dead@example.com");
    assert!(job["last_error"].as_str().unwrap().contains("550"), "{job}");
    let m = s.app.metrics().await;
    assert_eq!(metric(&m, "email_otp_jobs_total{outcome=\"retried\"}"), 0.0);
    assert_eq!(
        metric(&m, "email_otp_jobs_total{outcome=\"dead_lettered\"}"),
        1.0
    );
    assert_eq!(metric(&m, "email_otp_queue_depth{state=\"dead\"}"), 1.0);
}

#[tokio::test]
async fn persistent_4xx_is_dead_lettered_after_max_attempts() {
    let s = Stack::start(&[
        ("OTP_WORKER__MAX_ATTEMPTS", "3"),
        ("OTP_WORKER__RETRY_BASE_MS", "50"),
    ])
    .await;
    s.sink.state.fail_transient.store(100, Ordering::SeqCst);
    assert_eq!(s.app.generate("flaky@example.com").await.0, 202);
    let redis = &s.redis;
    wait_until("dead letter", Duration::from_secs(10), || async {
        redis.llen("{otp}:queue:dead").await == 1
    })
    .await;
    assert_eq!(s.sink.state.data_commands.load(Ordering::SeqCst), 3);
    let m = s.app.metrics().await;
    assert_eq!(metric(&m, "email_otp_jobs_total{outcome=\"retried\"}"), 2.0);
    assert_eq!(
        metric(&m, "email_otp_jobs_total{outcome=\"dead_lettered\"}"),
        1.0
    );
}

#[tokio::test]
async fn jobs_older_than_the_code_ttl_are_dropped_and_counted_and_malformed_ones_dead_lettered() {
    let s = Stack::start_mode("worker", &[]).await;
    let old_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 700_000;
    let old = serde_json::json!({"id": "old1", "email": "old@example.com", "created_ms": old_ms})
        .to_string();
    let mut c = s.redis.connection().await;
    let _: i64 = redis::cmd("LPUSH")
        .arg("{otp}:queue:pending")
        .arg(&old)
        .arg("not json")
        .query_async(&mut c)
        .await
        .unwrap();
    let app = &s.app;
    wait_until("job handled", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        metric(&m, "email_otp_jobs_total{outcome=\"dropped_expired\"}") == 1.0
            && metric(&m, "email_otp_jobs_total{outcome=\"dead_lettered\"}") == 1.0
    })
    .await;
    assert!(s.sink.mails().is_empty());
    assert_eq!(s.redis.llen("{otp}:queue:dead").await, 1);
}

#[tokio::test]
async fn smtp_auth_is_used_when_configured() {
    let s = Stack::start(&[
        ("OTP_SMTP__USERNAME", "mailer"),
        ("OTP_SMTP__PASSWORD", "pa55word"),
        // The sink speaks plain SMTP on loopback.
        ("OTP_SMTP__ALLOW_INSECURE_AUTH", "true"),
    ])
    .await;
    let code = s.code_for("auth@example.com", 1).await;
    assert_eq!(s.app.verify("auth@example.com", &code).await.0, 200);
    assert_eq!(
        s.sink.state.auth.lock().unwrap().clone(),
        vec!["mailer:pa55word".to_string()]
    );
}

#[tokio::test]
async fn connections_are_reused_and_a_stale_one_is_replaced_without_a_retry() {
    let s = Stack::start(&[NO_LIMITS[0], NO_LIMITS[1], ("OTP_WORKER__CONCURRENCY", "1")]).await;
    for i in 0..3 {
        s.code_for(&format!("reuse{i}@example.com"), 1).await;
    }
    assert_eq!(
        s.sink.state.connections.load(Ordering::SeqCst),
        1,
        "one pooled connection for sequential mails"
    );
    s.sink.state.close_after_mail.store(true, Ordering::SeqCst);
    for i in 0..3 {
        s.code_for(&format!("stale{i}@example.com"), 1).await;
    }
    let m = s.app.metrics().await;
    assert_eq!(
        metric(&m, "email_otp_jobs_total{outcome=\"retried\"}"),
        0.0,
        "stale connections cost no job retry"
    );
    assert_eq!(metric(&m, "email_otp_jobs_total{outcome=\"sent\"}"), 6.0);
}

/// STARTTLS (the default `smtp.security`) against a relay whose certificate comes from a private
/// CA named by `smtp.tls_ca_file`; without that CA the handshake fails and nothing is mailed.
#[tokio::test]
async fn starttls_with_a_private_ca_delivers_and_an_untrusted_certificate_does_not() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::new(ca_params, ca_key))
        .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let redis = TestRedis::start().await;
    let sink = SmtpSink::start().await;
    *sink.state.tls.lock().unwrap() =
        Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server)));
    let mut env = base_env(&redis, &sink);
    env.insert("OTP_SMTP__SECURITY".into(), "starttls".into());
    env.insert("OTP_WORKER__MAX_ATTEMPTS".into(), "1".into());

    let untrusting = TestApp::spawn("serve", &env).await;
    assert_eq!(untrusting.generate("untrusted@example.com").await.0, 202);
    wait_until("dead letter", Duration::from_secs(10), || async {
        redis.llen("{otp}:queue:dead").await == 1
    })
    .await;
    assert!(
        sink.mails().is_empty(),
        "nothing mailed over an unverified TLS session"
    );
    let dump = redis.dump().await;
    let (_, _, dead) = dump
        .iter()
        .find(|(k, _, _)| k == "{otp}:queue:dead")
        .unwrap();
    assert!(
        dead[0].to_lowercase().contains("certificate"),
        "fails on the certificate: {}",
        dead[0]
    );
    drop(untrusting);

    env.insert(
        "OTP_SMTP__TLS_CA_FILE".into(),
        ca_file.display().to_string(),
    );
    let app = TestApp::spawn("serve", &env).await;
    assert_eq!(app.generate("tls@example.com").await.0, 202);
    let mails = sink
        .wait_for("tls@example.com", 1, Duration::from_secs(10))
        .await;
    assert!(
        sink.state.tls_sessions.load(Ordering::SeqCst) >= 1,
        "the mail went over TLS"
    );
    assert_eq!(
        app.verify("tls@example.com", &code_from(&mails[0])).await.0,
        200
    );
}
