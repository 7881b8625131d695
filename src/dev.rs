//! `email-otp dev`: when nothing answers at `redis.url`, start a private redis-server.
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tracing::info;

use crate::config::{Config, RedisTopology, Secret};

/// A redis-server child and its data directory; both go away when this is dropped.
pub struct DevRedis {
    _child: Child,
    _dir: std::path::PathBuf,
}

impl Drop for DevRedis {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

pub async fn ensure_redis(config: &mut Config) -> anyhow::Result<Option<DevRedis>> {
    let RedisTopology::Standalone { url } = &config.redis.topology else {
        // A sentinel or cluster setup is the operator's own: use it as configured.
        return Ok(None);
    };
    if answers(url.expose()).await {
        info!("using the Redis at redis.url");
        return Ok(None);
    }
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("email-otp-dev-redis-{port}"));
    std::fs::create_dir_all(&dir).context("creating the dev Redis directory")?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("nothing answers at redis.url and redis-server could not be started (install it: apt-get install redis-server)")?;
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..50 {
        if answers(&url).await {
            info!(%url, "started a private redis-server for dev");
            config.redis.topology = RedisTopology::Standalone {
                url: Secret::new(url),
            };
            return Ok(Some(DevRedis {
                _child: child,
                _dir: dir,
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the dev redis-server did not answer on port {port}")
}

/// What a developer needs first: where the mail goes, where the docs are, a request to try.
pub fn banner(config: &Config) {
    let api = config.http.listen;
    if let crate::config::MailTransport::Outbox(dir) = &config.mail.transport {
        let dir = std::env::current_dir().map_or_else(|_| dir.clone(), |cwd| cwd.join(dir));
        info!("mail is written to {} as .eml files", dir.display());
    }
    info!(
        "API docs: http://{api}/docs  (admin: http://{}/status)",
        config.admin_listen
    );
    info!(
        "try: curl -s -XPOST http://{api}/otp/generate -H 'content-type: application/json' \
         -d '{{\"email\":\"you@example.com\"}}'"
    );
}

async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let ping = async {
        let mut c = client.get_multiplexed_async_connection().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut c).await.ok()
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), ping).await,
        Ok(Some(_))
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
