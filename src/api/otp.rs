//! `POST /otp/generate` and `POST /otp/verify`.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use poem::Request;
use poem_openapi::OpenApi;
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

#[OpenApi]
impl OtpApi {
    /// Send a code to an address
    ///
    /// Validates the address, applies the per-address limits (a cooldown and an hourly cap, shared by
    /// all replicas) and the optional per-IP limit, and queues a mail with a fresh code. When the
    /// queue holds `limits.queue_max_depth` jobs or a send budget (`limits.mails_per_minute`,
    /// `limits.domain_mails_per_minute`) is spent, the answer is 503 with `Retry-After`. Once the
    /// mail server accepted the mail, its code replaces any earlier one for the address (until then
    /// the earlier code keeps working). The code expires `otp.ttl_secs` (600 s by default) after
    /// this request.
    #[oai(
        path = "/otp/generate",
        method = "post",
        operation_id = "generate_otp",
        tag = "ApiTags::Otp"
    )]
    async fn generate(
        &self,
        req: &Request,
        body: Json<GenerateRequest>,
    ) -> Result<GenerateResponse, ApiError> {
        let result = self.generate_inner(req, &body.0.email.0).await;
        let outcome = match &result {
            Ok(_) => outcome::Generate::Accepted,
            Err(rejected) => rejected.outcome,
        };
        self.metrics.generate.inc(outcome);
        result.map_err(|r| r.error)
    }

    /// Check a code
    ///
    /// Compares the code with the newest one mailed to the address. A correct code is used up. Wrong,
    /// expired, already used and never issued codes all get the same `otp_incorrect` answer; after
    /// `otp.max_attempts` wrong tries a code is burned, and past `limits.verify_failures_per_hour`
    /// failures for the address the answer is 429 until the window ends.
    #[oai(
        path = "/otp/verify",
        method = "post",
        operation_id = "verify_otp",
        tag = "ApiTags::Otp"
    )]
    async fn verify(
        &self,
        req: &Request,
        body: Json<VerifyRequest>,
    ) -> Result<VerifyResponse, ApiError> {
        let result = self.verify_inner(req, &body.0).await;
        let outcome = match &result {
            Ok(_) => outcome::Verify::Verified,
            Err(rejected) => rejected.outcome,
        };
        self.metrics.verify.inc(outcome);
        result.map_err(|r| r.error)
    }
}

#[derive(poem_openapi::Tags)]
enum ApiTags {
    /// One-time codes
    Otp,
}

impl OtpApi {
    async fn generate_inner(
        &self,
        req: &Request,
        email: &str,
    ) -> Result<GenerateResponse, Rejected<outcome::Generate>> {
        use outcome::Generate::{
            DomainBudget, Invalid, QueueFull, RateLimited, SendBudget, Unavailable,
        };
        let address = parse_address(email).map_err(|e| Rejected::new(e, Invalid))?;
        if let Some(limiter) = &self.ip_limiter {
            limiter.check(self.client_ip(req)).map_err(|wait| {
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
                info!(to = %address.masked(), job_id = %job.id, "code requested");
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
        req: &Request,
        body: &VerifyRequest,
    ) -> Result<VerifyResponse, Rejected<outcome::Verify>> {
        use outcome::Verify::{Incorrect, Invalid, TooManyAttempts, Unavailable};
        let address = parse_address(&body.email.0).map_err(|e| Rejected::new(e, Invalid))?;
        let code = OtpCode::parse(&body.otp.0, self.digits)
            .map_err(|e| Rejected::new(ApiError::invalid(format!("otp: {e}")), Invalid))?;
        // Checked before the address's own counters, so one client cannot lock out many
        // addresses; recorded only on a wrong code.
        let client = self
            .verify_ip_limiter
            .as_ref()
            .map(|l| (l, self.client_ip(req), Instant::now()));
        if let Some((limiter, ip, now)) = &client {
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
        if let (Ok(VerifyOutcome::Incorrect), Some((limiter, ip, now))) = (&verified, &client) {
            limiter.record_failure(*ip, *now);
        }
        match verified.map_err(|e| Rejected::new(self.unavailable(e), Unavailable))? {
            VerifyOutcome::Verified => {
                info!(to = %address.masked(), "code verified");
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
    fn client_ip(&self, req: &Request) -> IpAddr {
        let peer = match req.remote_addr().as_socket_addr() {
            Some(a) => a.ip(),
            None => {
                tracing::error!("a request without a peer address: limited as 0.0.0.0");
                IpAddr::from([0, 0, 0, 0])
            }
        };
        let forwarded = req.headers().get_all("x-forwarded-for");
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
