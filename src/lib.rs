//! email-otp: proves that a person controls an email address with a one-time code.
pub mod api;
pub mod cli;
pub mod config;
pub mod dev;
pub mod domain;
pub mod health;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod queue;
pub mod startup;
pub mod store;
pub mod supervisor;
pub mod telemetry;
pub mod worker;
