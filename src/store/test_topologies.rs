//! Throwaway Redis Cluster and Sentinel deployments for tests: real redis-servers on free
//! loopback ports, in temp dirs, killed on drop. Self-contained (std, tokio, tempfile, redis) so
//! the binary's tests include this very file (tests/api/test_cluster.rs) as well as the store's.
#![allow(dead_code)] // Each includer uses a different part.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that is free, and whose cluster bus port (+10000) is free too.
pub fn free_port() -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// One command to the server on `port` itself (no cluster routing).
pub async fn cmd_on<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
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

/// Polls `check` every 100 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A redis-server child, killed on drop.
pub struct Server {
    pub port: u16,
    child: Child,
}

impl Server {
    fn spawn(port: u16, dir: &Path, args: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        Self { port, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no goodbye to replicas or clients.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP (`stop`) or SIGCONT: the process holds its sockets but answers nothing.
    pub fn pause(&self, stop: bool) {
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} failed");
    }

    async fn wait_up(&self) {
        let port = self.port;
        let what = format!("redis-server on port {port} answers");
        wait_until(&what, Duration::from_secs(5), || async move {
            cmd_on::<String>(port, &["PING"]).await.is_ok()
        })
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill();
    }
}

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

/// A primary with one replica, watched by three sentinels (quorum 2) that call the primary down
/// after 1 s.
pub struct RedisSentinel {
    pub master_name: String,
    pub primary: Server,
    pub replica: Server,
    pub sentinels: Vec<Server>,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (p, r) = (free_port(), free_port());
        let primary = Server::spawn(p, dir.path(), &[]);
        let replica = Server::spawn(r, dir.path(), &["--replicaof", "127.0.0.1", &p.to_string()]);
        primary.wait_up().await;
        replica.wait_up().await;
        wait_until(
            "the replica in sync",
            Duration::from_secs(10),
            || async move {
                let info: String = cmd_on(r, &["INFO", "replication"])
                    .await
                    .unwrap_or_default();
                info.contains("master_link_status:up")
            },
        )
        .await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            // Sentinels rewrite their configuration file: it must be their own and writable.
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            let text = format!(
                "sentinel monitor m 127.0.0.1 {p} 2\n\
                 sentinel down-after-milliseconds m 1000\n\
                 sentinel failover-timeout m 3000\n"
            );
            std::fs::write(&conf, text).unwrap();
            let conf = conf.to_string_lossy().into_owned();
            sentinels.push(Server::spawn(port, dir.path(), &[&conf, "--sentinel"]));
        }
        for s in &sentinels {
            s.wait_up().await;
            let port = s.port;
            // A failover needs the sentinels to know each other and the replica.
            wait_until(
                "sentinels know each other and the replica",
                Duration::from_secs(15),
                || async move {
                    let master: Vec<String> = cmd_on(port, &["SENTINEL", "MASTER", "m"])
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
            _dir: dir,
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
        vec![
            ("OTP_REDIS__MODE".into(), "sentinel".into()),
            ("OTP_REDIS__MASTER_NAME".into(), self.master_name.clone()),
            (
                "OTP_REDIS__SENTINELS".into(),
                format!("[{}]", self.sentinel_addresses().join(",")),
            ),
            (
                "OTP_REDIS__URL".into(),
                format!("redis://127.0.0.1:{}", self.primary.port),
            ),
        ]
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
