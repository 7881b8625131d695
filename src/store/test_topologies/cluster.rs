//! A three-primary Redis Cluster, created with `redis-cli --cluster create`.
use std::process::Stdio;
use std::time::Duration;

use super::{Access, Server, Tls, free_port, wait_until};

/// What every node of a cluster demands. The default: plain TCP, no password.
#[derive(Clone, Copy, Default)]
pub struct ClusterOptions<'a> {
    /// An ACL user and its password; the default user is off.
    pub acl: Option<(&'a str, &'a str)>,
    /// TLS only, the cluster bus included.
    pub tls: Option<&'a Tls>,
}

/// A Redis Cluster of three primaries and no replicas.
pub struct RedisCluster {
    pub nodes: Vec<Server>,
    /// How every node is reached.
    pub access: Access,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start() -> Self {
        Self::start_with(ClusterOptions::default()).await
    }

    pub async fn start_with(options: ClusterOptions<'_>) -> Self {
        Self::start_on_with([free_port(), free_port(), free_port()], options).await
    }

    /// On ports chosen before (a client configured while nothing answers there yet).
    pub async fn start_on(ports: [u16; 3]) -> Self {
        Self::start_on_with(ports, ClusterOptions::default()).await
    }

    pub async fn start_on_with(ports: [u16; 3], options: ClusterOptions<'_>) -> Self {
        let access = Access {
            tls: options.tls.cloned(),
            user: options.acl.map(|(user, _)| user.to_owned()),
            password: options.acl.map(|(_, pass)| pass.to_owned()),
        };
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for port in ports {
            let conf = format!("nodes-{port}.conf");
            let mut args = vec!["--cluster-enabled", "yes", "--cluster-config-file", &conf];
            if access.tls.is_some() {
                args.extend(["--tls-cluster", "yes"]);
            }
            nodes.push(Server::spawn_with(port, dir.path(), &args, &access));
        }
        for n in &nodes {
            n.wait_up().await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = tokio::process::Command::new("redis-cli")
            .args(access.cli_args())
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("redis-cli must be installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        for n in &nodes {
            wait_until("cluster_state:ok", Duration::from_secs(10), || async move {
                let info: String = n.cmd(&["CLUSTER", "INFO"]).await.unwrap_or_default();
                info.contains("cluster_state:ok")
            })
            .await;
        }
        Self {
            nodes,
            access,
            _dir: dir,
        }
    }

    /// The seed the binary's `redis.url` names, with the scheme and credentials.
    pub fn url(&self) -> String {
        self.access.url(self.nodes[0].port)
    }

    /// What the binary needs to run against this cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        let more: Vec<String> = self.nodes[1..]
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let ca = self
            .access
            .tls
            .iter()
            .map(|tls| ("OTP_REDIS__TLS_CA_FILE".into(), tls.ca_file()));
        let mut env = vec![
            ("OTP_REDIS__MODE".into(), "cluster".into()),
            ("OTP_REDIS__URL".into(), self.url()),
            (
                "OTP_REDIS__CLUSTER_NODES".into(),
                format!("[{}]", more.join(",")),
            ),
        ];
        env.extend(ca);
        env
    }

    /// Keys `{tag<i>}:code`, one on each primary, with the port of their primary.
    pub async fn one_key_per_primary(&self) -> Vec<(String, u16)> {
        let mut keys: Vec<(String, u16)> = Vec::new();
        for i in 0.. {
            let key = format!("{{tag{i}}}:code");
            let owner = self.owner_of(&key).await;
            if !keys.iter().any(|(_, o)| *o == owner) {
                keys.push((key, owner));
            }
            if keys.len() == self.nodes.len() {
                break;
            }
        }
        keys
    }

    /// The port of the primary that holds `key`'s slot.
    pub async fn owner_of(&self, key: &str) -> u16 {
        let slot: i64 = self.nodes[0]
            .cmd(&["CLUSTER", "KEYSLOT", key])
            .await
            .unwrap();
        let nodes: String = self.nodes[0].cmd(&["CLUSTER", "NODES"]).await.unwrap();
        // "<id> 127.0.0.1:<port>@<bus> <flags> <master> <ping> <pong> <epoch> <state> <slots>…"
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owns = fields.iter().skip(8).any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                match (from.parse::<i64>(), to.parse::<i64>()) {
                    (Ok(from), Ok(to)) => (from..=to).contains(&slot),
                    _ => false,
                }
            });
            if owns {
                let address = fields[1].split('@').next().unwrap();
                return address.rsplit_once(':').unwrap().1.parse().unwrap();
            }
        }
        panic!("no node owns slot {slot}: {nodes}");
    }
}
