//! Wires the configuration into running parts and stops them in order on SIGTERM/SIGINT.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use poem::Server;
use poem::listener::{Listener, TcpListener};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{AdminState, OtpApi, admin_app};
use crate::clock::Clock;
use crate::codes::{Codes, Policy};
use crate::config::Settings;
use crate::domain::MacKey;
use crate::limits::{IpLimiter, TrustedProxies};
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::queue::QueueKeys;
use crate::queue::{Queue, RetryPolicy};
use crate::store::Store;
use crate::worker::{Worker, WorkerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Serve,
    Api,
    Worker,
}

impl Mode {
    fn has_api(self) -> bool {
        matches!(self, Self::Serve | Self::Api)
    }

    fn has_worker(self) -> bool {
        matches!(self, Self::Serve | Self::Worker)
    }
}

pub fn policy(s: &Settings) -> Policy {
    Policy {
        code_ttl: Duration::from_secs(s.otp.ttl_secs),
        digits: s.otp.digits,
        max_attempts: s.otp.max_attempts,
        email_cooldown: Duration::from_secs(s.limits.email_cooldown_secs),
        email_per_hour: s.limits.email_per_hour,
        verify_failures_per_hour: s.limits.verify_failures_per_hour,
    }
}

/// A token cancelled by the first SIGTERM or SIGINT.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested: draining");
        t.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs the parts that `mode` asks for until `shutdown`; returns once all have drained.
pub async fn run(
    settings: Settings,
    mode: Mode,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::new(
        settings.redis.url.expose(),
        Duration::from_millis(settings.redis.timeout_ms),
    )
    .context("redis.url is not a valid Redis URL")?;
    let keys = QueueKeys::new(&settings.redis.key_prefix);
    let mac = MacKey::new(settings.hmac_key().as_bytes());
    let metrics = Metrics::new();
    let codes = Codes::new(
        store.clone(),
        &settings.redis.key_prefix,
        mac,
        policy(&settings),
    );
    // Built before any listener opens: broken templates or a bad mail.from stop the process here.
    let mailer = if mode.has_worker() {
        Some(Mailer::from_settings(&settings)?)
    } else {
        None
    };

    // Bind both ports before serving anything: a taken port stops start-up, and the admin port
    // never reports ready while the API port is not yet accepting.
    let api_acceptor = match mode.has_api() {
        true => Some(
            TcpListener::bind(settings.http.listen)
                .into_acceptor()
                .await
                .with_context(|| format!("binding http.listen {}", settings.http.listen))?,
        ),
        false => None,
    };
    let admin_acceptor = TcpListener::bind(settings.admin.listen)
        .into_acceptor()
        .await
        .with_context(|| format!("binding admin.listen {}", settings.admin.listen))?;

    tokio::spawn(warn_unless_noeviction(store.clone()));

    let admin_shutdown = CancellationToken::new();
    let admin = {
        let app = admin_app(AdminState {
            store: store.clone(),
            keys: keys.clone(),
            metrics: metrics.clone(),
        });
        let stop = admin_shutdown.clone();
        tokio::spawn(async move {
            Server::new_with_acceptor(admin_acceptor)
                .run_with_graceful_shutdown(
                    app,
                    stop.cancelled_owned(),
                    Some(Duration::from_secs(1)),
                )
                .await
        })
    };
    info!(addr = %settings.admin.listen, "admin listening");

    let api = api_acceptor.map(|acceptor| {
        let api = OtpApi {
            codes: codes.clone(),
            ip_limiter: IpLimiter::new(settings.limits.ip_per_minute).map(Arc::new),
            proxies: TrustedProxies::parse(&settings.http.trusted_proxies).unwrap_or_default(),
            metrics: metrics.clone(),
            digits: settings.otp.digits,
        };
        let app = crate::api::app(api, settings.http.max_body_bytes, metrics.clone());
        let grace = Duration::from_secs(settings.http.shutdown_grace_secs);
        let stop = shutdown.clone();
        info!(addr = %settings.http.listen, "api listening");
        tokio::spawn(async move {
            Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(app, stop.cancelled_owned(), Some(grace))
                .await
        })
    });

    let worker = mailer.map(|mailer| {
        let w = &settings.worker;
        let lease = Duration::from_secs(w.reap_after_secs);
        let config = WorkerConfig {
            concurrency: w.concurrency,
            retry: RetryPolicy {
                base: Duration::from_millis(w.retry_base_ms),
                cap: Duration::from_millis(w.retry_max_ms),
                max_attempts: w.max_attempts,
            },
            renew_every: Duration::from_secs(w.heartbeat_secs),
            lease,
        };
        let queue = Queue::new(store.clone(), keys.clone(), Clock::System, lease);
        let w = Worker::new(queue, codes.clone(), mailer, metrics.clone(), config);
        tokio::spawn(w.run(shutdown.clone()))
    });

    let mut failed = None;
    if let Some(api) = api {
        match api.await {
            Ok(Ok(())) => info!("api stopped"),
            Ok(Err(e)) => {
                failed = Some(
                    anyhow::Error::from(e)
                        .context(format!("api listener on {}", settings.http.listen)),
                )
            }
            Err(e) => failed = Some(anyhow::Error::from(e).context("api task")),
        }
        // The API ended by itself (e.g. the port was taken): stop the rest too.
        shutdown.cancel();
    }
    if let Some(worker) = worker
        && let Err(e) = worker.await
    {
        warn!(error = %e, "worker task ended abnormally");
    }
    if mode == Mode::Worker && !admin.is_finished() {
        // A worker-only process runs until signalled.
        shutdown.cancelled().await;
    }
    admin_shutdown.cancel();
    match admin.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) if failed.is_none() => {
            failed = Some(
                anyhow::Error::from(e)
                    .context(format!("admin listener on {}", settings.admin.listen)),
            )
        }
        _ => {}
    }
    match failed {
        Some(e) => Err(e),
        None => {
            info!("stopped cleanly");
            Ok(())
        }
    }
}

/// Any policy but `noeviction` lets Redis drop codes, counters or queued jobs under memory
/// pressure (security.md 19). Checked once, as soon as Redis answers; a warning, not a refusal,
/// because managed Redis services may not let the operator change it.
async fn warn_unless_noeviction(store: Store) {
    for _ in 0..60 {
        match store.eviction_policy().await {
            Ok(Some(policy)) if policy == "noeviction" => return,
            Ok(Some(policy)) => {
                warn!(
                    %policy,
                    "Redis maxmemory-policy is not noeviction: under memory pressure it can evict codes, \
                     failure counters and queued jobs; set maxmemory-policy noeviction"
                );
                return;
            }
            Ok(None) => return,
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}
