//! A three-primary Redis Cluster, created with `redis-cli --cluster create`.
use std::process::Stdio;
use std::time::Duration;

use super::{Server, cmd_on, free_port, wait_until};

/// A Redis Cluster of three primaries and no replicas.
pub struct RedisCluster {
    pub nodes: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    pub async fn start() -> Self {
        Self::start_on([free_port(), free_port(), free_port()]).await
    }

    /// On ports chosen before (a client configured while nothing answers there yet).
    pub async fn start_on(ports: [u16; 3]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for port in ports {
            let conf = format!("nodes-{port}.conf");
            let args = ["--cluster-enabled", "yes", "--cluster-config-file", &conf];
            nodes.push(Server::spawn(port, dir.path(), &args));
        }
        for n in &nodes {
            n.wait_up().await;
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .await
            .expect("redis-cli must be installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        for n in &nodes {
            let port = n.port;
            wait_until("cluster_state:ok", Duration::from_secs(10), || async move {
                let info: String = cmd_on(port, &["CLUSTER", "INFO"]).await.unwrap_or_default();
                info.contains("cluster_state:ok")
            })
            .await;
        }
        Self { nodes, _dir: dir }
    }

    /// The seed the binary's `redis.url` names.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    /// What the binary needs to run against this cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        let more: Vec<String> = self.nodes[1..]
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        vec![
            ("OTP_REDIS__MODE".into(), "cluster".into()),
            ("OTP_REDIS__URL".into(), self.url()),
            (
                "OTP_REDIS__CLUSTER_NODES".into(),
                format!("[{}]", more.join(",")),
            ),
        ]
    }

    /// The port of the primary that holds `key`'s slot.
    pub async fn owner_of(&self, key: &str) -> u16 {
        let slot: i64 = cmd_on(self.nodes[0].port, &["CLUSTER", "KEYSLOT", key])
            .await
            .unwrap();
        let nodes: String = cmd_on(self.nodes[0].port, &["CLUSTER", "NODES"])
            .await
            .unwrap();
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
