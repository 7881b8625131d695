//! Liveness, readiness and status: what probes and humans see through a Redis outage and a drain.
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

fn series<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name))
        .collect()
}

async fn status(app: &TestApp) -> Value {
    let r = app.admin_get("/status").await.expect("admin answers");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[tokio::test]
async fn redis_outage_keeps_readiness_and_hides_queue_gauges() {
    let mut s = Stack::start().await;
    let m = s.app.metrics().await;
    assert_eq!(series(&m, "email_otp_queue_depth{").len(), 4, "{m}");
    assert_eq!(
        series(&m, "email_otp_queue_oldest_pending_age_seconds").len(),
        1
    );

    s.redis.stop();
    let r = s.app.generate("outage@example.com").await;
    assert_eq!((r.status, r.code().as_str()), (503, "unavailable"));
    assert_eq!(s.app.admin_get("/readyz").await.unwrap().status, 200);
    assert_eq!(s.app.admin_get("/healthz").await.unwrap().status, 200);
    let app = &s.app;
    let m = eventually("redis_up 0", Duration::from_secs(10), || async {
        let m = app.metrics().await;
        (metric(&m, "email_otp_redis_up") == Some(0.0)).then_some(m)
    })
    .await;
    assert_eq!(metric(&m, "email_otp_ready"), Some(1.0), "{m}");
    assert!(
        series(&m, "email_otp_queue_").is_empty(),
        "stale queue gauges:\n{m}"
    );
    assert!(!m.contains("email_otp_queue_depth"), "{m}");
    let st = status(app).await;
    assert_eq!(st["redis"]["reachable"], false, "{st}");
    assert_eq!(st["queue"]["available"], false, "{st}");
    assert_eq!(st["ready"], true, "{st}");
    assert_eq!(app.admin_get("/readyz").await.unwrap().status, 200);

    s.redis.restart().await;
    let app = &s.app;
    let m = eventually("queue gauges back", Duration::from_secs(15), || async {
        let m = app.metrics().await;
        (series(&m, "email_otp_queue_depth{").len() == 4).then_some(m)
    })
    .await;
    assert_eq!(
        metric(&m, "email_otp_queue_depth{state=\"pending\"}"),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "email_otp_queue_oldest_pending_age_seconds"),
        Some(0.0)
    );
    assert_eq!(metric(&m, "email_otp_redis_up"), Some(1.0), "{m}");
}

#[tokio::test]
async fn status_shows_tasks_redis_queue_and_smtp() {
    let s = Stack::start().await;
    let app = &s.app;
    let st = eventually("first redis ping", Duration::from_secs(10), || async {
        let st = status(app).await;
        (st["redis"]["reachable"] == true).then_some(st)
    })
    .await;
    assert_eq!(st["ready"], true, "{st}");
    assert_eq!(st["draining"], false, "{st}");
    let mut tasks: Vec<(String, bool)> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["running"] == true))
        .collect();
    tasks.sort();
    assert_eq!(
        tasks,
        [
            ("admin", true),
            ("api", true),
            ("redis-ping", true),
            ("worker", true),
            ("worker-maintenance", true),
        ]
        .map(|(n, r)| (n.to_owned(), r))
    );
    assert!(st["redis"]["latency_ms"].as_f64().unwrap() >= 0.0, "{st}");
    let at = st["redis"]["checked_at"].as_str().unwrap();
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
        "{at}"
    );
    assert_eq!(st["queue"]["available"], true, "{st}");
    assert_eq!(st["queue"]["pending"], 0, "{st}");
    for k in ["processing", "delayed", "dead"] {
        assert!(st["queue"][k].is_i64(), "{k}: {st}");
    }
    assert!(st["smtp"].is_null(), "no send recorded yet: {st}");

    let api = s.spawn("api").await;
    let st = status(&api).await;
    let names: Vec<&str> = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"worker") && names.contains(&"api"), "{st}");
}

#[tokio::test]
async fn sigterm_makes_readyz_503_while_a_job_drains_then_exits_zero() {
    let mut s = Stack::start().await;
    s.sink.state.delay_ms.store(3000, Ordering::SeqCst);
    assert_eq!(s.app.generate("drain@example.com").await.status, 202);
    let sink = s.sink.clone();
    eventually("a send in flight", Duration::from_secs(10), || async {
        sink.state.data_commands.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(s.app.admin_get("/readyz").await.unwrap().status, 200);
    s.app.signal("TERM");
    let app = &s.app;
    eventually("readyz 503", Duration::from_secs(5), || async {
        let r = app.admin_get("/readyz").await?;
        (r.status == 503).then_some(r.body)
    })
    .await;
    assert!(s.app.is_running(), "process must still be draining");
    let m = s.app.metrics().await;
    assert_eq!(metric(&m, "email_otp_ready"), Some(0.0), "{m}");
    let st = status(&s.app).await;
    assert_eq!(st["draining"], true, "{st}");
    assert_eq!(st["ready"], false, "{st}");
    // Draining is not dying: liveness stays OK so the drain is not cut short by a restart.
    assert_eq!(s.app.admin_get("/healthz").await.unwrap().status, 200);
    assert!(
        s.sink.mails_to("drain@example.com").is_empty(),
        "still in flight"
    );
    assert_eq!(
        s.app.wait_exit(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        s.app.logs()
    );
    assert_eq!(s.sink.mails_to("drain@example.com").len(), 1);
}
