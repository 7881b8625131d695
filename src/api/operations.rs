//! The API's operations, called by method and path without poem's router. `OpenApiService`
//! wraps them in a router, a method router, a cookie jar, query parsing and two response
//! mappings, each a boxed future moved per request; only the two operations are hot, and they
//! use none of those. Anything else (another method, an unknown path, the spec, the docs) goes
//! to a `Route` built from the same operations, which answers 404 and 405 as before.
use std::collections::HashMap;
use std::sync::Arc;

use poem::http::Method;
use poem::{Endpoint, Request, Response, Route, RouteMethod};
use poem_openapi::OpenApi;

type Operation = Arc<poem::endpoint::BoxEndpoint<'static>>;

pub struct Operations {
    /// Path → method → the operation's endpoint, exactly as poem-openapi registers them.
    hot: HashMap<String, HashMap<Method, Operation>>,
    rest: Route,
}

impl Operations {
    /// `api`'s operations; `rest` gets them too, under their paths, and serves everything else.
    pub fn new(api: impl OpenApi, rest: Route) -> Self {
        let mut items = HashMap::new();
        api.add_routes(&mut items);
        let hot: HashMap<String, HashMap<Method, Operation>> = items
            .into_iter()
            .map(|(path, methods)| {
                let methods = methods
                    .into_iter()
                    .map(|(method, ep)| (method, Arc::new(ep)))
                    .collect();
                (path, methods)
            })
            .collect();
        let rest = hot.iter().fold(rest, |route, (path, methods)| {
            let by_method = methods.iter().fold(RouteMethod::new(), |m, (method, ep)| {
                m.method(method.clone(), ep.clone())
            });
            route.at(path, by_method)
        });
        Self { hot, rest }
    }
}

impl Endpoint for Operations {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let hot = self
            .hot
            .get(req.uri().path())
            .and_then(|methods| methods.get(req.method()));
        match hot {
            Some(op) => op.call(req).await,
            None => self.rest.call(req).await,
        }
    }
}
