//! Throwaway Redis Cluster and Sentinel deployments for tests: real redis-servers on free
//! loopback ports, in temp dirs, killed on drop. Self-contained (std, tokio, tempfile, redis) so
//! the binary's tests include this very module (tests/api/test_cluster.rs) as well as the store's.
#![allow(dead_code)] // Each includer uses a different part.

mod access;
mod cluster;
mod sentinel;

pub use access::{Access, Tls};
pub use cluster::{ClusterOptions, RedisCluster};
pub use sentinel::{RedisSentinel, SentinelOptions};

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

/// One command to the plain, password-less server on `port` itself (no cluster routing).
pub async fn cmd_on<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> redis::RedisResult<T> {
    Access::default().cmd(port, args).await
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
    /// How the server is reached: what `cmd` uses.
    pub access: Access,
    child: Child,
}

impl Server {
    pub(super) fn spawn(port: u16, dir: &Path, args: &[&str]) -> Self {
        Self::spawn_with(port, dir, args, &Access::default())
    }

    /// `args` come first: a configuration file (sentinels) must be the first argument.
    pub(super) fn spawn_with(port: u16, dir: &Path, args: &[&str], access: &Access) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .args(access.server_args(port))
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", "noeviction"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        Self {
            port,
            access: access.clone(),
            child,
        }
    }

    /// One command to this server itself, with its TLS and credentials.
    pub async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        self.access.cmd(self.port, args).await
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
        let what = format!("redis-server on port {} answers", self.port);
        wait_until(&what, Duration::from_secs(5), || async move {
            self.cmd::<String>(&["PING"]).await.is_ok()
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
