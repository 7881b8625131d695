//! A primary, its replica and three sentinels that fail it over quickly.
use std::time::Duration;

use super::{Access, Server, Tls, cmd_on, free_port, wait_until};

/// What the data nodes and the sentinels demand. The default: plain TCP, no passwords.
#[derive(Clone, Copy, Default)]
pub struct SentinelOptions<'a> {
    /// An ACL user and its password on the primary and the replica (the default user is off);
    /// the replica and the sentinels log in with it.
    pub acl: Option<(&'a str, &'a str)>,
    /// TLS only, everywhere: clients, replication, sentinels among themselves.
    pub tls: Option<&'a Tls>,
    /// `requirepass` of the sentinels.
    pub sentinel_password: Option<&'a str>,
}

/// A primary with one replica, watched by three sentinels (quorum 2) that call the primary down
/// after 1 s.
pub struct RedisSentinel {
    pub master_name: String,
    pub primary: Server,
    pub replica: Server,
    pub sentinels: Vec<Server>,
    /// How the primary and the replica are reached.
    pub access: Access,
    dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub async fn start() -> Self {
        Self::start_with(SentinelOptions::default()).await
    }

    pub async fn start_with(options: SentinelOptions<'_>) -> Self {
        let access = Access {
            tls: options.tls.cloned(),
            user: options.acl.map(|(user, _)| user.to_owned()),
            password: options.acl.map(|(_, pass)| pass.to_owned()),
        };
        let sentinel_access = Access {
            tls: options.tls.cloned(),
            user: None,
            password: options.sentinel_password.map(str::to_owned),
        };
        let dir = tempfile::tempdir().unwrap();
        let (p, r) = (free_port(), free_port());
        let primary = Server::spawn_with(p, dir.path(), &[], &access);
        let p_arg = p.to_string();
        let mut replica_args = vec!["--replicaof", "127.0.0.1", &p_arg];
        if let Some((user, pass)) = options.acl {
            replica_args.extend(["--masteruser", user, "--masterauth", pass]);
        }
        let replica = Server::spawn_with(r, dir.path(), &replica_args, &access);
        primary.wait_up().await;
        replica.wait_up().await;
        let replica_ref = &replica;
        wait_until(
            "the replica in sync",
            Duration::from_secs(10),
            || async move {
                let info: String = replica_ref
                    .cmd(&["INFO", "replication"])
                    .await
                    .unwrap_or_default();
                info.contains("master_link_status:up")
            },
        )
        .await;
        let auth = match options.acl {
            Some((user, pass)) => {
                format!("sentinel auth-user m {user}\nsentinel auth-pass m {pass}\n")
            }
            None => String::new(),
        };
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            // Sentinels rewrite their configuration file: it must be their own and writable.
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            let text = format!(
                "sentinel monitor m 127.0.0.1 {p} 2\n\
                 sentinel down-after-milliseconds m 1000\n\
                 sentinel failover-timeout m 3000\n{auth}"
            );
            std::fs::write(&conf, text).unwrap();
            let conf = conf.to_string_lossy().into_owned();
            let args = [conf.as_str(), "--sentinel"];
            sentinels.push(Server::spawn_with(
                port,
                dir.path(),
                &args,
                &sentinel_access,
            ));
        }
        for s in &sentinels {
            s.wait_up().await;
            // A failover needs the sentinels to know each other and the replica.
            wait_until(
                "sentinels know each other and the replica",
                Duration::from_secs(15),
                || async move {
                    let master: Vec<String> = s
                        .cmd(&["SENTINEL", "MASTER", "m"])
                        .await
                        .unwrap_or_default();
                    let field = |name: &str| {
                        let at = master.iter().position(|f| f == name);
                        at.and_then(|i| master.get(i + 1))
                            .cloned()
                            .unwrap_or_default()
                    };
                    field("num-other-sentinels") == "2" && field("num-slaves") == "1"
                },
            )
            .await;
        }
        Self {
            master_name: "m".into(),
            primary,
            replica,
            sentinels,
            access,
            dir,
        }
    }

    /// `host:port` of every sentinel.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// What the binary needs to run against this setup. The URL's host is not used in sentinel
    /// mode (only its scheme, credentials and database).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("OTP_REDIS__MODE".into(), "sentinel".into()),
            ("OTP_REDIS__MASTER_NAME".into(), self.master_name.clone()),
            (
                "OTP_REDIS__SENTINELS".into(),
                format!("[{}]", self.sentinel_addresses().join(",")),
            ),
            ("OTP_REDIS__URL".into(), self.access.url(self.primary.port)),
        ];
        if let Some(tls) = &self.access.tls {
            env.push(("OTP_REDIS__TLS_CA_FILE".into(), tls.ca_file()));
        }
        if let Some(pass) = &self.sentinels[0].access.password {
            env.push(("OTP_REDIS__SENTINEL_PASSWORD".into(), pass.clone()));
        }
        env
    }

    /// A fresh, empty redis-server on the killed primary's port, as a replica of `primary` (the
    /// promoted one): after a failover the new primary has a replica to acknowledge writes again.
    pub async fn restart_primary_as_replica_of(&mut self, primary: u16) {
        let port = self.primary.port;
        let of = primary.to_string();
        self.primary = Server::spawn(port, self.dir.path(), &["--replicaof", "127.0.0.1", &of]);
        self.primary.wait_up().await;
        in_sync(port).await;
    }

    /// `ROLE`'s first field on `port`: "master", "slave", or the error.
    pub async fn role(port: u16) -> String {
        match cmd_on::<Vec<redis::Value>>(port, &["ROLE"]).await {
            Ok(role) => match role.first() {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            },
            Err(e) => e.to_string(),
        }
    }
}

/// Waits until the replica on `port` has its link to the primary up.
async fn in_sync(port: u16) {
    wait_until(
        "the replica in sync",
        Duration::from_secs(10),
        || async move {
            let info: String = cmd_on(port, &["INFO", "replication"])
                .await
                .unwrap_or_default();
            info.contains("master_link_status:up")
        },
    )
    .await;
}
