//! Every metric in one place, on one registry served at the admin port's `/metrics`.
//! Labels are bounded enums or route patterns: never an address, a code or a raw path.
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const SMTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub generate: IntCounterVec,
    pub verify: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub queue_oldest_age: Gauge,
    pub jobs: IntCounterVec,
    pub jobs_reaped: IntCounter,
    pub smtp_duration: HistogramVec,
    pub smtp_errors: IntCounterVec,
    pub redis_up: IntGauge,
    pub ready: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    register(r, c.clone());
    c
}

fn register<M: prometheus::core::Collector + 'static>(r: &Registry, m: M) {
    // Names are static and unique, so this only fails on a programming error at start-up.
    if let Err(e) = r.register(Box::new(m)) {
        panic!("registering a metric: {e}");
    }
}

impl Metrics {
    /// Start-up only: panics on a duplicate metric name, which is a bug.
    pub fn new() -> Self {
        let r = Registry::new();
        let http_requests = counter(
            &r,
            "email_otp_http_requests_total",
            "HTTP requests by route pattern, method and status class.",
            &["route", "method", "status_class"],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "email_otp_http_request_duration_seconds",
                "HTTP request duration by route pattern and method.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        register(&r, http_duration.clone());
        let generate = counter(
            &r,
            "email_otp_generate_total",
            "Generate requests by outcome.",
            &["outcome"],
        );
        let verify = counter(
            &r,
            "email_otp_verify_total",
            "Verify requests by outcome.",
            &["outcome"],
        );
        let queue_depth = IntGaugeVec::new(
            Opts::new(
                "email_otp_queue_depth",
                "Jobs in the queue by state, read from Redis.",
            ),
            &["state"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        register(&r, queue_depth.clone());
        let queue_oldest_age = Gauge::new(
            "email_otp_queue_oldest_pending_age_seconds",
            "Age of the oldest pending job.",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        register(&r, queue_oldest_age.clone());
        let jobs = counter(
            &r,
            "email_otp_jobs_total",
            "Jobs finished by this worker, by outcome.",
            &["outcome"],
        );
        let jobs_reaped = IntCounter::new(
            "email_otp_jobs_reaped_total",
            "Jobs of dead workers returned to pending.",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        register(&r, jobs_reaped.clone());
        let smtp_duration = HistogramVec::new(
            HistogramOpts::new(
                "email_otp_smtp_send_duration_seconds",
                "Time to hand one mail to the transport.",
            )
            .buckets(SMTP_BUCKETS.to_vec()),
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        register(&r, smtp_duration.clone());
        let smtp_errors = counter(
            &r,
            "email_otp_smtp_send_errors_total",
            "Failed sends by class.",
            &["class"],
        );
        let redis_up = IntGauge::new(
            "email_otp_redis_up",
            "1 when the last Redis ping succeeded.",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        register(&r, redis_up.clone());
        let ready = IntGauge::new("email_otp_ready", "1 when /readyz answers 200.")
            .unwrap_or_else(|e| panic!("{e}"));
        register(&r, ready.clone());
        let build = GaugeVec::new(
            Opts::new("email_otp_build_info", "Build information."),
            &["version", "git_sha"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("EMAIL_OTP_GIT_SHA").unwrap_or("unknown"),
            ])
            .set(1.0);
        register(&r, build);
        let m = Self {
            registry: r,
            http_requests,
            http_duration,
            generate,
            verify,
            queue_depth,
            queue_oldest_age,
            jobs,
            jobs_reaped,
            smtp_duration,
            smtp_errors,
            redis_up,
            ready,
        };
        m.touch_label_sets();
        m
    }

    /// Export every known series at 0 from the start, so rate() and alerts work before the first event.
    fn touch_label_sets(&self) {
        for o in ["accepted", "rate_limited", "invalid", "unavailable"] {
            self.generate.with_label_values(&[o]);
        }
        for o in [
            "verified",
            "incorrect",
            "too_many_attempts",
            "invalid",
            "unavailable",
        ] {
            self.verify.with_label_values(&[o]);
        }
        for s in ["pending", "processing", "delayed", "dead"] {
            self.queue_depth.with_label_values(&[s]);
        }
        for o in ["sent", "retried", "dead_lettered", "dropped_expired"] {
            self.jobs.with_label_values(&[o]);
        }
        for c in ["transient", "permanent"] {
            self.smtp_errors.with_label_values(&[c]);
        }
        self.smtp_duration.with_label_values::<&str>(&[]);
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
