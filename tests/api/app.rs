//! The `email-otp` binary as a child process with its own ports and log file.
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Reply, eventually, free_port, metric, within};

pub struct TestApp {
    pub http: String,
    pub admin: String,
    pub client: reqwest::Client,
    child: Option<Child>,
    pub log_path: PathBuf,
    _logdir: tempfile::TempDir,
}

impl TestApp {
    /// Starts `email-otp <mode>` with exactly `env` (plus PATH and its listen addresses) and waits
    /// until it is ready.
    pub async fn spawn(mode: &str, env: &HashMap<String, String>) -> Self {
        let (http_port, admin_port) = (free_port(), free_port());
        let logdir = tempfile::tempdir().unwrap();
        let log_path = logdir.path().join("service.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // EMAIL_OTP_BIN runs the tests against another build of the service.
        let bin = std::env::var("EMAIL_OTP_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_email-otp").to_string());
        let child = Command::new(bin)
            .arg(mode)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("OTP_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
            .env("OTP_ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let app = Self {
            http: format!("http://127.0.0.1:{http_port}"),
            admin: format!("http://127.0.0.1:{admin_port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            child: Some(child),
            log_path,
            _logdir: logdir,
        };
        app.wait_ready().await;
        app
    }

    pub async fn wait_ready(&self) {
        let ready = within(Duration::from_secs(10), || async {
            self.admin_get("/readyz")
                .await
                .is_some_and(|r| r.status == 200)
        });
        if ready.await.is_err() {
            panic!("service not ready; log:\n{}", self.logs());
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until the log holds `text`; fails the test showing the log.
    pub async fn wait_for_log(&self, text: &str, timeout: Duration) {
        eventually(format!("{text:?} in the log"), timeout, || async {
            let logs = self.logs();
            if logs.contains(text) {
                Ok(())
            } else {
                Err(logs)
            }
        })
        .await;
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let url = format!("{}{path}", self.http);
        Reply::read(self.client.post(url).json(&body).send().await.unwrap()).await
    }

    pub async fn generate(&self, email: &str) -> Reply {
        self.post("/otp/generate", json!({ "email": email })).await
    }

    pub async fn verify(&self, email: &str, otp: &str) -> Reply {
        self.post("/otp/verify", json!({ "email": email, "otp": otp }))
            .await
    }

    /// Sends one verify per code, all at once; returns the statuses.
    pub async fn verify_concurrently(&self, email: &str, codes: Vec<String>) -> Vec<u16> {
        let tasks: Vec<_> = codes
            .into_iter()
            .map(|otp| {
                let (client, url) = (self.client.clone(), format!("{}/otp/verify", self.http));
                let body = json!({ "email": email, "otp": otp });
                tokio::spawn(async move {
                    let r = client.post(url).json(&body).send().await.unwrap();
                    r.status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses
    }

    /// A generate as if from `client_ip` behind a trusted proxy.
    pub async fn generate_from(&self, client_ip: &str, email: &str) -> Reply {
        let r = self
            .client
            .post(format!("{}/otp/generate", self.http))
            .header("x-forwarded-for", client_ip)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        Reply::read(r).await
    }

    /// The Prometheus page of the admin port.
    pub async fn metrics(&self) -> String {
        self.admin_get("/metrics").await.expect("metrics").body
    }

    /// One series of the metrics page; fails the test when it is missing.
    pub async fn metric(&self, series: &str) -> f64 {
        let page = self.metrics().await;
        metric(&page, series).unwrap_or_else(|| panic!("{series} not in metrics:\n{page}"))
    }

    /// `email_otp_jobs_total` for one outcome (`sent`, `retried`, `dead_lettered`, …).
    pub async fn jobs(&self, outcome: &str) -> f64 {
        self.metric(&format!("email_otp_jobs_total{{outcome=\"{outcome}\"}}"))
            .await
    }

    /// GET on the admin port, or `None` when nothing answered.
    pub async fn admin_get(&self, path: &str) -> Option<Reply> {
        let url = format!("{}{path}", self.admin);
        Some(Reply::read(self.client.get(url).send().await.ok()?).await)
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        match within(timeout, || std::future::ready(child.try_wait().unwrap())).await {
            Ok(status) => status.code(),
            Err(_) => {
                let _ = child.kill();
                panic!("process did not exit in {timeout:?}; log:\n{}", self.logs());
            }
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}
