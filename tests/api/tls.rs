//! Mail over STARTTLS to a relay whose certificate only a configured CA vouches for.
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::helpers::*;

/// A private CA and a certificate for 127.0.0.1 that it signed.
pub struct PrivateCa {
    pub ca_pem: String,
    pub leaf: rcgen::Certificate,
    pub leaf_key: rcgen::KeyPair,
}

pub fn private_ca() -> PrivateCa {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::new(ca_params, ca_key))
        .unwrap();
    PrivateCa {
        ca_pem: ca_cert.pem(),
        leaf,
        leaf_key,
    }
}

/// STARTTLS (the default `smtp.security`) against a relay whose certificate comes from a private
/// CA named by `smtp.tls_ca_file`; without that CA the handshake fails and nothing is mailed.
#[tokio::test]
async fn starttls_with_a_private_ca_delivers_and_an_untrusted_certificate_does_not() {
    let PrivateCa {
        ca_pem,
        leaf,
        leaf_key,
    } = private_ca();
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
    std::fs::write(&ca_file, ca_pem).unwrap();

    let mut s = Stack::builder()
        .env("OTP_SMTP__SECURITY", "starttls")
        .env("OTP_WORKER__MAX_ATTEMPTS", 1)
        .start()
        .await;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
    *s.sink.state.tls.lock().unwrap() = Some(acceptor);

    assert_eq!(s.app.generate("untrusted@example.com").await.status, 202);
    let redis = &s.redis;
    eventually("dead letter", Duration::from_secs(10), || async {
        redis.llen(DEAD).await == 1
    })
    .await;
    assert!(
        s.sink.mails().is_empty(),
        "nothing mailed over an unverified TLS session"
    );
    let dead = s.redis.values(DEAD).await;
    assert!(
        dead[0].to_lowercase().contains("certificate"),
        "fails on the certificate: {}",
        dead[0]
    );

    let ca_file = ca_file.display().to_string();
    s.restart_with("OTP_SMTP__TLS_CA_FILE", &ca_file).await;
    let code = s.code_for("tls@example.com").await;
    assert!(
        s.sink.state.tls_sessions.load(Ordering::SeqCst) >= 1,
        "the mail went over TLS"
    );
    assert_eq!(s.app.verify("tls@example.com", &code).await.status, 200);
}
