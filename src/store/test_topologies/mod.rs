//! Throwaway Redis Cluster and Sentinel deployments for tests: real redis-servers on free
//! loopback ports, in temp dirs, killed on drop. Self-contained (std, tokio, tempfile, redis) so
//! the binary's tests include this very module (tests/api/test_cluster.rs) as well as the store's.
#![allow(dead_code)] // Each includer uses a different part.

mod cluster;
mod sentinel;

pub use cluster::RedisCluster;
pub use sentinel::RedisSentinel;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that is free, and whose cluster bus port (+10000) is free too; never the same twice
/// in one test process, since parallel tests start servers at the same time.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bus_free = || std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if port < 55_000 && !given.contains(&port) && bus_free() {
            given.push(port);
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
    pub(super) fn spawn(port: u16, dir: &Path, args: &[&str]) -> Self {
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

    pub(super) async fn wait_up(&self) {
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
