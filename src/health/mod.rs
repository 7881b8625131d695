//! What the process knows about itself: readiness, drain, supervised tasks, the last Redis ping
//! and the last SMTP result. Shared by the supervisor, the ping loop, the worker and the admin
//! listener; holds no addresses, codes or error text.
pub mod ping;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

pub use status::{QueueStatus, Status};

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    /// Stopped by the drain, as asked.
    Stopped,
    /// Ended by itself, failed or panicked.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RedisPing {
    pub reachable: bool,
    /// Round trip of a successful ping.
    pub latency: Option<Duration>,
    pub at: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmtpResult {
    pub ok: bool,
    /// A bounded class such as "sent", "transient" or "permanent": never a server's reply text.
    pub class: &'static str,
    pub at: SystemTime,
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct Health(Arc<Inner>);

struct Inner {
    metrics: Metrics,
    ready: AtomicBool,
    draining: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    tasks: Vec<(&'static str, TaskState)>,
    redis: Option<RedisPing>,
    smtp: Option<SmtpResult>,
}

impl Health {
    /// Not ready until `set_ready(true)`; `email_otp_ready` and `email_otp_redis_up` follow it.
    pub fn new(metrics: Metrics) -> Self {
        metrics.ready.set(0);
        Self(Arc::new(Inner {
            metrics,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        }))
    }

    /// A panic elsewhere while holding the lock leaves plain data behind: keep reading it.
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ready only once serving and never again after a drain began.
    pub fn set_ready(&self, ready: bool) {
        let ready = ready && !self.is_draining();
        self.0.ready.store(ready, Ordering::SeqCst);
        self.0.metrics.ready.set(i64::from(ready));
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    /// Not ready from now on, before anything stops, so load balancers move away first.
    pub fn begin_drain(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
        self.set_ready(false);
    }

    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }

    pub fn set_task(&self, name: &'static str, state: TaskState) {
        let mut s = self.state();
        match s.tasks.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = state,
            None => s.tasks.push((name, state)),
        }
    }

    pub fn tasks(&self) -> Vec<(&'static str, TaskState)> {
        self.state().tasks.clone()
    }

    /// The first task that ended by itself: the process is no longer alive as a whole.
    pub fn failed_task(&self) -> Option<&'static str> {
        let s = self.state();
        s.tasks
            .iter()
            .find(|(_, st)| *st == TaskState::Failed)
            .map(|(n, _)| *n)
    }

    /// One Redis round trip: its latency, or `None` when it failed.
    pub fn record_redis(&self, latency: Option<Duration>) {
        self.0.metrics.redis_up.set(i64::from(latency.is_some()));
        self.state().redis = Some(RedisPing {
            reachable: latency.is_some(),
            latency,
            at: SystemTime::now(),
        });
    }

    pub fn redis(&self) -> Option<RedisPing> {
        self.state().redis
    }

    /// Called by the worker after each send: `ok` and a bounded class, e.g.
    /// `record_smtp(true, "sent")` or `record_smtp(false, "transient")`.
    pub fn record_smtp(&self, ok: bool, class: &'static str) {
        self.state().smtp = Some(SmtpResult {
            ok,
            class,
            at: SystemTime::now(),
        });
    }

    pub fn smtp(&self) -> Option<SmtpResult> {
        self.state().smtp
    }
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2025-01-31T12:00:00.250Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::clock::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let at = |s: u64, ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_735_689_599, 999)), "2024-12-31T23:59:59.999Z");
    }

    #[test]
    fn readiness_follows_drain_and_the_gauge() {
        let metrics = Metrics::new();
        let h = Health::new(metrics.clone());
        assert!(!h.is_ready());
        h.set_ready(true);
        assert!(h.is_ready());
        assert_eq!(metrics.ready.get(), 1);
        h.begin_drain();
        h.set_ready(true);
        assert!(!h.is_ready() && h.is_draining());
        assert_eq!(metrics.ready.get(), 0);
    }

    #[test]
    fn failed_task_names_the_first_failure() {
        let h = Health::new(Metrics::new());
        h.set_task("api", TaskState::Running);
        h.set_task("worker", TaskState::Running);
        assert_eq!(h.failed_task(), None);
        h.set_task("worker", TaskState::Failed);
        assert_eq!(h.failed_task(), Some("worker"));
        h.record_smtp(false, "transient");
        assert_eq!(
            h.smtp().map(|s| (s.ok, s.class)),
            Some((false, "transient"))
        );
    }
}
