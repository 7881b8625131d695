//! Request middleware: a hard body cap and HTTP metrics keyed on route patterns.
use std::time::Instant;

use poem::http::{StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::outcome;

/// Routes with their own metric label; everything else is `other`, so labels stay bounded.
const ROUTES: &[&str] = &[
    "/otp/generate",
    "/otp/verify",
    "/openapi.json",
    "/openapi.yaml",
];

/// Reads at most `max` bytes of body whatever `Content-Length` claims (chunked bodies too).
pub async fn limit_body<E: Endpoint>(
    ep: std::sync::Arc<E>,
    mut req: Request,
    max: usize,
) -> poem::Result<Response> {
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let bytes = req
        .take_body()
        .into_bytes_limit(max)
        .await
        .map_err(|e| match e {
            poem::error::ReadBodyError::PayloadTooLarge => too_large(),
            other => poem::Error::from(other),
        })?;
    req.set_body(Body::from_bytes(bytes));
    ep.call(req).await.map(IntoResponse::into_response)
}

/// Requests that poem rejects before our handlers run (bad JSON, wrong content type, too large)
/// still count as `invalid` outcomes of their operation.
pub async fn count_rejected<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    metrics: Metrics,
) -> poem::Result<Response> {
    #[derive(Clone, Copy)]
    enum Operation {
        Generate,
        Verify,
    }
    let operation = match req.uri().path() {
        "/otp/generate" => Some(Operation::Generate),
        "/otp/verify" => Some(Operation::Verify),
        _ => None,
    };
    let result = ep.call(req).await.map(IntoResponse::into_response);
    if let (Err(e), Some(operation)) = (&result, operation)
        && !e.is_from_response()
        && e.status().is_client_error()
    {
        match operation {
            Operation::Generate => metrics.generate.inc(outcome::Generate::Invalid),
            Operation::Verify => metrics.verify.inc(outcome::Verify::Invalid),
        }
    }
    result
}

/// RFC 9110 §15.5.6: a 405 names the methods the resource does support in `Allow`. `allowed` maps
/// each path of the API to that list (from the spec's operations, see `api::app`).
pub async fn allow_header<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    allowed: std::sync::Arc<std::collections::HashMap<String, String>>,
) -> poem::Result<Response> {
    let methods = allowed.get(req.uri().path()).cloned();
    let mut resp = match ep.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::ALLOW)
        && let Some(value) = methods.and_then(|m| header::HeaderValue::from_str(&m).ok())
    {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    Ok(resp)
}

/// The bounded `route` label of a path.
fn route_label(path: &str) -> &'static str {
    match ROUTES.iter().find(|r| **r == path) {
        Some(r) => r,
        None if path.starts_with("/docs") => "/docs",
        None => "other",
    }
}

/// Request metrics, and a span per request when traces are exported (`traced`). Without an
/// exporter the span would only add its fields to the request's log lines, at a cost of about a
/// tenth of a request's CPU, so it is not made.
pub async fn record<E: Endpoint>(
    ep: std::sync::Arc<E>,
    req: Request,
    metrics: Metrics,
    traced: bool,
) -> poem::Result<Response> {
    let route = route_label(req.uri().path());
    let method = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let span = if traced {
        tracing::info_span!(
            "http",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            http.request.method = method,
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        )
    } else {
        tracing::Span::none()
    };
    crate::telemetry::record_trace_id(&span);
    let started = Instant::now();
    let resp = match ep.call(req).instrument(span.clone()).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    span.record("http.response.status_code", resp.status().as_u16());
    let class = match resp.status().as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics
        .http_requests
        .with_label_values(&[route, method, class])
        .inc();
    metrics
        .http_duration
        .with_label_values(&[route, method])
        .observe(started.elapsed().as_secs_f64());
    Ok(resp)
}
