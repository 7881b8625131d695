//! The async runtime's threads: the API and the worker run their requests, mail and Redis I/O on
//! `runtime.worker_threads` threads of one tokio runtime.
use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::checks::check;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSettings {
    /// Threads that run requests and mail; 0: one per CPU the process may use.
    pub worker_threads: usize,
}

/// One thread by default: a process then uses up to one core, and the chart scales out by
/// replicas. On a machine whose cores Redis and the clients share, a second thread cost 4–29 %
/// more CPU per request or mail in wake-ups between threads (BENCHMARKS.md).
impl Default for RuntimeSettings {
    fn default() -> Self {
        Self { worker_threads: 1 }
    }
}

/// How many threads the runtime gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerThreads {
    /// One per CPU the process may use (tokio's own default, cgroup limits included).
    PerCpu,
    Fixed(NonZeroUsize),
}

impl WorkerThreads {
    pub fn from_settings(s: &RuntimeSettings) -> Result<Self, ConfigError> {
        let n = check("runtime.worker_threads", s.worker_threads, 0, 1024)?;
        Ok(NonZeroUsize::new(n).map_or(Self::PerCpu, Self::Fixed))
    }

    /// The runtime the service runs on (built at start-up, before anything is spawned). One
    /// thread is tokio's current-thread scheduler: a woken task queues behind the ones already
    /// ready (the multi-thread scheduler runs it next), so the Redis connection's task writes the
    /// commands of many requests in one system call, and no thread has to be woken for work.
    pub fn runtime(self) -> std::io::Result<tokio::runtime::Runtime> {
        use tokio::runtime::Builder;
        let mut builder = match self {
            Self::Fixed(n) if n.get() == 1 => Builder::new_current_thread(),
            Self::Fixed(n) => {
                let mut builder = Builder::new_multi_thread();
                builder.worker_threads(n.get());
                builder
            }
            Self::PerCpu => Builder::new_multi_thread(),
        };
        builder.enable_all().build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(n: usize) -> WorkerThreads {
        WorkerThreads::from_settings(&RuntimeSettings { worker_threads: n }).unwrap()
    }

    #[test]
    fn the_runtime_gets_the_configured_threads() {
        let one = threads(RuntimeSettings::default().worker_threads)
            .runtime()
            .unwrap();
        assert_eq!(one.metrics().num_workers(), 1);
        assert_eq!(
            one.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        let three = threads(3).runtime().unwrap();
        assert_eq!(
            three.handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::MultiThread
        );
        assert_eq!(threads(3).runtime().unwrap().metrics().num_workers(), 3);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(threads(0), WorkerThreads::PerCpu);
        if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
            let per_cpu = threads(0).runtime().unwrap();
            assert_eq!(per_cpu.metrics().num_workers(), cpus);
        }
        assert!(
            WorkerThreads::from_settings(&RuntimeSettings {
                worker_threads: 1025
            })
            .is_err()
        );
    }
}
