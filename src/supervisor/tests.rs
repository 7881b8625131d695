use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::metrics::Metrics;

/// A task that runs until stopped, then appends its name to `log`.
fn until_stopped(
    name: &'static str,
    log: &Arc<Mutex<Vec<&'static str>>>,
) -> impl FnOnce(CancellationToken) -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>
{
    let log = log.clone();
    move |stop| {
        Box::pin(async move {
            stop.cancelled().await;
            log.lock().unwrap().push(name);
            Ok(())
        })
    }
}

async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("supervisor did not finish")
}

#[tokio::test]
async fn a_task_returning_early_stops_the_rest_and_is_named() {
    let health = Health::new(Metrics::new());
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut sup = Supervisor::new(health.clone());
    sup.spawn("admin", Stage::Admin, until_stopped("admin", &log));
    sup.spawn("api", Stage::Traffic, until_stopped("api", &log));
    sup.spawn("early", Stage::Background, |_| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    });
    let err = bounded(sup.run(CancellationToken::new()))
        .await
        .unwrap_err();
    assert!(matches!(err, SupervisorError::Ended("early")), "{err}");
    assert!(err.to_string().contains("early"), "{err}");
    assert_eq!(*log.lock().unwrap(), ["api", "admin"]);
    assert_eq!(health.failed_task(), Some("early"));
    assert!(health.is_draining() && !health.is_ready());
}

#[tokio::test]
async fn a_panicking_task_is_named_with_its_message() {
    let health = Health::new(Metrics::new());
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut sup = Supervisor::new(health.clone());
    sup.spawn("api", Stage::Traffic, until_stopped("api", &log));
    sup.spawn("worker", Stage::Traffic, |_| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        panic!("boom in the worker");
    });
    let err = bounded(sup.run(CancellationToken::new()))
        .await
        .unwrap_err();
    match &err {
        SupervisorError::Panicked { name, message } => {
            assert_eq!(*name, "worker");
            assert_eq!(message, "boom in the worker");
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(*log.lock().unwrap(), ["api"]);
    assert_eq!(health.failed_task(), Some("worker"));
}

#[tokio::test]
async fn a_failing_task_keeps_its_cause() {
    let mut sup = Supervisor::new(Health::new(Metrics::new()));
    sup.spawn("api", Stage::Traffic, |_| async {
        Err(anyhow::anyhow!("port taken").context("api listener"))
    });
    let err = bounded(sup.run(CancellationToken::new()))
        .await
        .unwrap_err();
    assert_eq!(
        anyhow_chain(&err),
        "task api failed: api listener: port taken"
    );
}

#[tokio::test]
async fn shutdown_stops_stages_in_order_and_is_ok() {
    let health = Health::new(Metrics::new());
    health.set_ready(true);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut sup = Supervisor::new(health.clone());
    sup.spawn("admin", Stage::Admin, until_stopped("admin", &log));
    sup.spawn("ping", Stage::Background, until_stopped("ping", &log));
    let (h, l) = (health.clone(), log.clone());
    sup.spawn("worker", Stage::Traffic, move |stop| async move {
        stop.cancelled().await;
        // Readiness dropped before the traffic stage was told to stop.
        assert!(!h.is_ready());
        tokio::time::sleep(Duration::from_millis(50)).await;
        l.lock().unwrap().push("worker");
        Ok(())
    });
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(sup.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(health.failed_task(), None);
    shutdown.cancel();
    bounded(run).await.unwrap().unwrap();
    assert_eq!(*log.lock().unwrap(), ["worker", "ping", "admin"]);
    assert!(health.tasks().iter().all(|(_, s)| *s == TaskState::Stopped));
}
