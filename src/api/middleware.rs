//! What every request of the API port goes through, whichever path answers it: a hard body cap
//! and a deadline for the body,
//! JSON errors (with `Allow` on 405), rejected requests counted as `invalid`, HTTP metrics keyed
//! on route patterns, and a span per request when traces are exported.
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use poem::Response;
use poem::http::{HeaderMap, Method, StatusCode, header};
use prometheus::{Histogram, IntCounter};
use tracing::info;

use super::errors::render_error;
use super::server::SlowClient;
use crate::clock::Clock;
use crate::config::BodyLimits;
use crate::metrics::Metrics;
use crate::outcome::{self, SlowStage};
use crate::telemetry::LogThrottle;

/// Routes with their own metric label; everything else is `other`, so labels stay bounded.
const ROUTES: &[&str] = &[
    "/otp/generate",
    "/otp/verify",
    "/openapi.json",
    "/openapi.yaml",
];

/// What the edge needs, built once.
pub struct Edge {
    pub metrics: Metrics,
    pub body: BodyLimits,
    /// RFC 9110 §15.5.6: a 405 names the methods the resource supports in `Allow`; path → list.
    pub allowed: HashMap<String, String>,
    /// A span per request, for an OTLP exporter. Without one the span would only add its
    /// fields to the request's log lines, at about a tenth of a request's CPU.
    pub traced: bool,
    /// The series of the two operations' POSTs, looked up once each: `with_label_values`
    /// hashes its labels on every call.
    pub hot: [HotSeries; 2],
    /// Slow clients given up on come in floods: one log line a second.
    pub slow_clients: LogThrottle,
}

/// One operation's POST series, each made on first use as `with_label_values` makes them.
#[derive(Default)]
pub struct HotSeries {
    by_class: [OnceLock<IntCounter>; 4],
    duration: OnceLock<Histogram>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Generate,
    Verify,
}

/// A request's bounded labels, read once from its head.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub route: &'static str,
    pub method: &'static str,
    /// The operation at this path, whatever the method.
    pub operation: Option<Operation>,
}

impl Labels {
    pub fn of(method: &Method, path: &str) -> Self {
        let operation = match path {
            "/otp/generate" => Some(Operation::Generate),
            "/otp/verify" => Some(Operation::Verify),
            _ => None,
        };
        let method = match method.as_str() {
            "GET" => "GET",
            "POST" => "POST",
            "HEAD" => "HEAD",
            "OPTIONS" => "OPTIONS",
            _ => "other",
        };
        Self {
            route: route_label(path),
            method,
            operation,
        }
    }
}

impl Edge {
    /// The request's span: a real one only when traces are exported.
    pub fn span(&self, labels: &Labels) -> tracing::Span {
        if !self.traced {
            return tracing::Span::none();
        }
        let (method, route) = (labels.method, labels.route);
        let span = tracing::info_span!(
            "http",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            http.request.method = method,
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        crate::telemetry::record_trace_id(&span);
        span
    }

    /// Reads at most `body.max_bytes` of body whatever `Content-Length` claims (chunked bodies
    /// too), before any handler sees the request. The whole body must arrive within
    /// `body.read_timeout`: hyper bounds only the head, and a client trickling a body it never
    /// finishes would otherwise hold its connection, and its slot under `max_connections`, for
    /// good.
    pub async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<poem::Result<Bytes>, SlowClient> {
        let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.body.max_bytes) {
            return Ok(Err(too_large()));
        }
        let collect = Limited::new(body, self.body.max_bytes).collect();
        let collected = tokio::time::timeout(self.body.read_timeout, collect)
            .await
            .map_err(|_| SlowClient)?;
        Ok(collected.map(|c| c.to_bytes()).map_err(|e| {
            if e.is::<LengthLimitError>() {
                too_large()
            } else {
                poem::Error::from(poem::error::ReadBodyError::Io(std::io::Error::other(e)))
            }
        }))
    }

    /// The JSON answer to a request refused before our handlers (bad JSON, content type, size):
    /// still an `invalid` outcome of the operation.
    pub async fn refuse(&self, operation: Option<Operation>, e: poem::Error) -> Response {
        if let Some(operation) = operation
            && !e.is_from_response()
            && e.status().is_client_error()
        {
            match operation {
                Operation::Generate => self.metrics.generate.inc(outcome::Generate::Invalid),
                Operation::Verify => self.metrics.verify.inc(outcome::Verify::Invalid),
            }
        }
        render_error(e).await
    }

    /// Counts and logs a connection closed for a slow client (a request given up on has no
    /// answer, so no status to count it by).
    pub fn gave_up(&self, stage: SlowStage) {
        self.metrics.http_slow_clients.inc(stage);
        if let Some(held_back) = self.slow_clients.admit(Clock::System.now_ms()) {
            let why = match stage {
                SlowStage::Body => "its request body did not arrive in time",
                SlowStage::Response => "the client took none of its answer in time",
            };
            info!(held_back, "closed a slow client's connection: {why}");
        }
    }

    /// Adds `Allow` to a 405 without one, records the status on the span and counts the request.
    pub fn finish(
        &self,
        mut resp: Response,
        labels: &Labels,
        span: &tracing::Span,
        started: Instant,
    ) -> Response {
        if resp.status() == StatusCode::METHOD_NOT_ALLOWED
            && !resp.headers().contains_key(header::ALLOW)
            && let Some(value) = self
                .allowed
                .get(labels.route)
                .and_then(|m| header::HeaderValue::from_str(m).ok())
        {
            resp.headers_mut().insert(header::ALLOW, value);
        }
        span.record("http.response.status_code", resp.status().as_u16());
        let (index, class) = match resp.status().as_u16() {
            200..=299 => (0, "2xx"),
            300..=399 => (1, "3xx"),
            400..=499 => (2, "4xx"),
            _ => (3, "5xx"),
        };
        let m = &self.metrics;
        let requests = || {
            m.http_requests
                .with_label_values(&[labels.route, labels.method, class])
        };
        let duration = || {
            m.http_duration
                .with_label_values(&[labels.route, labels.method])
        };
        let took = started.elapsed().as_secs_f64();
        match labels.operation {
            Some(op) if labels.method == "POST" => {
                let hot = &self.hot[op as usize];
                hot.by_class[index].get_or_init(requests).inc();
                hot.duration.get_or_init(duration).observe(took);
            }
            _ => {
                requests().inc();
                duration().observe(took);
            }
        }
        resp
    }
}

/// The bounded `route` label of a path.
fn route_label(path: &str) -> &'static str {
    match ROUTES.iter().find(|r| **r == path) {
        Some(r) => r,
        None if path.starts_with("/docs") => "/docs",
        None => "other",
    }
}
