//! Every metric in one place, on one registry served at the admin port's `/metrics`.
//! Labels are bounded enums or route patterns: never an address, a code or a raw path.
use std::marker::PhantomData;

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder, core::Collector,
};

use crate::outcome::{self, Outcome};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const SMTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A counter whose one label takes exactly the values of an `Outcome` enum.
pub struct OutcomeCounter<T>(IntCounterVec, PhantomData<T>);

impl<T: Outcome> OutcomeCounter<T> {
    pub fn inc(&self, outcome: T) {
        self.0.with_label_values(&[outcome.label()]).inc();
    }

    /// Every series at 0 from the start, so rate() and alerts work before the first event.
    fn touch(&self) {
        for o in T::ALL {
            self.0.with_label_values(&[o.label()]);
        }
    }

    #[cfg(test)]
    pub fn get(&self, outcome: T) -> u64 {
        self.0.with_label_values(&[outcome.label()]).get()
    }
}

/// Cloned into every middleware call and task: one `Arc`, not a dozen.
#[derive(Clone)]
pub struct Metrics(std::sync::Arc<MetricSet>);

impl std::ops::Deref for Metrics {
    type Target = MetricSet;

    fn deref(&self) -> &MetricSet {
        &self.0
    }
}

pub struct MetricSet {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub generate: OutcomeCounter<outcome::Generate>,
    pub verify: OutcomeCounter<outcome::Verify>,
    /// Vectors, even the unlabelled age: `reset()` drops their series, so a scrape that cannot
    /// read the queue shows no value instead of a stale one.
    pub queue_depth: IntGaugeVec,
    pub queue_oldest_age: GaugeVec,
    pub jobs: OutcomeCounter<outcome::Job>,
    pub jobs_reaped: IntCounter,
    pub smtp_duration: Histogram,
    pub smtp_errors: OutcomeCounter<outcome::SmtpError>,
    pub redis_up: IntGauge,
    pub ready: IntGauge,
}

/// Registers a metric built at start-up. Names are static and unique, so an error here is a bug
/// and stops the process before it serves anything.
#[allow(
    clippy::panic,
    reason = "start-up only: a metric that cannot register is a bug in this file"
)]
fn reg<M: Collector + Clone + 'static>(r: &Registry, metric: prometheus::Result<M>) -> M {
    let metric = metric.unwrap_or_else(|e| panic!("building a metric: {e}"));
    if let Err(e) = r.register(Box::new(metric.clone())) {
        panic!("registering a metric: {e}");
    }
    metric
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
            OutcomeCounter(
                reg(r, IntCounterVec::new(Opts::new(name, help), &[label])),
                PhantomData,
            )
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
            jobs_reaped: reg(
                &r,
                IntCounter::new(
                    "email_otp_jobs_reaped_total",
                    "Jobs whose lease expired (worker died, stalled or gave up), moved back to pending.",
                ),
            ),
            smtp_duration: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "email_otp_smtp_send_duration_seconds",
                        "Time to hand one mail to the transport.",
                    )
                    .buckets(SMTP_BUCKETS.to_vec()),
                ),
            ),
            smtp_errors: counter(
                &r,
                "email_otp_smtp_send_errors_total",
                "Failed sends by class.",
                "class",
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
        m.touch_label_sets();
        Self(std::sync::Arc::new(m))
    }
}

impl MetricSet {
    /// Export every known series at 0 from the start, so rate() and alerts work before the first event.
    fn touch_label_sets(&self) {
        self.generate.touch();
        self.verify.touch();
        self.jobs.touch();
        self.smtp_errors.touch();
    }

    /// Sets the queue gauges from one read of Redis, or removes them when the read failed.
    pub fn set_queue_depth(&self, depth: Option<&crate::queue::Depth>) {
        let Some(d) = depth else {
            self.queue_depth.reset();
            self.queue_oldest_age.reset();
            return;
        };
        for (s, v) in [
            ("pending", d.pending),
            ("processing", d.processing),
            ("delayed", d.delayed),
            ("dead", d.dead),
        ] {
            self.queue_depth.with_label_values(&[s]).set(v);
        }
        let age = d.oldest_pending_age_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
        self.queue_oldest_age
            .with_label_values::<&str>(&[])
            .set(age);
    }

    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Depth;

    #[test]
    fn queue_gauges_vanish_when_the_queue_cannot_be_read() {
        let m = Metrics::new();
        let depth = Depth {
            pending: 3,
            oldest_pending_age_ms: Some(1500),
            ..Depth::default()
        };
        m.set_queue_depth(Some(&depth));
        let text = m.encode();
        assert!(
            text.contains("email_otp_queue_depth{state=\"pending\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("email_otp_queue_oldest_pending_age_seconds 1.5"),
            "{text}"
        );
        m.set_queue_depth(None);
        let text = m.encode();
        assert!(!text.contains("email_otp_queue_"), "{text}");
        m.set_queue_depth(Some(&Depth::default()));
        assert!(
            m.encode()
                .contains("email_otp_queue_oldest_pending_age_seconds 0")
        );
    }
}
