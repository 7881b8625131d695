//! The API port's handler. `POST /otp/generate` and `POST /otp/verify` are answered straight from
//! hyper's request: poem's request and response types, the operation's extractor chain and the
//! boxed futures between them cost about a tenth of a request's instructions, and these two
//! operations use none of it. They check, parse and answer exactly as the poem-openapi
//! operations do (the same content-type rule; bodies read and written by `wire`, byte for byte
//! what poem-openapi reads and writes), and a test sends the same requests through both paths.
//! Everything else (other methods, the spec, the docs, unknown paths) goes to poem.
use std::sync::Arc;
use std::time::Instant;

use hyper::body::{Bytes, Incoming};
use poem::http::request::Parts;
use poem::http::{Method, header};
use poem::{Body, Response};
use poem_openapi::error::ContentTypeError;
use poem_openapi::payload::{Json, Payload};
use serde_json::Value;
use tracing::Instrument;

use super::middleware::{Edge, Labels, Operation};
use super::otp::{Client, OtpApi};
use super::server::{Addrs, Handler, PoemHandler, ResponseBody, SlowClient, poem_parts};
use super::wire::{self, Answer};
use crate::outcome::SlowStage;

pub struct ApiHandler {
    otp: Arc<OtpApi>,
    edge: Edge,
    /// Everything but the two operations' POSTs, and those too when `direct` is off.
    rest: PoemHandler,
    /// Off only in the test that compares both paths.
    direct: bool,
}

impl ApiHandler {
    pub fn new(otp: Arc<OtpApi>, edge: Edge, rest: PoemHandler) -> Self {
        Self {
            otp,
            edge,
            rest,
            direct: true,
        }
    }

    /// Every request through poem, as a reference for the direct path.
    #[cfg(test)]
    pub fn through_poem(mut self) -> Self {
        self.direct = false;
        self
    }

    async fn answer(
        &self,
        req: hyper::Request<Incoming>,
        addrs: Addrs,
        labels: Labels,
    ) -> Result<Response, SlowClient> {
        let (parts, body) = req.into_parts();
        let body = match self.edge.read_body(&parts.headers, body).await? {
            Ok(body) => body,
            Err(e) => return Ok(self.edge.refuse(labels.operation, e).await),
        };
        let direct = match labels.operation {
            Some(op) if self.direct && parts.method == Method::POST => Some(op),
            _ => None,
        };
        let result = match direct {
            Some(op) => self.operation(op, &parts, &body, addrs).await,
            None => {
                let req = poem::Request::from_parts(poem_parts(parts, addrs), Body::from(body));
                self.rest.call(req).await
            }
        };
        Ok(match result {
            Ok(resp) => resp,
            Err(e) => self.edge.refuse(labels.operation, e).await,
        })
    }

    /// One of the two operations, as poem-openapi would run it: the body's content type, then
    /// its JSON, then the handler.
    async fn operation(
        &self,
        op: Operation,
        parts: &Parts,
        body: &Bytes,
        addrs: Addrs,
    ) -> poem::Result<Response> {
        match parts.headers.get(header::CONTENT_TYPE) {
            None => return Err(ContentTypeError::ExpectContentType.into()),
            Some(value) => match value.to_str() {
                Ok(ct) if Json::<Value>::check_content_type(ct) => {}
                Ok(ct) => {
                    let content_type = ct.to_owned();
                    return Err(ContentTypeError::NotSupported { content_type }.into());
                }
                // poem reads a header that is not visible ASCII as no header at all.
                Err(_) => return Err(ContentTypeError::ExpectContentType.into()),
            },
        }
        let client = Client {
            peer: Some(addrs.peer.ip()),
            headers: &parts.headers,
        };
        let resp = match op {
            Operation::Generate => {
                let answer = self
                    .otp
                    .answer_generate(client, &wire::request(body)?)
                    .await;
                wire::respond(answer.map(Answer::from))
            }
            Operation::Verify => {
                let answer = self.otp.answer_verify(client, &wire::request(body)?).await;
                wire::respond(answer.map(Answer::from))
            }
        };
        Ok(resp)
    }
}

impl Handler for ApiHandler {
    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        addrs: Addrs,
    ) -> Result<hyper::Response<ResponseBody>, SlowClient> {
        let labels = Labels::of(req.method(), req.uri().path());
        let span = self.edge.span(&labels);
        let started = Instant::now();
        let answered = self
            .answer(req, addrs, labels)
            .instrument(span.clone())
            .await;
        match answered {
            Ok(resp) => Ok(self.edge.finish(resp, &labels, &span, started).into()),
            Err(slow) => {
                self.edge.gave_up(SlowStage::Body);
                Err(slow)
            }
        }
    }

    fn gave_up_writing(&self) {
        self.edge.gave_up(SlowStage::Response);
    }
}

#[cfg(test)]
#[path = "direct_tests.rs"]
mod tests;
