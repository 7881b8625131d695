//! Per-client limits, in process, and the rule that says who the client is. Per-address limits
//! live in Redis (codes' generate and verify scripts) so they hold across API replicas; these
//! hold per replica (a replica count of N multiplies them by about N).
mod ip;
mod proxies;

pub use ip::{FailureLimiter, IpLimiter};
pub use proxies::{TrustedProxies, limit_key};
