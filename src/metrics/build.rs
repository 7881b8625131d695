//! Building the metric set: every metric registered once, at start-up.

use prometheus::{
    GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, core::Collector,
};

use super::{MetricSet, Metrics, OutcomeCounter};
use crate::outcome::Outcome;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const SMTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// From a local Redis's 100 µs to the default 500 ms deadline and a little past it.
const REDIS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Registers a metric built at start-up. Names are static and unique, so an error here is a bug
/// and stops the process before it serves anything.
#[allow(
    clippy::panic,
    reason = "start-up only: a metric that cannot register is a bug in this file"
)]
fn reg<M: Collector + Clone + 'static>(r: &Registry, metric: prometheus::Result<M>) -> M {
    let metric = metric.unwrap_or_else(|e| panic!("building a metric: {e}"));
    register(r, Box::new(metric.clone()));
    metric
}

/// Registers a collector kept only by the registry (see `reg`).
#[allow(
    clippy::panic,
    reason = "start-up only: a metric that cannot register is a bug in this file"
)]
fn register(r: &Registry, collector: Box<dyn Collector>) {
    if let Err(e) = r.register(collector) {
        panic!("registering a metric: {e}");
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        fn counter<T: Outcome>(
            r: &Registry,
            name: &str,
            help: &str,
            label: &str,
        ) -> OutcomeCounter<T> {
            OutcomeCounter::new(reg(r, IntCounterVec::new(Opts::new(name, help), &[label])))
        }
        let m = MetricSet {
            http_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "email_otp_http_requests_total",
                        "HTTP requests by route pattern, method and status class.",
                    ),
                    &["route", "method", "status_class"],
                ),
            ),
            http_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "email_otp_http_request_duration_seconds",
                        "HTTP request duration by route pattern and method.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                ),
            ),
            generate: counter(
                &r,
                "email_otp_generate_total",
                "Generate requests by outcome.",
                "outcome",
            ),
            verify: counter(
                &r,
                "email_otp_verify_total",
                "Verify requests by outcome.",
                "outcome",
            ),
            queue_depth: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "email_otp_queue_depth",
                        "Jobs in the queue by state, read from Redis.",
                    ),
                    &["state"],
                ),
            ),
            queue_partition_depth: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "email_otp_queue_partition_depth",
                        "Jobs in each queue partition by state, read from Redis.",
                    ),
                    &["partition", "state"],
                ),
            ),
            queue_oldest_age: reg(
                &r,
                GaugeVec::new(
                    Opts::new(
                        "email_otp_queue_oldest_pending_age_seconds",
                        "Age of the oldest pending job.",
                    ),
                    &[],
                ),
            ),
            jobs: counter(
                &r,
                "email_otp_jobs_total",
                "Jobs finished by this worker, by outcome.",
                "outcome",
            ),
            http_slow_clients: counter(
                &r,
                "email_otp_http_slow_clients_total",
                "API connections closed for a slow client, by stage: body (not sent within http.body_read_timeout_ms; no answer), response (answers not taken within http.write_timeout_ms).",
                "stage",
            ),
            jobs_reaped: reg(
                &r,
                IntCounter::new(
                    "email_otp_jobs_reaped_total",
                    "Jobs whose lease expired (worker died, stalled or gave up), moved back to pending.",
                ),
            ),
            dead_letters_trimmed: reg(
                &r,
                IntCounter::new(
                    "email_otp_dead_letters_trimmed_total",
                    "Dead-letter entries dropped for the list's length or age limit.",
                ),
            ),
            smtp_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "email_otp_smtp_send_duration_seconds",
                        "Time to hand one mail to the transport, by result (sent or failed).",
                    )
                    .buckets(SMTP_BUCKETS.to_vec()),
                    &["result"],
                ),
            ),
            smtp_errors: counter(
                &r,
                "email_otp_smtp_send_errors_total",
                "Failed sends by class.",
                "class",
            ),
            smtp_replies: counter(
                &r,
                "email_otp_smtp_replies_total",
                "Sends by the relay's answer: 2xx, 4xx, 5xx, timeout, connection or local.",
                "class",
            ),
            redis_duration: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "email_otp_redis_command_duration_seconds",
                        "Redis round trips that got an answer, by operation (script or command).",
                    )
                    .buckets(REDIS_BUCKETS.to_vec()),
                    &["op"],
                ),
            ),
            redis_up: reg(
                &r,
                IntGauge::new(
                    "email_otp_redis_up",
                    "1 when the last Redis ping succeeded.",
                ),
            ),
            ready: reg(
                &r,
                IntGauge::new(
                    "email_otp_ready",
                    "1 while the process takes traffic: listeners serving, not draining.",
                ),
            ),
            registry: r.clone(),
        };
        let build = reg(
            &r,
            GaugeVec::new(
                Opts::new("email_otp_build_info", "Build information."),
                &["version", "git_sha"],
            ),
        );
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("EMAIL_OTP_GIT_SHA").unwrap_or("unknown"),
            ])
            .set(1.0);
        // CPU, resident memory, open file descriptors, start time: read from /proc at scrape.
        #[cfg(target_os = "linux")]
        register(
            &r,
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        );
        m.touch_label_sets();
        Self(std::sync::Arc::new(m))
    }
}
