//! One trace from the API request to the mail: both processes export spans over OTLP/HTTP to a
//! receiver this test runs, and the worker's spans continue the API's trace.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use poem::{EndpointExt, Route, handler, post, web::Data};
use prost::Message;

use crate::helpers::*;

#[derive(Debug, Clone)]
struct SeenSpan {
    mode: String,
    name: String,
    trace_id: String,
}

type Seen = Arc<Mutex<Vec<SeenSpan>>>;

#[handler]
async fn receive(body: poem::Body, Data(seen): Data<&Seen>) -> poem::Response {
    {
        let bytes = body.into_bytes().await.unwrap_or_default();
        if let Ok(req) = ExportTraceServiceRequest::decode(bytes) {
            for rs in req.resource_spans {
                let mode = rs
                    .resource
                    .iter()
                    .flat_map(|r| r.attributes.iter())
                    .find(|kv| kv.key == "email_otp.mode")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| format!("{:?}", v.value))
                    .unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        seen.lock().unwrap().push(SeenSpan {
                            mode: mode.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                        });
                    }
                }
            }
        }
        poem::Response::builder()
            .content_type("application/x-protobuf")
            .body(Vec::<u8>::new())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn a_generate_and_its_mail_are_one_trace_across_api_and_worker() {
    let seen: Seen = Arc::default();
    let port = free_port();
    let app = Route::new()
        .at("/v1/traces", post(receive))
        .data(seen.clone());
    tokio::spawn(
        poem::Server::new(poem::listener::TcpListener::bind(format!(
            "127.0.0.1:{port}"
        )))
        .run(app),
    );

    let mut s = Stack::builder()
        .mode("api")
        .env(
            "OTP_TELEMETRY__OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .start()
        .await;
    let mut worker = s.spawn("worker").await;
    assert_eq!(s.app.generate("traced@example.com").await.status, 202);
    s.sink
        .wait_for("traced@example.com", 1, Duration::from_secs(10))
        .await;
    // The job is finished, so its "activate code" span is closed; exiting flushes the spans.
    s.redis.wait_drained(Duration::from_secs(10)).await;
    s.app.signal("TERM");
    worker.signal("TERM");
    assert_eq!(s.app.wait_exit(Duration::from_secs(10)).await, Some(0));
    assert_eq!(worker.wait_exit(Duration::from_secs(10)).await, Some(0));

    let spans = seen.lock().unwrap().clone();
    let request = spans
        .iter()
        .find(|s| s.mode.contains("api") && s.name == "POST /otp/generate")
        .unwrap_or_else(|| panic!("no API span in {spans:?}"));
    for name in ["send code", "smtp send", "activate code"] {
        assert!(
            spans.iter().any(|s| s.mode.contains("worker")
                && s.name == name
                && s.trace_id == request.trace_id),
            "worker span {name:?} not in trace {}: {spans:?}",
            request.trace_id
        );
    }
    assert!(
        s.app.logs().contains(&request.trace_id),
        "JSON logs carry the trace id"
    );
    assert!(
        worker.logs().contains(&request.trace_id),
        "worker logs carry the trace id"
    );
}
