//! Wires the configuration into running parts and stops them in order on SIGTERM/SIGINT.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::api::{AdminState, OtpApi, PoemHandler, ServerLimits, admin_app};
use crate::clock::Clock;
use crate::codes::{Codes, Policy};
use crate::config::Config;
use crate::domain::MacKey;
use crate::health::Health;
use crate::limits::{FailureLimiter, IpLimiter};
use crate::mail::Mailer;
use crate::metrics::Metrics;
use crate::queue::{Partitions, Queue, RetryPolicy};
use crate::store::Store;
use crate::supervisor::{Stage, Supervisor};
use crate::worker::{Worker, WorkerConfig};

/// The admin listener serves probes, metrics and a status page to a handful of clients.
const ADMIN_LIMITS: ServerLimits = ServerLimits {
    header_read_timeout: Duration::from_secs(5),
    max_header_bytes: 16 * 1024,
    max_connections: 64,
    write_timeout: Duration::from_secs(10),
};

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

pub fn policy(c: &Config) -> Policy {
    Policy {
        code_ttl: c.otp.ttl,
        digits: c.otp.digits,
        max_attempts: c.otp.max_attempts,
        email_cooldown: c.limits.email_cooldown,
        email_per_hour: c.limits.email_per_hour,
        verify_failures_per_hour: c.limits.verify_failures_per_hour,
        send: c.limits.send,
    }
}

/// A token cancelled by the first SIGTERM or SIGINT.
pub fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
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

/// Runs the parts that `mode` asks for, each a supervised task, until `shutdown` or until one
/// of them ends by itself; returns once all have drained.
pub async fn run(config: Config, mode: Mode, shutdown: CancellationToken) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let store = Store::connect(&config.redis)
        .context("cannot set up the Redis connection from redis.*")?
        .observed_by(metrics.clone());
    let partitions = Partitions::new(&config.redis.key_prefix, config.queue.partitions);
    let mac = MacKey::new(config.otp.hmac_key.expose().as_bytes());
    let health = Health::new(metrics.clone());
    let codes = Codes::new(
        store.clone(),
        &config.redis.key_prefix,
        partitions.clone(),
        mac,
        policy(&config),
    );
    // Built before any listener opens: broken templates or a bad mail.from stop the process here.
    let mailer = if mode.has_worker() {
        Some(Mailer::new(&config)?)
    } else {
        None
    };

    // Bind both ports before serving anything: a taken port stops start-up.
    let api_acceptor = match mode.has_api() {
        true => Some(
            TcpListener::bind(config.http.listen)
                .await
                .with_context(|| format!("binding http.listen {}", config.http.listen))?,
        ),
        false => None,
    };
    let admin_acceptor = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding admin.listen {}", config.admin_listen))?;

    let mut tasks = Supervisor::new(health.clone());
    let admin = admin_app(AdminState::new(
        store.clone(),
        partitions.clone(),
        metrics.clone(),
        health.clone(),
    ));
    let admin_addr = config.admin_listen;
    tasks.spawn("admin", Stage::Admin, move |stop| async move {
        let grace = Duration::from_secs(1);
        crate::api::serve(
            admin_acceptor,
            PoemHandler::new(admin),
            ADMIN_LIMITS,
            stop,
            grace,
        )
        .await
        .with_context(|| format!("admin listener on {admin_addr}"))
    });
    info!(addr = %admin_addr, "admin listening");
    tasks.spawn("redis-ping", Stage::Background, {
        let (store, health) = (store.clone(), health.clone());
        move |stop| crate::health::ping::run(store, health, stop)
    });

    if let Some(acceptor) = api_acceptor {
        let ip_limiter = IpLimiter::new(config.limits.ip_per_minute).map(Arc::new);
        let verify_ip_limiter = FailureLimiter::new(
            config.limits.ip_verify_failures_per_hour,
            Duration::from_secs(3600),
        )
        .map(Arc::new);
        if ip_limiter.is_some() || verify_ip_limiter.is_some() {
            let (ip, verify) = (ip_limiter.clone(), verify_ip_limiter.clone());
            tasks.spawn(
                "limits-cleanup",
                Stage::Background,
                move |stop| async move {
                    let mut every = tokio::time::interval(Duration::from_secs(10));
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return Ok(()),
                            _ = every.tick() => {}
                        }
                        ip.as_deref().map(IpLimiter::maintain);
                        if let Some(v) = &verify {
                            v.maintain(std::time::Instant::now());
                        }
                    }
                },
            );
        }
        let api = OtpApi {
            codes: codes.clone(),
            ip_limiter,
            verify_ip_limiter,
            proxies: config.http.trusted_proxies.clone(),
            metrics: metrics.clone(),
            digits: config.otp.digits,
            quiet: Default::default(),
        };
        let traced = config.settings.telemetry.otlp_endpoint.is_some();
        let app = crate::api::app(api, config.http.body, metrics.clone(), traced);
        let grace = config.http.shutdown_grace;
        let addr = config.http.listen;
        let limits = config.http.limits;
        tasks.spawn("api", Stage::Traffic, move |stop| async move {
            crate::api::serve(acceptor, app, limits, stop, grace)
                .await
                .with_context(|| format!("api listener on {addr}"))
        });
        info!(addr = %addr, "api listening");
    }

    if let Some(mailer) = mailer {
        let worker = worker(
            &config,
            &store,
            &partitions,
            codes,
            mailer,
            &metrics,
            &health,
        );
        // Lease renewal, reaping and promotion outlive the worker's drain (a later stage), so the
        // leases of jobs still finishing stay renewed.
        let maintenance = worker.maintenance();
        tasks.spawn(
            "worker-maintenance",
            Stage::Background,
            move |stop| async move {
                maintenance.run(stop).await;
                Ok(())
            },
        );
        tasks.spawn("worker", Stage::Traffic, move |stop| async move {
            worker.run(stop).await;
            Ok(())
        });
    }

    // Both acceptors are bound and their servers spawned: connections are taken from here on.
    health.set_ready(true);
    tasks.run(shutdown).await?;
    info!("stopped cleanly");
    Ok(())
}

fn worker(
    config: &Config,
    store: &Store,
    partitions: &Partitions,
    codes: Codes,
    mailer: Mailer,
    metrics: &Metrics,
    health: &Health,
) -> Worker {
    let w = &config.worker;
    let worker_config = WorkerConfig {
        concurrency: w.concurrency,
        retry: RetryPolicy {
            base: w.retry_base,
            cap: w.retry_max,
            max_attempts: w.max_attempts,
        },
        renew_every: w.renew_every,
        lease: w.lease,
        traced: config.settings.telemetry.otlp_endpoint.is_some(),
    };
    let queue = Queue::new(store.clone(), partitions.clone(), Clock::System, w.lease)
        .with_dead_letters(w.dead_letters);
    let (metrics, health) = (metrics.clone(), health.clone());
    Worker::new(queue, codes, mailer, metrics, health, worker_config)
}
