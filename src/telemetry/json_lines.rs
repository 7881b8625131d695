//! JSON log lines, written straight into one buffer per line. The same lines as
//! tracing-subscriber's JSON formatter (flattened event, current span), which costs several times
//! more: it collects each event into a map and parses the span's fields back from JSON for every
//! line. Here a span's fields are kept as a ready JSON fragment and copied. A unit test checks
//! that both formatters write the same JSON.
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::json_text::{Escaped, push_str, push_timestamp};

/// The layer that writes one JSON object per event into `W`.
pub struct JsonLines<W> {
    writer: W,
}

impl<W> JsonLines<W> {
    pub fn new(writer: W) -> Self {
        Self { writer }
    }
}

/// A span's fields as `"name":value` pairs joined by commas, kept in the span's extensions. A
/// field recorded again is appended, not replaced (tracing-subscriber keeps the last): the
/// service's spans record each of their empty fields once.
struct SpanFields(String);

thread_local! {
    /// Reused per thread, so a line costs no allocation once the buffer has grown.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // The registry holds every span it announces; no span means no fields to keep.
        if let Some(span) = ctx.span(id) {
            let mut fields = Fields::new(String::new(), false);
            attrs.record(&mut fields);
            span.extensions_mut().insert(SpanFields(fields.out));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(kept) = span.extensions_mut().get_mut::<SpanFields>()
        {
            let pairs = std::mem::take(&mut kept.0);
            let more = !pairs.is_empty();
            let mut fields = Fields::new(pairs, more);
            values.record(&mut fields);
            kept.0 = fields.out;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |line: &mut String| {
            line.clear();
            self.format(event, &ctx, line);
            // Nowhere to report a failed log write; the writer buffers and does not fail.
            let _ = self.writer.make_writer().write_all(line.as_bytes());
        };
        // A `Debug` value that logs while being formatted finds the buffer in use: it gets its own.
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => write(&mut line),
            Err(_) => write(&mut String::new()),
        });
    }
}

impl<W> JsonLines<W> {
    fn format<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, line: &mut String)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        line.push_str("{\"timestamp\":\"");
        push_timestamp(line, SystemTime::now());
        line.push_str("\",\"level\":\"");
        // A line bridged from the `log` crate names the target it was logged under.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        line.push_str(meta.level().as_str());
        line.push('"');
        let mut fields = Fields::new(std::mem::take(line), true);
        event.record(&mut fields);
        *line = fields.out;
        line.push_str(",\"target\":");
        push_str(line, meta.target());
        if let Some(span) = ctx.event_span(event) {
            line.push_str(",\"span\":{");
            if let Some(kept) = span.extensions().get::<SpanFields>()
                && !kept.0.is_empty()
            {
                line.push_str(&kept.0);
                line.push(',');
            }
            line.push_str("\"name\":");
            push_str(line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
    }
}

/// Appends `"name":value` pairs to `out`, comma-separated.
struct Fields {
    out: String,
    /// Whether `out` already ends with a value, so the next pair needs a comma.
    comma: bool,
}

impl Fields {
    fn new(out: String, comma: bool) -> Self {
        Self { out, comma }
    }

    fn key(&mut self, field: &Field) {
        if self.comma {
            self.out.push(',');
        }
        self.comma = true;
        push_str(&mut self.out, field.name());
        self.out.push(':');
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_str(&mut self.out, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.out.push('"');
        // Writing into a String cannot fail.
        let _ = write!(Escaped(&mut self.out), "{value:?}");
        self.out.push('"');
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // JSON has no NaN or infinity; serde_json writes null for them too.
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                let _ = write!(self.out, "{n}");
            }
            None => self.out.push_str("null"),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        self.out.push('"');
        let _ = write!(Escaped(&mut self.out), "{value}");
        self.out.push('"');
    }
}

#[cfg(test)]
#[path = "json_lines_tests.rs"]
mod tests;
