//! Integration tests: the real binary, a real redis-server and a real SMTP server per test.
mod app;
mod fault_kit;
mod fleet;
mod helpers;
mod smtp_session;
mod smtp_sink;
mod stack;
mod test_cluster;
mod test_redis;

mod abuse;
mod budgets;
mod cli;
mod faults;
mod faults_queue;
mod flow;
mod input;
mod limits;
mod mta;
mod readiness;
mod redis_tls;
mod resilience;
mod scale;
mod secrecy;
mod tls;
mod tracing;
mod worker;
