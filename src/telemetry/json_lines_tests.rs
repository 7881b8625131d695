//! Our JSON lines against tracing-subscriber's JSON formatter, configured as the service used it:
//! the same events must give the same JSON (timestamps aside, which only share their form).
use std::io;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing::{Level, info, info_span, span, warn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use super::JsonLines;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Self;
    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.ends_with('\n'),
            "every line ends with a newline: {text:?}"
        );
        text.lines().map(str::to_owned).collect()
    }
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("relay said \"no\"\n twice")
    }
}

impl std::error::Error for Failure {}

/// Events of every shape the service logs: no span, nested spans, fields recorded later, each
/// field type, strings that need escaping, and a line from the `log` crate.
fn emit() {
    info!("plain");
    warn!(to = %"u***@example.com", error = %"quote \" backslash \\ tab \t", "send failed");
    info!(n = -3i64, m = 7u64, yes = true, ratio = 0.25f64, nan = f64::NAN, dbg = ?vec![1, 2], "types");
    let err = Failure;
    info!(
        error = &err as &(dyn std::error::Error + 'static),
        "an error value"
    );
    info!(text = "ünïcödé \u{1} \u{7f} 🦀", "escapes");
    let job = info_span!(
        "job",
        otel.name = "send code",
        job_id = "j-1",
        trace_id = tracing::field::Empty
    );
    {
        let _in = job.enter();
        info!(attempt = 2u64, "code mailed");
        job.record("trace_id", "0af7651916cd43dd8448eb211c80319c");
        info!("after record");
        let inner = span!(Level::INFO, "smtp send", otel.kind = "client");
        let _in = inner.enter();
        warn!("inside the inner span");
    }
    let bare = info_span!("bare");
    bare.in_scope(|| info!("span without fields"));
    tracing::event!(parent: &job, Level::INFO, "explicit parent");
    tracing_log::log::info!(target: "lettre::transport", "from the log crate: {}", 42);
}

fn run(layer: impl tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync) {
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, emit);
}

fn without_timestamp(line: &str) -> (Value, String) {
    let mut value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let timestamp = value.as_object_mut().unwrap().remove("timestamp").unwrap();
    (value, timestamp.as_str().unwrap().to_owned())
}

/// The form `2026-12-02T02:22:33.123456Z`, digit by digit.
fn shape(timestamp: &str) -> String {
    timestamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect()
}

#[test]
fn lines_equal_tracing_subscribers_json() {
    // `log` lines reach tracing through the bridge the service installs at start-up.
    let _ = tracing_log::LogTracer::init();
    let theirs = Captured::default();
    run(tracing_subscriber::fmt::layer()
        .with_writer(theirs.clone())
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false));
    let ours = Captured::default();
    run(JsonLines::new(ours.clone()));

    let (theirs, ours) = (theirs.lines(), ours.lines());
    assert_eq!(ours.len(), 11, "{ours:#?}");
    assert_eq!(theirs.len(), ours.len());
    for (t, o) in theirs.iter().zip(&ours) {
        let (t_value, t_time) = without_timestamp(t);
        let (o_value, o_time) = without_timestamp(o);
        assert_eq!(o_value, t_value, "\nours:   {o}\ntheirs: {t}");
        assert_eq!(shape(&o_time), shape(&t_time));
    }
}
