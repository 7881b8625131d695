//! Every metric in one place, on one registry served at the admin port's `/metrics`.
//! Labels are bounded enums or route patterns: never an address, a code or a raw path.
use std::marker::PhantomData;

use prometheus::{
    Encoder, GaugeVec, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry,
    TextEncoder,
};

use crate::outcome::{self, Outcome};

mod build;

/// `result` of `email_otp_smtp_send_duration_seconds`: successful and failed sends apart, so a
/// relay that times out does not pass for a slow one.
pub(crate) const SEND_RESULTS: [&str; 2] = ["sent", "failed"];

/// A counter whose one label takes exactly the values of an `Outcome` enum. Every series
/// exists at 0 from the start, so rate() and alerts work before the first event; each is looked
/// up once, here, not per event (`with_label_values` hashes its labels).
pub struct OutcomeCounter<T>(IntCounterVec, Box<[IntCounter]>, PhantomData<T>);

impl<T: Outcome> OutcomeCounter<T> {
    pub(crate) fn new(vec: IntCounterVec) -> Self {
        let series = T::ALL
            .iter()
            .map(|o| vec.with_label_values(&[o.label()]))
            .collect();
        Self(vec, series, PhantomData)
    }

    pub fn inc(&self, outcome: T) {
        // `series` holds one counter per entry of `ALL`, in its order, and `ALL` lists every
        // variant (the `outcome!` macro builds both), so the position is always found.
        match T::ALL.iter().position(|o| *o == outcome) {
            Some(i) => self.1[i].inc(),
            None => self.0.with_label_values(&[outcome.label()]).inc(),
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
    /// Connections of the API port closed for a slow client; a body given up on has no answer,
    /// so it is not in `http_requests`.
    pub http_slow_clients: OutcomeCounter<outcome::SlowStage>,
    pub generate: OutcomeCounter<outcome::Generate>,
    pub verify: OutcomeCounter<outcome::Verify>,
    /// Vectors, even the unlabelled age: `reset()` drops their series, so a scrape that cannot
    /// read the queue shows no value instead of a stale one.
    pub queue_depth: IntGaugeVec,
    /// The same by partition (label `partition`, its index), so an uneven spread shows.
    pub queue_partition_depth: IntGaugeVec,
    pub queue_oldest_age: GaugeVec,
    pub jobs: OutcomeCounter<outcome::Job>,
    pub jobs_reaped: IntCounter,
    pub dead_letters_trimmed: IntCounter,
    /// Label `result`: `sent` or `failed` (see `observe_send`).
    pub smtp_duration: HistogramVec,
    pub smtp_errors: OutcomeCounter<outcome::SmtpError>,
    pub smtp_replies: OutcomeCounter<outcome::SmtpReply>,
    /// Label `op`: an `outcome::RedisOp`. Observed by `Store` for round trips Redis answered.
    pub redis_duration: HistogramVec,
    pub redis_up: IntGauge,
    pub ready: IntGauge,
}

impl MetricSet {
    /// Export every known series at 0 from the start, so rate() and alerts work before the first
    /// event (outcome counters make theirs when built).
    fn touch_label_sets(&self) {
        for result in SEND_RESULTS {
            self.smtp_duration.with_label_values(&[result]);
        }
        for op in <outcome::RedisOp as Outcome>::ALL {
            self.redis_duration.with_label_values(&[op.label()]);
        }
    }

    /// One send's result: its duration under `result`, the relay's answer, and the error class.
    pub fn observe_send(
        &self,
        sent: &Result<(), crate::mail::SendError>,
        took: std::time::Duration,
    ) {
        let [ok, failed] = SEND_RESULTS;
        let (result, reply) = match sent {
            Ok(()) => (ok, outcome::SmtpReply::Accepted),
            Err(e) => {
                self.smtp_errors.inc(e.class());
                (failed, e.reply())
            }
        };
        self.smtp_duration
            .with_label_values(&[result])
            .observe(took.as_secs_f64());
        self.smtp_replies.inc(reply);
    }

    /// One Redis round trip that got an answer.
    pub fn observe_redis(&self, op: outcome::RedisOp, took: std::time::Duration) {
        self.redis_duration
            .with_label_values(&[op.label()])
            .observe(took.as_secs_f64());
    }

    /// Sets the queue gauges from one read of every partition, or removes them when the read
    /// failed.
    pub fn set_queue_depth(&self, partitions: Option<&[crate::queue::Depth]>) {
        let Some(parts) = partitions else {
            self.queue_depth.reset();
            self.queue_partition_depth.reset();
            self.queue_oldest_age.reset();
            return;
        };
        for (i, p) in parts.iter().enumerate() {
            let i = i.to_string();
            for (s, v) in by_state(p) {
                self.queue_partition_depth
                    .with_label_values(&[&i, s])
                    .set(v);
            }
        }
        let d = crate::queue::Depth::sum(parts);
        for (s, v) in by_state(&d) {
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

fn by_state(d: &crate::queue::Depth) -> [(&'static str, i64); 4] {
    [
        ("pending", d.pending),
        ("processing", d.processing),
        ("delayed", d.delayed),
        ("dead", d.dead),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Depth;

    #[test]
    fn sends_are_counted_by_reply_class_and_timed_by_result() {
        use crate::mail::SendError;
        use crate::outcome::SmtpReply;
        let m = Metrics::new();
        let ms = std::time::Duration::from_millis;
        m.observe_send(&Ok(()), ms(20));
        m.observe_send(
            &Err(SendError::Transient(SmtpReply::Timeout, "slow".into())),
            ms(5000),
        );
        m.observe_send(
            &Err(SendError::Permanent(
                SmtpReply::PermanentReply,
                "550".into(),
            )),
            ms(30),
        );
        assert_eq!(m.smtp_replies.get(SmtpReply::Accepted), 1);
        assert_eq!(m.smtp_replies.get(SmtpReply::Timeout), 1);
        assert_eq!(m.smtp_replies.get(SmtpReply::PermanentReply), 1);
        assert_eq!(m.smtp_replies.get(SmtpReply::Connection), 0);
        assert_eq!(m.smtp_errors.get(outcome::SmtpError::Transient), 1);
        let count = |r: &str| m.smtp_duration.with_label_values(&[r]).get_sample_count();
        assert_eq!((count("sent"), count("failed")), (1, 2));
        let text = m.encode();
        for line in [
            "email_otp_smtp_replies_total{class=\"4xx\"} 0",
            "email_otp_smtp_replies_total{class=\"2xx\"} 1",
            "email_otp_redis_command_duration_seconds_count{op=\"verify\"} 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_exported() {
        let text = Metrics::new().encode();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(text.contains(&format!("\n{name} ")), "{name} in {text}");
        }
    }

    #[test]
    fn queue_gauges_vanish_when_the_queue_cannot_be_read() {
        let m = Metrics::new();
        let depth = Depth {
            pending: 3,
            oldest_pending_age_ms: Some(1500),
            ..Depth::default()
        };
        let other = Depth {
            pending: 2,
            oldest_pending_age_ms: Some(700),
            ..Depth::default()
        };
        m.set_queue_depth(Some(&[depth, other]));
        let text = m.encode();
        for series in [
            "email_otp_queue_depth{state=\"pending\"} 5",
            "email_otp_queue_partition_depth{partition=\"0\",state=\"pending\"} 3",
            "email_otp_queue_partition_depth{partition=\"1\",state=\"pending\"} 2",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        assert!(
            text.contains("email_otp_queue_oldest_pending_age_seconds 1.5"),
            "{text}"
        );
        m.set_queue_depth(None);
        let text = m.encode();
        assert!(!text.contains("email_otp_queue_"), "{text}");
        m.set_queue_depth(Some(&[Depth::default()]));
        assert!(
            m.encode()
                .contains("email_otp_queue_oldest_pending_age_seconds 0")
        );
    }
}
