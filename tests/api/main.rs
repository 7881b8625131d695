//! Integration tests: the real binary, a real redis-server and a real SMTP server per test.
mod helpers;
mod smtp_sink;

mod cli;
mod flow;
mod input;
mod limits;
mod readiness;
mod resilience;
mod secrecy;
mod tracing;
mod worker;
