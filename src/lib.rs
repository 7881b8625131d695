//! email-otp: proves that a person controls an email address with a one-time code.
// No unwrap/expect/panic outside tests; where an invariant truly holds, a local allow says why.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
pub mod api;
pub mod cli;
pub mod clock;
pub mod codes;
pub mod config;
pub mod dev;
pub mod domain;
pub mod health;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod outcome;
pub mod queue;
pub mod startup;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod worker;
