//! The two operations as poem-openapi declares them: the spec is printed from these
//! declarations, and poem serves them for methods other than POST (405 with `Allow`) and as the
//! reference the direct path is tested against. Both call the same `OtpApi` answers.
use std::collections::HashMap;
use std::sync::Arc;

use poem::{Request, Route, RouteMethod};
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;

use super::bodies::{GenerateRequest, GenerateResponse, VerifyRequest, VerifyResponse};
use super::errors::ApiError;
use super::otp::{Client, OtpApi};

pub struct OtpOperations(pub Arc<OtpApi>);

impl OtpOperations {
    /// `route` with the operations added under their paths, without `OpenApiService`'s own
    /// layers (a cookie jar, query parsing, response mappings) around them.
    pub fn add_to(self, route: Route) -> Route {
        let mut items = HashMap::new();
        self.add_routes(&mut items);
        items.into_iter().fold(route, |route, (path, methods)| {
            let by_method = methods
                .into_iter()
                .fold(RouteMethod::new(), |m, (method, ep)| m.method(method, ep));
            route.at(path, by_method)
        })
    }
}

#[OpenApi]
impl OtpOperations {
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
        self.0.answer_generate(Client::of(req), &body.0).await
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
        self.0.answer_verify(Client::of(req), &body.0).await
    }
}

#[derive(poem_openapi::Tags)]
enum ApiTags {
    /// One-time codes
    Otp,
}
