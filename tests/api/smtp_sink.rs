//! A real SMTP server for tests: records every envelope and message, and can be told to answer
//! 4xx, 5xx or slowly, so the worker's retry and crash paths meet a real protocol peer.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::helpers::eventually;
use crate::smtp_session::session;

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub rcpt: Vec<String>,
    pub data: String,
}

/// What the sink answered to one message whose data it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    /// 451 after the data.
    Transient,
    /// 550 after the data.
    Rejected,
    /// Connection closed after the final dot, no answer.
    Dropped,
    /// No answer ever; the socket stays open.
    Silent,
}

/// One message's data as it arrived (the final dot), whatever became of it.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub mail: Mail,
    pub at: Instant,
    pub answer: Answer,
}

#[derive(Default)]
pub struct SinkState {
    pub mails: Mutex<Vec<Mail>>,
    /// Answer the next N DATA commands with 451.
    pub fail_transient: AtomicU32,
    /// Answer every RCPT with 550.
    pub fail_permanent: AtomicBool,
    /// Wait this long before accepting a message.
    pub delay_ms: AtomicU64,
    pub data_commands: AtomicU32,
    /// Hang up after each accepted message, as a server with a short idle timeout would.
    pub close_after_mail: AtomicBool,
    /// Decoded `AUTH PLAIN` credentials seen, as "user:password".
    pub auth: Mutex<Vec<String>>,
    pub connections: AtomicU32,
    /// Offer STARTTLS with this server config.
    pub tls: Mutex<Option<tokio_rustls::TlsAcceptor>>,
    /// Sessions that completed a STARTTLS handshake.
    pub tls_sessions: AtomicU32,
    /// Every message whose data was read, in order, with the time of its final dot.
    pub attempts: Mutex<Vec<Attempt>>,
    /// Read the data, then never answer (the socket stays open until the client closes it).
    pub silent_after_dot: AtomicBool,
    /// Close the connection right after the final dot of the next N messages, unanswered.
    pub drop_after_dot: AtomicU32,
    /// Answer 550 after the data of the next N messages.
    pub reject_after_data: AtomicU32,
    /// Leave PIPELINING out of the EHLO reply (offered by default, as real relays do).
    pub no_pipelining: AtomicBool,
    /// MAIL commands that arrived with more commands behind them in one read (pipelined).
    pub pipelined: AtomicU32,
    /// Close new connections before the greeting, like a relay that is down.
    pub refuse: AtomicBool,
    pub refused: AtomicU32,
    /// Greylisting: answer RCPT with 451 until this many ms passed since the sender/recipient
    /// pair's first try (0 = off).
    pub greylist_ms: AtomicU64,
    pub greylisted: AtomicU32,
    greylist_seen: Mutex<HashMap<String, Instant>>,
}

impl SinkState {
    pub(crate) fn greylisting(&self, from: &str, rcpt: &str) -> bool {
        let ms = self.greylist_ms.load(Ordering::SeqCst);
        if ms == 0 {
            return false;
        }
        let mut seen = self.greylist_seen.lock().unwrap();
        let first = *seen
            .entry(format!("{from} {rcpt}"))
            .or_insert_with(Instant::now);
        let wait = first.elapsed() < Duration::from_millis(ms);
        if wait {
            self.greylisted.fetch_add(1, Ordering::SeqCst);
        }
        wait
    }

    pub(crate) fn record(&self, mail: &Mail, answer: Answer) {
        self.attempts.lock().unwrap().push(Attempt {
            mail: mail.clone(),
            at: Instant::now(),
            answer,
        });
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    pub state: Arc<SinkState>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(SinkState::default());
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                if s.refuse.load(Ordering::SeqCst) {
                    s.refused.fetch_add(1, Ordering::SeqCst);
                    drop(sock);
                    continue;
                }
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = session(sock, s).await;
                });
            }
        });
        Self { port, state }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.mails.lock().unwrap().clone()
    }

    pub fn mails_to(&self, addr: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.rcpt.iter().any(|r| r == addr))
            .collect()
    }

    /// Every message data read for `addr`, in order, however it was answered.
    pub fn attempts_to(&self, addr: &str) -> Vec<Attempt> {
        let attempts = self.state.attempts.lock().unwrap();
        attempts
            .iter()
            .filter(|a| a.mail.rcpt.iter().any(|r| r == addr))
            .cloned()
            .collect()
    }

    /// Waits until `addr` has received `n` mails; returns them.
    pub async fn wait_for(&self, addr: &str, n: usize, timeout: Duration) -> Vec<Mail> {
        eventually(format!("{n} mails to {addr}"), timeout, || async {
            let got = self.mails_to(addr);
            if got.len() >= n {
                Ok(got)
            } else {
                Err(format!("{} mails", got.len()))
            }
        })
        .await
    }

    /// Messages whose data arrived and that the sink accepts, but whose reply `delay_ms` still
    /// holds back (they are stored when the reply goes out, whether or not the client is there).
    pub fn held_back(&self) -> usize {
        let attempts = self.state.attempts.lock().unwrap();
        let accepted = attempts.iter().filter(|a| a.answer == Answer::Accepted);
        accepted.count().saturating_sub(self.mails().len())
    }
}
