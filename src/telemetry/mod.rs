//! Logs (JSON or pretty) and, when `telemetry.otlp_endpoint` is set, OpenTelemetry traces over
//! OTLP/HTTP. Jobs carry the W3C trace context, so a generate and its mail are one trace.
mod json_lines;
mod json_text;
mod log_writer;
mod throttle;

pub use throttle::LogThrottle;

use std::collections::HashMap;

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};

/// Flushes buffered log lines and spans when dropped at the end of `main`.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    _logs: log_writer::FlushGuard,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("email-otp: flushing traces: {e}");
        }
    }
}

/// Installs the global subscriber; a second call (tests) leaves the first in place.
pub fn init(settings: &Settings, service: &str) -> anyhow::Result<TelemetryGuard> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&settings.log.level));
    // Log lines are buffered and written by a background thread every few milliseconds, so a
    // request never waits on a write and a busy service makes few writes.
    let (writer, logs) = log_writer::BatchedWriter::stdout().context("standard output")?;
    let json = (settings.log.format == LogFormat::Json)
        .then(|| json_lines::JsonLines::new(writer.clone()));
    let pretty = (settings.log.format == LogFormat::Pretty).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .compact()
    });
    let provider = match &settings.telemetry.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint.expose(), service)?),
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("email-otp")));
    let library_lines = tracing_subscriber::filter::filter_fn(|meta| {
        !meta.is_event()
            || throttle::admit_event(meta.target(), crate::clock::Clock::System.now_ms())
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(library_lines)
        .with(json)
        .with(pretty)
        .with(otel)
        .try_init();
    Ok(TelemetryGuard {
        provider,
        _logs: logs,
    })
}

fn tracer_provider(endpoint: &str, service: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .context("telemetry.otlp_endpoint")?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("email-otp")
        .with_attribute(opentelemetry::KeyValue::new(
            "email_otp.mode",
            service.to_owned(),
        ))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The current span's trace context as W3C headers, for a job to carry.
pub fn inject_current() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    }
    carrier
}

/// Makes `span` a child of the trace a job carries; records its trace id for the logs.
pub fn adopt(span: &tracing::Span, carrier: &HashMap<String, String>) {
    if !carrier.is_empty() {
        let _ = span.set_parent(TraceContextPropagator::new().extract(carrier));
    }
    record_trace_id(span);
}

/// Puts the OpenTelemetry trace id into the span's `trace_id` field, so JSON logs show it.
pub fn record_trace_id(span: &tracing::Span) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
    }
}
