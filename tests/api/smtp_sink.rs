//! A real SMTP server for tests: records every envelope and message, and can be told to answer
//! 4xx, 5xx or slowly, so the worker's retry and crash paths meet a real protocol peer.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

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
    /// Close new connections before the greeting, like a relay that is down.
    pub refuse: AtomicBool,
    pub refused: AtomicU32,
    /// Greylisting: answer RCPT with 451 until this many ms passed since the sender/recipient
    /// pair's first try (0 = off).
    pub greylist_ms: AtomicU64,
    pub greylisted: AtomicU32,
    greylist_seen: Mutex<HashMap<String, Instant>>,
}

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl SinkState {
    fn greylisting(&self, from: &str, rcpt: &str) -> bool {
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

    fn record(&self, mail: &Mail, answer: Answer) {
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
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.mails_to(addr);
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{addr} got {} of {n} mails in {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn session(sock: tokio::net::TcpStream, state: Arc<SinkState>) -> std::io::Result<()> {
    state.connections.fetch_add(1, Ordering::SeqCst);
    let mut stream: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(sock));
    stream
        .get_mut()
        .write_all(b"220 sink.test ESMTP\r\n")
        .await?;
    let (mut from, mut rcpt) = (String::new(), Vec::new());
    let mut line = String::new();
    let mut encrypted = false;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let tls = state.tls.lock().unwrap().clone().filter(|_| !encrypted);
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if tls.is_some() {
                b"250-sink.test\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
            } else {
                b"250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n"
            }
        } else if let (true, Some(acceptor)) = (upper == "STARTTLS", tls) {
            stream
                .get_mut()
                .write_all(b"220 2.0.0 ready to start TLS\r\n")
                .await?;
            let tls_stream = acceptor.accept(stream.into_inner()).await?;
            stream = BufReader::new(Box::new(tls_stream));
            encrypted = true;
            state.tls_sessions.fetch_add(1, Ordering::SeqCst);
            continue;
        } else if let Some(rest) = upper.strip_prefix("MAIL FROM:") {
            from = cmd[cmd.len() - rest.len()..]
                .trim()
                .trim_matches(['<', '>'])
                .to_string();
            rcpt.clear();
            b"250 ok\r\n"
        } else if let Some(rest) = upper.strip_prefix("RCPT TO:") {
            if state.fail_permanent.load(Ordering::SeqCst) {
                b"550 5.1.1 mailbox unavailable\r\n"
            } else {
                let addr = cmd[cmd.len() - rest.len()..].trim();
                let addr = addr
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if state.greylisting(&from, &addr) {
                    b"451 4.7.1 greylisted, try again later\r\n"
                } else {
                    rcpt.push(addr);
                    b"250 ok\r\n"
                }
            }
        } else if upper == "DATA" {
            stream.get_mut().write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if stream.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            state.data_commands.fetch_add(1, Ordering::SeqCst);
            let mail = Mail {
                from: from.clone(),
                rcpt: rcpt.clone(),
                data,
            };
            // The answer is decided (and the attempt logged) at the final dot; `delay_ms` only
            // holds the reply back.
            let answer = if state.silent_after_dot.load(Ordering::SeqCst) {
                Answer::Silent
            } else if take_one(&state.drop_after_dot) {
                Answer::Dropped
            } else if take_one(&state.fail_transient) {
                Answer::Transient
            } else if take_one(&state.reject_after_data) {
                Answer::Rejected
            } else {
                Answer::Accepted
            };
            state.record(&mail, answer);
            match answer {
                Answer::Silent => {
                    while stream.read_line(&mut line).await? != 0 {
                        line.clear();
                    }
                    return Ok(());
                }
                Answer::Dropped => return Ok(()),
                _ => {}
            }
            let delay = state.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            match answer {
                Answer::Transient => b"451 4.3.0 try again later\r\n",
                Answer::Rejected => b"550 5.7.1 message refused\r\n",
                _ => {
                    state.mails.lock().unwrap().push(mail);
                    b"250 queued\r\n"
                }
            }
        } else if let Some(b64) = upper.strip_prefix("AUTH PLAIN ") {
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&cmd[cmd.len() - b64.len()..])
                .unwrap_or_default();
            let parts: Vec<String> = raw
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            state.auth.lock().unwrap().push(parts[1..].join(":"));
            b"235 2.7.0 authenticated\r\n"
        } else if upper == "QUIT" {
            stream.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        stream.get_mut().write_all(reply).await?;
    }
}
