//! How a test server is reached and whom it lets in: TLS with a private CA, an ACL user or a
//! plain password. The same value gives the server's command line and the test's own clients, so
//! the two cannot disagree.
use std::sync::Arc;
use std::time::Duration;

/// A private CA and a certificate for 127.0.0.1 it signed, as PEM files redis-server reads.
#[derive(Clone)]
pub struct Tls {
    pub ca_pem: String,
    /// Shared: every server of a deployment uses the same files, kept until the last user goes.
    dir: Arc<tempfile::TempDir>,
}

impl Tls {
    pub fn private_ca() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Names of their own: OpenSSL (redis-server, redis-cli) takes a leaf whose subject is
        // its issuer's for self-signed, and refuses it.
        ca_params.distinguished_name = name("test CA");
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        leaf_params.distinguished_name = name("127.0.0.1");
        let leaf = leaf_params
            .signed_by(&leaf_key, &rcgen::Issuer::new(ca_params, ca_key))
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
        std::fs::write(dir.path().join("server.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), leaf_key.serialize_pem()).unwrap();
        Self {
            ca_pem,
            dir: Arc::new(dir),
        }
    }

    /// `redis.tls_ca_file` and `redis-cli --cacert`.
    pub fn ca_file(&self) -> String {
        self.file("ca.pem")
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

fn name(common: &str) -> rcgen::DistinguishedName {
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, common);
    name
}

/// What a server asks of its clients. The default: plain TCP, no password.
#[derive(Clone, Default)]
pub struct Access {
    pub tls: Option<Tls>,
    /// An ACL user with every right; the default user is then switched off.
    pub user: Option<String>,
    /// The ACL user's password, or without a user `requirepass`.
    pub password: Option<String>,
}

impl Access {
    /// `--port` (TLS only: `--port 0 --tls-port`), certificates and users for `port`.
    pub fn server_args(&self, port: u16) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut add = |more: &[&str]| args.extend(more.iter().map(|a| a.to_string()));
        match &self.tls {
            Some(tls) => {
                add(&["--port", "0", "--tls-port", &port.to_string()]);
                add(&["--tls-cert-file", &tls.file("server.pem")]);
                add(&["--tls-key-file", &tls.file("server.key")]);
                add(&["--tls-ca-cert-file", &tls.ca_file()]);
                // Servers, sentinels and replicas reach each other over TLS too.
                add(&["--tls-auth-clients", "no", "--tls-replication", "yes"]);
            }
            None => add(&["--port", &port.to_string()]),
        }
        match (&self.user, &self.password) {
            (Some(user), Some(pass)) => {
                add(&["--user", "default", "off"]);
                add(&[
                    "--user",
                    user,
                    "on",
                    &format!(">{pass}"),
                    "~*",
                    "&*",
                    "+@all",
                ]);
            }
            (None, Some(pass)) => add(&["--requirepass", pass]),
            _ => {}
        }
        args
    }

    /// `redis://` or `rediss://`, with the credentials, at 127.0.0.1:`port`.
    pub fn url(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let credentials = match (&self.user, &self.password) {
            (Some(user), Some(pass)) => format!("{user}:{pass}@"),
            (None, Some(pass)) => format!(":{pass}@"),
            _ => String::new(),
        };
        format!("{scheme}://{credentials}127.0.0.1:{port}")
    }

    /// The `redis-cli` options that reach such a server.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(tls) = &self.tls {
            args.extend(["--tls".into(), "--cacert".into(), tls.ca_file()]);
        }
        if let Some(user) = &self.user {
            args.extend(["--user".into(), user.clone()]);
        }
        if let Some(pass) = &self.password {
            args.extend(["--pass".into(), pass.clone(), "--no-auth-warning".into()]);
        }
        args
    }

    /// One command to the server on `port` itself (no cluster routing).
    pub async fn cmd<T: redis::FromRedisValue>(
        &self,
        port: u16,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let url = self.url(port);
        let client = match &self.tls {
            Some(tls) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(tls.ca_pem.clone().into_bytes()),
                },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut conn).await
    }
}
