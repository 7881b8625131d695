//! Many processes on one queue: two `api` and two `worker` processes on any Redis (one server
//! with a partitioned queue, or a cluster), and the promises they must keep together.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::app::TestApp;
use crate::fault_kit::all_mailed;
use crate::helpers::{code_from, eventually, metric};
use crate::smtp_sink::{Mail, SmtpSink};

pub struct Fleet {
    pub apis: [TestApp; 2],
    pub workers: Vec<TestApp>,
    pub env: HashMap<String, String>,
}

impl Fleet {
    pub async fn start(env: HashMap<String, String>) -> Self {
        let apis = [
            TestApp::spawn("api", &env).await,
            TestApp::spawn("api", &env).await,
        ];
        let workers = vec![
            TestApp::spawn("worker", &env).await,
            TestApp::spawn("worker", &env).await,
        ];
        Self { apis, workers, env }
    }

    fn api(&self, i: usize) -> &TestApp {
        &self.apis[i % 2]
    }

    /// Waits until no job is queued, leased or waiting for a retry, read through an API's
    /// `/metrics` (which reads every partition), so it works on any Redis. A scrape that fails
    /// (a keep-alive connection the server closed as it was reused) is just tried again.
    pub async fn wait_drained(&self, timeout: Duration) {
        queue_drained(&self.apis[0], timeout).await;
    }
}

/// `Fleet::wait_drained` through one process that serves `/metrics` (`api` or `serve`).
pub async fn queue_drained(app: &TestApp, timeout: Duration) {
    eventually("the queue drained", timeout, || async {
        let Some(page) = app.admin_get("/metrics").await else {
            return Err("no scrape".to_owned());
        };
        let m = page.body;
        let left: f64 = ["pending", "processing", "delayed"]
            .iter()
            .map(|s| metric(&m, &format!("email_otp_queue_depth{{state=\"{s}\"}}")))
            .map(|v| v.unwrap_or(f64::NAN))
            .sum();
        if left == 0.0 {
            Ok(())
        } else {
            Err(format!("{left} jobs left"))
        }
    })
    .await;
}

/// Generates a code for each address, spread over both APIs, 32 at a time; each must be 202.
/// After `kill_after` mails, worker 0 is killed with -9 (its jobs are reaped, not lost) and a
/// new worker takes its place.
async fn generate_all(fleet: &mut Fleet, sink: &SmtpSink, addrs: &[String], kill_after: usize) {
    let slots = Arc::new(Semaphore::new(32));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let api = fleet.api(i);
        let (client, url) = (api.client.clone(), format!("{}/otp/generate", api.http));
        let (permit, a) = (slots.clone().acquire_owned().await.unwrap(), a.clone());
        let accepted = accepted.clone();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({ "email": a });
            let status = client.post(&url).json(&body).send().await.unwrap().status();
            assert_eq!(status, 202, "{a}");
            accepted.fetch_add(1, Ordering::SeqCst);
            drop(permit);
        }));
        if i == addrs.len() / 2 {
            eventually("mails flowing", Duration::from_secs(30), || async {
                sink.mails().len() >= kill_after
            })
            .await;
            fleet.workers[0].signal("KILL");
            fleet.workers[0] = TestApp::spawn("worker", &fleet.env).await;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(accepted.load(Ordering::SeqCst), addrs.len());
}

/// Every address mailed and verified once through alternating APIs, a worker killed -9 midway;
/// a burst for one address gives one 202; concurrent correct verifies give one 200.
pub async fn every_promise_holds(fleet: &mut Fleet, sink: &SmtpSink, tag: &str, n: usize) {
    let addrs: Vec<String> = (0..n).map(|i| format!("{tag}{i}@fleet.test")).collect();
    generate_all(fleet, sink, &addrs, n / 8).await;
    all_mailed(sink, &addrs, Duration::from_secs(120)).await;
    fleet.wait_drained(Duration::from_secs(30)).await;
    let mails = sink.mails();
    let last_mail: HashMap<&str, &Mail> = mails
        .iter()
        .flat_map(|m| m.rcpt.iter().map(move |r| (r.as_str(), m)))
        .collect();
    let slots = Arc::new(Semaphore::new(32));
    let mut checks = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let code = code_from(last_mail[a.as_str()]);
        let api = fleet.api(i + 1);
        let (client, url) = (api.client.clone(), format!("{}/otp/verify", api.http));
        let (permit, a) = (slots.clone().acquire_owned().await.unwrap(), a.clone());
        checks.push(tokio::spawn(async move {
            let body = serde_json::json!({ "email": a, "otp": code });
            let status = client.post(&url).json(&body).send().await.unwrap().status();
            drop(permit);
            (a, status.as_u16())
        }));
    }
    for c in checks {
        let (a, status) = c.await.unwrap();
        assert_eq!(status, 200, "verify of {a}");
    }

    let one = format!("{tag}-burst@fleet.test");
    let burst = (0..20).map(|i| {
        let api = fleet.api(i);
        let one = one.clone();
        async move { api.generate(&one).await.status }
    });
    let statuses = futures_util::future::join_all(burst).await;
    let accepted = statuses.iter().filter(|&&s| s == 202).count();
    assert_eq!(
        accepted, 1,
        "one 202 of a burst over both APIs: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 202 || s == 429),
        "{statuses:?}"
    );
    let mail = sink.wait_for(&one, 1, Duration::from_secs(20)).await;
    fleet.wait_drained(Duration::from_secs(20)).await;
    let code = code_from(&mail[0]);
    let verifies = (0..50).map(|i| {
        let (api, one, code) = (fleet.api(i), one.clone(), code.clone());
        async move { api.verify(&one, &code).await.status }
    });
    let statuses = futures_util::future::join_all(verifies).await;
    let verified = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(
        verified, 1,
        "one 200 of 50 concurrent correct verifies: {statuses:?}"
    );
}
