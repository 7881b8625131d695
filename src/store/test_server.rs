//! A throwaway redis-server for the unit tests of the layers above the store (queue, codes):
//! real Redis, never a mock.
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{RedisOp, Store};

/// Test stores have no metrics, so the op of their ad-hoc commands is never recorded.
pub const UNMEASURED: RedisOp = RedisOp::Info;

/// A throwaway redis-server on a free port, killed on drop.
pub struct Redis {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Redis {
    pub async fn start(extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--maxmemory-policy", "noeviction"])
            .args(extra)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let url = format!("redis://127.0.0.1:{port}");
        let r = Self {
            child,
            _dir: dir,
            url,
        };
        let store = r.store();
        for _ in 0..100 {
            if store.ping().await.is_ok() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    pub fn store(&self) -> Store {
        Store::new(&self.url, Duration::from_secs(2)).unwrap()
    }

    pub async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        self.store()
            .run(
                UNMEASURED,
                |mut c| async move { cmd.query_async(&mut c).await },
            )
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
