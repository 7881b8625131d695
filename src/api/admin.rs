//! The admin listener, in every mode: liveness, readiness, status and Prometheus metrics.
use std::sync::Arc;
use std::time::Instant;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use tracing::warn;

use crate::health::{Health, QueueStatus, Status};
use crate::metrics::Metrics;
use crate::queue::{self, Depth, Partitions};
use crate::store::Store;

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub partitions: Partitions,
    pub metrics: Metrics,
    pub health: Health,
    /// One scrape at a time: a failed read must not interleave with a good one and leave stale
    /// queue series behind.
    pub scrape: Arc<tokio::sync::Mutex<()>>,
}

impl AdminState {
    pub fn new(store: Store, partitions: Partitions, metrics: Metrics, health: Health) -> Self {
        Self {
            store,
            partitions,
            metrics,
            health,
            scrape: Arc::default(),
        }
    }

    /// Every partition's depth read now; the round trip also counts as a Redis reachability
    /// reading.
    async fn depth(&self) -> Option<Vec<Depth>> {
        let started = Instant::now();
        match queue::depth(&self.store, &self.partitions).await {
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
    let depth = state.depth().await;
    let queue = QueueStatus::from_depth(depth.as_deref().map(Depth::sum));
    Json(Status::gather(&state.health, queue))
}

/// Queue depth is read from Redis at scrape time (one script call), so every replica reports the
/// same truth. When the read fails the queue series are left out of this scrape, never stale.
#[handler]
async fn scrape_metrics(Data(state): Data<&AdminState>) -> Response {
    let _one_at_a_time = state.scrape.lock().await;
    let depth = state.depth().await;
    state.metrics.set_queue_depth(depth.as_deref());
    state
        .metrics
        .encode()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use poem::{Endpoint, Request};

    use super::*;
    use crate::health::TaskState;

    async fn get(app: &impl Endpoint, path: &str) -> (StatusCode, String) {
        let resp = app
            .get_response(Request::builder().uri_str(path).finish())
            .await;
        let code = resp.status();
        (code, resp.into_body().into_string().await.unwrap())
    }

    /// Redis on a port nobody listens on: probes must not care.
    fn app(health: &Health) -> impl Endpoint {
        let store = Store::new("redis://127.0.0.1:9", Duration::from_millis(100)).unwrap();
        let metrics = Metrics::new();
        admin_app(AdminState::new(
            store,
            Partitions::single("otp"),
            metrics,
            health.clone(),
        ))
    }

    #[tokio::test]
    async fn readyz_follows_start_and_drain_not_redis() {
        let health = Health::new(Metrics::new());
        let app = app(&health);
        assert_eq!(
            get(&app, "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(get(&app, "/readyz").await, (StatusCode::OK, "ready".into()));
        health.begin_drain();
        assert_eq!(
            get(&app, "/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "draining".into())
        );
    }

    #[tokio::test]
    async fn healthz_names_a_task_that_stopped() {
        let health = Health::new(Metrics::new());
        let app = app(&health);
        health.set_task("api", TaskState::Running);
        health.set_task("worker", TaskState::Running);
        assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok".into()));
        health.set_task("worker", TaskState::Failed);
        assert_eq!(
            get(&app, "/healthz").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "task worker is not running".into()
            )
        );
    }

    #[tokio::test]
    async fn status_shows_an_unreadable_queue_and_no_smtp_result_yet() {
        let health = Health::new(Metrics::new());
        let (code, body) = get(&app(&health), "/status").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["queue"]["available"], false, "{v}");
        assert_eq!(v["redis"]["reachable"], false, "{v}");
        assert!(v["smtp"].is_null(), "{v}");
        health.record_smtp(true, "sent");
        let (_, body) = get(&app(&health), "/status").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["smtp"]["ok"], true, "{v}");
        assert_eq!(v["smtp"]["class"], "sent", "{v}");
    }
}
