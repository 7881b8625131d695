//! `POST /otp/generate` and `POST /otp/verify`.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use poem::Request;
use poem::http::HeaderMap;
use poem_openapi::payload::Json;
use tracing::{info, warn};

use super::bodies::{
    Accepted, AcceptedStatus, GenerateRequest, GenerateResponse, Verified, VerifyRequest,
    VerifyResponse,
};
use super::errors::{ApiError, ErrorCode};
use crate::clock::Clock;
use crate::codes::{Budget, Codes, GenerateOutcome, VerifyOutcome};
use crate::domain::{EmailAddress, OtpCode};
use crate::limits::{FailureLimiter, IpLimiter, TrustedProxies};
use crate::metrics::Metrics;
use crate::outcome;
use crate::queue::Job;
use crate::store::StoreError;
use crate::telemetry::LogThrottle;

pub struct OtpApi {
    pub codes: Codes,
    pub ip_limiter: Option<Arc<IpLimiter>>,
    pub verify_ip_limiter: Option<Arc<FailureLimiter>>,
    pub proxies: TrustedProxies,
    pub metrics: Metrics,
    pub digits: u32,
    pub quiet: RefusalLogs,
}

/// One throttle per log line that a flood or an outage would repeat for every request.
#[derive(Debug, Default)]
pub struct RefusalLogs {
    queue_full: LogThrottle,
    send_budget: LogThrottle,
    domain_budget: LogThrottle,
    redis: LogThrottle,
}

/// Who sent a request: the peer's address and the `X-Forwarded-For` headers the trusted-proxy
/// rule reads.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    /// Our accept loop gives every request its peer; `None` would be a bug (see `client_ip`).
    pub peer: Option<IpAddr>,
    pub headers: &'a HeaderMap,
}

impl<'a> Client<'a> {
    pub fn of(req: &'a Request) -> Self {
        Self {
            peer: req.remote_addr().as_socket_addr().map(|a| a.ip()),
            headers: req.headers(),
        }
    }
}

impl OtpApi {
    /// Generate's answer to a parsed body, counted by outcome; both HTTP paths call it.
    pub async fn answer_generate(
        &self,
        client: Client<'_>,
        body: &GenerateRequest,
    ) -> Result<GenerateResponse, ApiError> {
        let result = self.generate_inner(client, &body.email.0).await;
        let outcome = match &result {
            Ok(_) => outcome::Generate::Accepted,
            Err(rejected) => rejected.outcome,
        };
        self.metrics.generate.inc(outcome);
        result.map_err(|r| r.error)
    }

    /// Verify's answer to a parsed body, counted by outcome; both HTTP paths call it.
    pub async fn answer_verify(
        &self,
        client: Client<'_>,
        body: &VerifyRequest,
    ) -> Result<VerifyResponse, ApiError> {
        let result = self.verify_inner(client, body).await;
        let outcome = match &result {
            Ok(_) => outcome::Verify::Verified,
            Err(rejected) => rejected.outcome,
        };
        self.metrics.verify.inc(outcome);
        result.map_err(|r| r.error)
    }

    async fn generate_inner(
        &self,
        client: Client<'_>,
        email: &str,
    ) -> Result<GenerateResponse, Rejected<outcome::Generate>> {
        use outcome::Generate::{
            DomainBudget, Invalid, QueueFull, RateLimited, SendBudget, Unavailable,
        };
        let address = parse_address(email).map_err(|e| Rejected::new(e, Invalid))?;
        if let Some(limiter) = &self.ip_limiter {
            limiter.check(self.client_ip(client)).map_err(|wait| {
                let e = ApiError::too_many(
                    ErrorCode::RateLimited,
                    "Too many requests from this client",
                    wait,
                );
                Rejected::new(e, RateLimited)
            })?;
        }
        let now = Clock::System.now_ms();
        let mut job = Job::new(address.for_delivery(), now);
        job.trace = crate::telemetry::inject_current();
        let requested = self.codes.request(&address, &job).await;
        match requested.map_err(|e| Rejected::new(self.unavailable(e), Unavailable))? {
            GenerateOutcome::Queued => {
                // Fields given as `&str` are written as they are; `%` would format them through
                // `Display` into the line, a character at a time.
                info!(
                    to = address.masked().as_str(),
                    job_id = job.id.as_str(),
                    "code requested"
                );
                let policy = self.codes.policy();
                Ok(GenerateResponse::Accepted(Json(Accepted {
                    status: AcceptedStatus::Accepted,
                    message: "A code is on its way to the address".into(),
                    expires_in: policy.code_ttl.as_secs(),
                    retry_after: policy.email_cooldown.as_secs(),
                })))
            }
            GenerateOutcome::Limited { retry_after } => {
                info!(to = %address.masked(), "generate rate-limited");
                let e = ApiError::too_many(
                    ErrorCode::RateLimited,
                    "Too many codes requested for this address",
                    retry_after,
                );
                Err(Rejected::new(e, RateLimited))
            }
            GenerateOutcome::QueueFull { retry_after } => {
                if let Some(held_back) = self.quiet.queue_full.admit(now) {
                    warn!(held_back, "generate refused: the queue is full");
                }
                let e = ApiError::busy("Too many codes are waiting to be sent", retry_after);
                Err(Rejected::new(e, QueueFull))
            }
            GenerateOutcome::OverBudget {
                budget,
                retry_after,
            } => {
                let (e, outcome) = match budget {
                    Budget::Global => {
                        if let Some(held_back) = self.quiet.send_budget.admit(now) {
                            warn!(held_back, "generate refused: the send budget is spent");
                        }
                        let e = ApiError::busy("The sending budget is spent", retry_after);
                        (e, SendBudget)
                    }
                    Budget::Domain => {
                        if let Some(held_back) = self.quiet.domain_budget.admit(now) {
                            let domain = address.domain();
                            warn!(
                                domain,
                                held_back, "generate refused: the domain's send budget is spent"
                            );
                        }
                        let e = ApiError::busy(
                            "The sending budget for this domain is spent",
                            retry_after,
                        );
                        (e, DomainBudget)
                    }
                };
                Err(Rejected::new(e, outcome))
            }
        }
    }

