//! The admin listener: liveness, readiness and Prometheus metrics, in every mode.
use poem::http::StatusCode;
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};
use tracing::warn;

use crate::metrics::Metrics;
use crate::queue;
use crate::queue::QueueKeys;
use crate::store::Store;

#[derive(Clone)]
pub struct AdminState {
    pub store: Store,
    pub keys: QueueKeys,
    pub metrics: Metrics,
}

pub fn admin_app(state: AdminState) -> impl poem::Endpoint {
    Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(state)
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// Ready when Redis answers. Templates are compiled before the listener starts, so a process that
/// serves this has valid templates.
#[handler]
async fn readyz(Data(state): Data<&AdminState>) -> Response {
    let ok = state.store.ping().await.is_ok();
    state.metrics.redis_up.set(i64::from(ok));
    state.metrics.ready.set(i64::from(ok));
    if ok {
        "ready".into_response()
    } else {
        "redis unreachable"
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .into_response()
    }
}

/// Queue depth is read from Redis at scrape time (one script call), so every replica reports the
/// same truth and nothing polls Redis between scrapes.
#[handler]
async fn metrics(Data(state): Data<&AdminState>) -> Response {
    match queue::depth(&state.store, &state.keys).await {
        Ok(d) => {
            let m = &state.metrics;
            for (s, v) in [
                ("pending", d.pending),
                ("processing", d.processing),
                ("delayed", d.delayed),
                ("dead", d.dead),
            ] {
                m.queue_depth.with_label_values(&[s]).set(v);
            }
            m.queue_oldest_age
                .set(d.oldest_pending_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0));
            m.redis_up.set(1);
            m.ready.set(1);
        }
        Err(e) => {
            warn!(error = %e, "reading queue depth for /metrics");
            state.metrics.redis_up.set(0);
            state.metrics.ready.set(0);
        }
    }
    state
        .metrics
        .encode()
        .with_content_type("text/plain; version=0.0.4; charset=utf-8")
        .into_response()
}
