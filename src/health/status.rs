//! The `/status` document: one JSON answer to "what is this process doing", for humans.
use serde::Serialize;

use super::{Health, TaskState, rfc3339};
use crate::queue::Depth;

#[derive(Debug, Serialize)]
pub struct Status {
    pub ready: bool,
    pub draining: bool,
    pub tasks: Vec<TaskStatus>,
    pub redis: RedisStatus,
    pub queue: QueueStatus,
    /// `null` until the worker of this process has finished a send (always in `api` mode).
    pub smtp: Option<SmtpStatus>,
}

#[derive(Debug, Serialize)]
pub struct TaskStatus {
    pub name: &'static str,
    pub running: bool,
    pub state: TaskState,
}

#[derive(Debug, Serialize)]
pub struct RedisStatus {
    /// `null` before the first ping.
    pub reachable: Option<bool>,
    pub latency_ms: Option<f64>,
    pub checked_at: Option<String>,
}

/// Read when asked; `available: false` (and no numbers) when Redis did not answer.
#[derive(Debug, Serialize)]
pub struct QueueStatus {
    pub available: bool,
    pub pending: Option<i64>,
    pub processing: Option<i64>,
    pub delayed: Option<i64>,
    pub dead: Option<i64>,
    pub oldest_pending_age_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct SmtpStatus {
    pub ok: bool,
    pub class: &'static str,
    pub at: String,
}

impl QueueStatus {
    pub fn from_depth(depth: Option<Depth>) -> Self {
        Self {
            available: depth.is_some(),
            pending: depth.map(|d| d.pending),
            processing: depth.map(|d| d.processing),
            delayed: depth.map(|d| d.delayed),
            dead: depth.map(|d| d.dead),
            oldest_pending_age_ms: depth.and_then(|d| d.oldest_pending_age_ms),
        }
    }
}

impl Status {
    pub fn gather(health: &Health, queue: QueueStatus) -> Self {
        let redis = health.redis();
        Self {
            ready: health.is_ready(),
            draining: health.is_draining(),
            tasks: health
                .tasks()
                .into_iter()
                .map(|(name, state)| TaskStatus {
                    name,
                    running: state == TaskState::Running,
                    state,
                })
                .collect(),
            redis: RedisStatus {
                reachable: redis.map(|r| r.reachable),
                latency_ms: redis
                    .and_then(|r| r.latency)
                    .map(|l| l.as_secs_f64() * 1000.0),
                checked_at: redis.map(|r| rfc3339(r.at)),
            },
            queue,
            smtp: health.smtp().map(|s| SmtpStatus {
                ok: s.ok,
                class: s.class,
                at: rfc3339(s.at),
            }),
        }
    }
}
