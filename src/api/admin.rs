//! The admin listener, in every mode: liveness, readiness, status and Prometheus metrics.
use std::sync::Arc;
use std::time::Instant;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use tracing::warn;

use crate::health::{Health, QueueStatus, Status};
use crate::metrics::Metrics;
use crate::queue::{self, Depth};
use crate::store::{Keys, Store};

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub keys: Keys,
    pub metrics: Metrics,
    pub health: Health,
    /// One scrape at a time: a failed read must not interleave with a good one and leave stale
    /// queue series behind.
    pub scrape: Arc<tokio::sync::Mutex<()>>,
}

impl AdminState {
    pub fn new(store: Store, keys: Keys, metrics: Metrics, health: Health) -> Self {
        Self {
            store,
            keys,
            metrics,
            health,
            scrape: Arc::default(),
        }
    }

    /// Queue depth read now; the round trip also counts as a Redis reachability reading.
    async fn depth(&self) -> Option<Depth> {
        let started = Instant::now();
        match queue::depth(&self.store, &self.keys).await {
            Ok(d) => {
                self.health.record_redis(Some(started.elapsed()));
                Some(d)
            }
            Err(e) => {
                warn!(error = %e, "reading queue depth");
                self.health.record_redis(None);
                None
            }
        }
    }
}

pub fn admin_app(state: AdminState) -> impl poem::Endpoint {
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/status", get(status))
        .at("/metrics", get(scrape_metrics))
        .data(state)
}

/// Alive while every supervised task runs; a task that ended by itself is named.
#[handler]
fn healthz(Data(state): Data<&AdminState>) -> Response {
    match state.health.failed_task() {
        None => "ok".into_response(),
        Some(task) => format!("task {task} is not running")
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response(),
    }
}

/// "Send me traffic": serving and not draining. Deliberately not Redis: in a Redis outage the
/// API still answers a JSON 503, which clients handle better than a connection refused.
#[handler]
fn readyz(Data(state): Data<&AdminState>) -> Response {
    if state.health.is_ready() {
        "ready".into_response()
    } else if state.health.is_draining() {
        "draining"
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    } else {
        "starting"
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    }
}

#[handler]
async fn status(Data(state): Data<&AdminState>) -> Json<Status> {
    let queue = QueueStatus::from_depth(state.depth().await);
    Json(Status::gather(&state.health, queue))
}

/// Queue depth is read from Redis at scrape time (one script call), so every replica reports the
/// same truth. When the read fails the queue series are left out of this scrape, never stale.
#[handler]
async fn scrape_metrics(Data(state): Data<&AdminState>) -> Response {
    let _one_at_a_time = state.scrape.lock().await;
    let depth = state.depth().await;
    state.metrics.set_queue_depth(depth.as_ref());
    state
        .metrics
        .encode()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}
