//! Integration tests: the real binary, a real redis-server and a real SMTP server per test.
mod fault_kit;
mod helpers;
mod smtp_sink;

mod abuse;
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
mod secrecy;
mod tracing;
mod worker;
