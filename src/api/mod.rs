//! The public HTTP API (poem-openapi) and the admin listener.
mod admin;
mod bodies;
mod direct;
mod errors;
mod middleware;
mod operations;
mod otp;
mod server;
mod spec;
mod strict_string;
mod wire;
mod write_deadline;

use std::sync::Arc;

use poem::{Endpoint, Route};
use poem_openapi::{OpenApi, OpenApiService};

use operations::OtpOperations;

pub use admin::{AdminState, admin_app};
pub use direct::ApiHandler;
pub use errors::{ApiError, ErrorBody, ErrorCode};
pub use otp::OtpApi;
pub use server::{PoemHandler, ServerLimits, serve};
pub use spec::SpecOnly;
pub use spec::{json as spec_json, yaml as spec_yaml};

pub use crate::config::BodyLimits;
use crate::metrics::Metrics;

pub const TITLE: &str = "email-otp";

/// The spec service; `/openapi.*` and the drift check both print from it.
pub fn service<T: OpenApi>(api: T) -> OpenApiService<T, ()> {
    OpenApiService::new(api, TITLE, env!("CARGO_PKG_VERSION"))
        .description(
            "Proves that a person controls an email address: `generate` mails a one-time code, `verify` checks it. \
             Every error has the body `{\"code\": \"<snake_case>\", \"message\": \"…\"}`; switch on `code`.",
        )
        .license(poem_openapi::LicenseObject::new("Apache-2.0"))
}

/// The API port's handler; `traced`: a span per request, for an OTLP exporter.
pub fn app(api: OtpApi, body: BodyLimits, metrics: Metrics, traced: bool) -> ApiHandler {
    let api = Arc::new(api);
    // The docs describe the API's operations; poem serves the operations under their paths too.
    let docs = service(SpecOnly).swagger_ui();
    let json = spec_endpoint(spec::json(), "application/json");
    let yaml = spec_endpoint(spec::yaml(), "application/x-yaml");
    let rest = Route::new()
        .at("/openapi.json", poem::get(json))
        .at("/openapi.yaml", poem::get(yaml))
        .nest("/docs", docs);
    let rest = OtpOperations(api.clone()).add_to(rest);
    let edge = middleware::Edge {
        metrics,
        body,
        allowed: allowed_methods(),
        traced,
        hot: Default::default(),
        slow_clients: Default::default(),
    };
    ApiHandler::new(api, edge, PoemHandler::new(rest))
}

/// For `Allow` on 405 answers: each path of the API and its methods, e.g. `/otp/verify` → `POST`.
fn allowed_methods() -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::<String, Vec<String>>::new();
    for path in OtpOperations::meta().into_iter().flat_map(|api| api.paths) {
        let methods = map.entry(path.path).or_default();
        methods.extend(path.operations.iter().map(|op| op.method.to_string()));
    }
    map.into_iter()
        .map(|(path, methods)| (path, methods.join(", ")))
        .collect()
}

/// Serves a printed spec (what `OpenApiService::spec_endpoint` does, for the closed spec).
fn spec_endpoint(spec: String, content_type: &'static str) -> impl Endpoint {
    poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type(content_type)
            .body(spec.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_each_path() {
        let allowed = allowed_methods();
        assert_eq!(allowed["/otp/generate"], "POST");
        assert_eq!(allowed["/otp/verify"], "POST");
    }
}