    async fn verify_inner(
        &self,
        client: Client<'_>,
        body: &VerifyRequest,
    ) -> Result<VerifyResponse, Rejected<outcome::Verify>> {
        use outcome::Verify::{Incorrect, Invalid, TooManyAttempts, Unavailable};
        let address = parse_address(&body.email.0).map_err(|e| Rejected::new(e, Invalid))?;
        let code = OtpCode::parse(&body.otp.0, self.digits)
            .map_err(|e| Rejected::new(ApiError::invalid(format!("otp: {e}")), Invalid))?;
        // Checked before the address's own counters, so one client cannot lock out many
        // addresses; recorded only on a wrong code.
        let limited = self
            .verify_ip_limiter
            .as_ref()
            .map(|l| (l, self.client_ip(client), Instant::now()));
        if let Some((limiter, ip, now)) = &limited {
            limiter.check(*ip, *now).map_err(|wait| {
                let e = ApiError::too_many(
                    ErrorCode::TooManyAttempts,
                    "Too many failed attempts from this client",
                    wait,
                );
                Rejected::new(e, TooManyAttempts)
            })?;
        }
        let verified = self.codes.verify(&address, &code).await;
        if let (Ok(VerifyOutcome::Incorrect), Some((limiter, ip, now))) = (&verified, &limited) {
            limiter.record_failure(*ip, *now);
        }
        match verified.map_err(|e| Rejected::new(self.unavailable(e), Unavailable))? {
            VerifyOutcome::Verified => {
                info!(to = address.masked().as_str(), "code verified");
                Ok(VerifyResponse::Verified(Json(Verified {
                    verified: true,
                    message: "OTP is correct".into(),
                })))
            }
            VerifyOutcome::Incorrect => Err(Rejected::new(ApiError::otp_incorrect(), Incorrect)),
            VerifyOutcome::Unconfirmed => {
                if let Some(held_back) = self.quiet.redis.admit(Clock::System.now_ms()) {
                    warn!(
                        held_back,
                        "a verify was not confirmed by redis.wait_replicas replicas"
                    );
                }
                Err(Rejected::new(ApiError::unconfirmed(), Unavailable))
            }
            VerifyOutcome::Locked { retry_after } => {
                info!(to = %address.masked(), "verify locked: too many failures");
                let e = ApiError::too_many(
                    ErrorCode::TooManyAttempts,
                    "Too many failed attempts for this address",
                    retry_after,
                );
                Err(Rejected::new(e, TooManyAttempts))
            }
        }
    }

    /// A Redis failure's answer; its log line at most once a second (an outage repeats it for
    /// every request).
    fn unavailable(&self, e: StoreError) -> ApiError {
        if let Some(held_back) = self.quiet.redis.admit(Clock::System.now_ms()) {
            warn!(error = %e, held_back, "redis unavailable");
        }
        ApiError::unavailable()
    }

    /// The client, by the trusted-proxy rule. Our accept loop gives every request its peer's
    /// socket address; a request without one would be a bug, logged, and limited as 0.0.0.0.
    fn client_ip(&self, client: Client<'_>) -> IpAddr {
        let peer = match client.peer {
            Some(ip) => ip,
            None => {
                tracing::error!("a request without a peer address: limited as 0.0.0.0");
                IpAddr::from([0, 0, 0, 0])
            }
        };
        let forwarded = client.headers.get_all("x-forwarded-for");
        self.proxies
            .client_ip(peer, forwarded.iter().map(|v| v.as_bytes()))
    }
}

/// An error answer together with the outcome it is counted as, decided where the error is.
struct Rejected<O> {
    error: ApiError,
    outcome: O,
}

impl<O> Rejected<O> {
    fn new(error: ApiError, outcome: O) -> Self {
        Self { error, outcome }
    }
}

fn parse_address(email: &str) -> Result<EmailAddress, ApiError> {
    EmailAddress::parse(email).map_err(|e| ApiError::invalid(format!("email: {e}")))
}
