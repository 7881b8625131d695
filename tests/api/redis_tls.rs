//! Redis over TLS (`rediss://`) with a private CA (`redis.tls_ca_file`) and an ACL user with a
//! password, against a real redis-server started with a certificate made here.
use std::time::Duration;

use crate::app::TestApp;
use crate::helpers::*;
use crate::smtp_sink::SmtpSink;
use crate::stack::base_env;
use crate::test_redis::TestRedis;

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn make_certs(dir: &std::path::Path) {
    let ca = crate::tls::private_ca();
    std::fs::write(dir.join("ca.pem"), ca.ca_pem).unwrap();
    std::fs::write(dir.join("server.pem"), ca.leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), ca.leaf_key.serialize_pem()).unwrap();
}

#[tokio::test]
async fn rediss_with_a_private_ca_and_an_acl_user_works_and_a_wrong_secret_does_not() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let path = |f: &str| certs.path().join(f).to_string_lossy().into_owned();
    let tls_port = free_port().to_string();
    // The plain port stays open for the test's own checks; the service uses only the TLS port.
    let redis = TestRedis::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &path("server.pem"),
        "--tls-key-file",
        &path("server.key"),
        "--tls-auth-clients",
        "no",
        "--user",
        "app",
        "on",
        ">s3cret-pass",
        "~*",
        "&*",
        "+@all",
    ])
    .await;
    let sink = SmtpSink::start().await;
    let mut env = base_env(&redis, &sink);
    let url = |user_pass: &str| format!("rediss://{user_pass}@127.0.0.1:{tls_port}");
    env.insert("OTP_REDIS__URL".into(), url("app:s3cret-pass"));
    env.insert("OTP_REDIS__TLS_CA_FILE".into(), path("ca.pem"));
    let app = TestApp::spawn("serve", &env).await;
    let r = app.generate("tls@example.com").await;
    assert_eq!(r.status, 202, "{}\n{}", r.body, app.logs());
    let mail = sink
        .wait_for("tls@example.com", 1, Duration::from_secs(10))
        .await;
    let code = code_from(&mail[0]);
    eventually(
        "the code verifies over TLS",
        Duration::from_secs(5),
        || async { app.verify("tls@example.com", &code).await.status == 200 },
    )
    .await;
    drop(app);

    for (what, user_pass, ca) in [
        ("a wrong password", "app:wrong", Some(path("ca.pem"))),
        ("an untrusted certificate", "app:s3cret-pass", None),
    ] {
        let mut env = env.clone();
        env.insert("OTP_REDIS__URL".into(), url(user_pass));
        match ca {
            Some(ca) => env.insert("OTP_REDIS__TLS_CA_FILE".into(), ca),
            None => env.remove("OTP_REDIS__TLS_CA_FILE"),
        };
        let app = TestApp::spawn("api", &env).await;
        let r = app.generate("tls2@example.com").await;
        assert_eq!(r.status, 503, "{what}: {}", r.body);
        assert_eq!(r.code(), "unavailable", "{what}");
    }
}
