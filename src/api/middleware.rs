//! The one middleware around every route: a hard body cap, JSON errors (with `Allow` on 405),
//! rejected requests counted as `invalid`, HTTP metrics keyed on route patterns, and a span per
//! request when traces are exported. One layer rather than one per concern: poem nests each
//! layer's future in the next and moves the nest on every boxing, so each layer more copied
//! kilobytes per request.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Bytes;
use poem::http::{StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use super::errors::render_error;
use crate::metrics::Metrics;
use crate::outcome;

/// Routes with their own metric label; everything else is `other`, so labels stay bounded.
const ROUTES: &[&str] = &[
    "/otp/generate",
    "/otp/verify",
    "/openapi.json",
    "/openapi.yaml",
];

/// What the middleware needs, built once.
pub struct Edge {
    pub metrics: Metrics,
    pub max_body_bytes: usize,
    /// RFC 9110 §15.5.6: a 405 names the methods the resource supports in `Allow`; path → list.
    pub allowed: HashMap<String, String>,
    /// A span per request, for an OTLP exporter. Without one the span would only add its
    /// fields to the request's log lines, at about a tenth of a request's CPU.
    pub traced: bool,
}

#[derive(Clone, Copy)]
enum Operation {
    Generate,
    Verify,
}

pub async fn edge<E: Endpoint>(
    ep: Arc<E>,
    mut req: Request,
    edge: Arc<Edge>,
) -> poem::Result<Response> {
    let path = req.uri().path();
    let route = route_label(path);
    let operation = match path {
        "/otp/generate" => Some(Operation::Generate),
        "/otp/verify" => Some(Operation::Verify),
        _ => None,
    };
    let method = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let span = if edge.traced {
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
    } else {
        tracing::Span::none()
    };
    let started = Instant::now();
    let resp = async {
        let result = match limit_body(&mut req, edge.max_body_bytes).await {
            Ok(()) => ep.call(req).await.map(IntoResponse::into_response),
            Err(e) => Err(e),
        };
        match result {
            Ok(resp) => resp,
            Err(e) => {
                // Rejected by poem before our handlers (bad JSON, content type, size): still an
                // `invalid` outcome of the operation.
                if let Some(operation) = operation
                    && !e.is_from_response()
                    && e.status().is_client_error()
                {
                    match operation {
                        Operation::Generate => {
                            edge.metrics.generate.inc(outcome::Generate::Invalid)
                        }
                        Operation::Verify => edge.metrics.verify.inc(outcome::Verify::Invalid),
                    }
                }
                render_error(e).await
            }
        }
    }
    .instrument(span.clone())
    .await;
    let resp = with_allow(resp, &edge.allowed, route);
    span.record("http.response.status_code", resp.status().as_u16());
    let class = match resp.status().as_u16() {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let m = &edge.metrics;
    m.http_requests
        .with_label_values(&[route, method, class])
        .inc();
    m.http_duration
        .with_label_values(&[route, method])
        .observe(started.elapsed().as_secs_f64());
    Ok(resp)
}

/// Reads at most `max` bytes of body whatever `Content-Length` claims (chunked bodies too).
async fn limit_body(req: &mut Request, max: usize) -> poem::Result<()> {
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    // Not poem's `into_bytes_limit`: it reads through a zeroed 4 KiB array that lives in the
    // request's future, so every request zeroed it and every move of the future copied it.
    let body: BoxBody<Bytes, std::io::Error> = req.take_body().into();
    let collected = Limited::new(body, max).collect().await.map_err(|e| {
        if e.is::<LengthLimitError>() {
            too_large()
        } else {
            poem::Error::from(poem::error::ReadBodyError::Io(std::io::Error::other(e)))
        }
    })?;
    req.set_body(Body::from_bytes(collected.to_bytes()));
    Ok(())
}

/// Adds `Allow` to a 405 that has none. `route` is the path for the API's own routes, the only
/// ones with an entry in `allowed`.
fn with_allow(mut resp: Response, allowed: &HashMap<String, String>, route: &str) -> Response {
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && !resp.headers().contains_key(header::ALLOW)
        && let Some(value) = allowed
            .get(route)
            .and_then(|m| header::HeaderValue::from_str(m).ok())
    {
        resp.headers_mut().insert(header::ALLOW, value);
    }
    resp
}

/// The bounded `route` label of a path.
fn route_label(path: &str) -> &'static str {
    match ROUTES.iter().find(|r| **r == path) {
        Some(r) => r,
        None if path.starts_with("/docs") => "/docs",
        None => "other",
    }
}
