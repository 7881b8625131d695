//! Runs the process's long-lived tasks by name. A task that ends before shutdown was asked for
//! (returning or panicking) takes the process down with an error naming it, instead of leaving
//! a half-working process that probes still call alive. Shutdown stops the tasks in stages:
//! traffic first, background duties next, the admin listener last.
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::health::{Health, TaskState};

/// When a task is stopped during the drain; stages stop in this order, each after the previous
/// one has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The API listener and the worker.
    Traffic,
    /// Periodic duties such as the Redis ping.
    Background,
    /// The admin listener: probes and metrics stay answerable until the very end.
    Admin,
}

const STAGES: [Stage; 3] = [Stage::Traffic, Stage::Background, Stage::Admin];

impl Stage {
    /// Its place in `STAGES`, the order of shutdown.
    fn index(self) -> usize {
        match self {
            Self::Traffic => 0,
            Self::Background => 1,
            Self::Admin => 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("task {0} stopped before shutdown was requested")]
    Ended(&'static str),
    #[error("task {name} failed")]
    Failed {
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("task {name} panicked: {message}")]
    Panicked { name: &'static str, message: String },
}

impl SupervisorError {
    pub fn task(&self) -> &'static str {
        match self {
            Self::Ended(name) | Self::Failed { name, .. } | Self::Panicked { name, .. } => name,
        }
    }
}

pub struct Supervisor {
    health: Health,
    tasks: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, (&'static str, Stage)>,
    /// One stop token per stage, indexed by `Stage::index`.
    stops: [CancellationToken; 3],
}

impl Supervisor {
    pub fn new(health: Health) -> Self {
        Self {
            health,
            tasks: JoinSet::new(),
            names: HashMap::new(),
            stops: std::array::from_fn(|_| CancellationToken::new()),
        }
    }

    /// Spawns `task` under `name`; it gets a token cancelled when its stage is stopped and should
    /// return soon after.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, stage: Stage, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let stop = self.stops[stage.index()].clone();
        let handle = self.tasks.spawn(task(stop));
        self.names.insert(handle.id(), (name, stage));
        self.health.set_task(name, TaskState::Running);
    }

    /// Runs until `shutdown` is cancelled or a task ends by itself, then drains in stages.
    /// `Ok` only when shutdown was asked for and every task stopped cleanly; otherwise the error
    /// of the first task that ended by itself, failed or panicked.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), SupervisorError> {
        let mut first_error = None;
        tokio::select! {
            _ = shutdown.cancelled() => info!("shutdown requested: draining"),
            Some(joined) = self.tasks.join_next_with_id() => {
                let err = self.finished(joined, false);
                error!(task = err.as_ref().map_or("?", |e| e.task()), "a task stopped unexpectedly: shutting down");
                first_error = err;
            }
        }
        self.health.begin_drain();
        for stage in STAGES {
            self.stops[stage.index()].cancel();
            while self.names.values().any(|(_, s)| *s == stage) {
                let Some(joined) = self.tasks.join_next_with_id().await else {
                    break;
                };
                if let Some(e) = self.finished(joined, true) {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Records one finished task; `Some` when its ending is an error (returning `Ok` is one too
    /// unless shutdown was under way).
    fn finished(
        &mut self,
        joined: Result<(Id, anyhow::Result<()>), JoinError>,
        draining: bool,
    ) -> Option<SupervisorError> {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(e) => e.id(),
        };
        let name = self.names.remove(&id).map_or("unknown", |(n, _)| n);
        let err = match joined {
            Ok((_, Ok(()))) if draining => None,
            Ok((_, Ok(()))) => Some(SupervisorError::Ended(name)),
            Ok((_, Err(e))) => Some(SupervisorError::Failed {
                name,
                source: e.into(),
            }),
            Err(e) => Some(SupervisorError::Panicked {
                name,
                message: panic_message(e),
            }),
        };
        match &err {
            None => {
                info!(task = name, "task stopped");
                self.health.set_task(name, TaskState::Stopped);
            }
            Some(e) => {
                error!(task = name, error = %anyhow_chain(e), "task ended");
                self.health.set_task(name, TaskState::Failed);
            }
        }
        err
    }
}

fn panic_message(e: JoinError) -> String {
    if !e.is_panic() {
        return "cancelled".into();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".into())
}

/// The error with its causes, as `main` prints it.
fn anyhow_chain(e: &SupervisorError) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
