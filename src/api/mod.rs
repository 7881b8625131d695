//! The public HTTP API (poem-openapi) and the admin listener.
mod admin;
mod errors;
mod middleware;
mod otp;
mod strict_string;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;

pub use admin::{AdminState, admin_app};
pub use errors::{ApiError, ErrorBody, ErrorCode};
pub use otp::OtpApi;

use crate::metrics::Metrics;

pub const TITLE: &str = "email-otp";

/// The spec service; `/openapi.*` and the drift check both print from it.
pub fn service(api: OtpApi) -> OpenApiService<OtpApi, ()> {
    OpenApiService::new(api, TITLE, env!("CARGO_PKG_VERSION"))
        .description(
            "Proves that a person controls an email address: `generate` mails a one-time code, `verify` checks it. \
             Every error has the body `{\"code\": \"<snake_case>\", \"message\": \"…\"}`; switch on `code`.",
        )
        .license(poem_openapi::LicenseObject::new("Apache-2.0"))
}

/// The spec as YAML, exactly as `email-otp openapi` prints it and `openapi/openapi.yaml` holds it.
pub fn spec_yaml() -> String {
    service(OtpApi::spec_only()).spec_yaml()
}

pub fn spec_json() -> String {
    service(OtpApi::spec_only()).spec()
}

pub fn app(api: OtpApi, max_body_bytes: usize, metrics: Metrics) -> impl Endpoint {
    let svc = service(api);
    let docs = svc.swagger_ui();
    let json = svc.spec_endpoint();
    let yaml = svc.spec_endpoint_yaml();
    Route::new()
        .nest("/", svc)
        .at("/openapi.json", json)
        .at("/openapi.yaml", yaml)
        .nest("/docs", docs)
        .around(move |ep, req| middleware::limit_body(ep, req, max_body_bytes))
        .around({
            let metrics = metrics.clone();
            move |ep, req| middleware::count_rejected(ep, req, metrics.clone())
        })
        .catch_all_error(errors::render_error)
        .around(move |ep, req| middleware::record(ep, req, metrics.clone()))
}
