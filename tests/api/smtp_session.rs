//! One SMTP session of the test sink: the protocol, and the faults `SinkState` asks for.
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::smtp_sink::{Answer, Mail, SinkState};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn take_one(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

pub async fn session(sock: tokio::net::TcpStream, state: Arc<SinkState>) -> std::io::Result<()> {
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
            let pipelining = !state.no_pipelining.load(Ordering::SeqCst);
            match (tls.is_some(), pipelining) {
                (true, true) => b"250-sink.test\r\n250-STARTTLS\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n",
                (true, false) => b"250-sink.test\r\n250-STARTTLS\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n",
                (false, true) => b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n",
                (false, false) => b"250-sink.test\r\n250-8BITMIME\r\n250-AUTH PLAIN LOGIN\r\n250 SMTPUTF8\r\n",
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
            // More commands already read behind MAIL: the client did not wait for its reply.
            if !stream.buffer().is_empty() {
                state.pipelined.fetch_add(1, Ordering::SeqCst);
            }
            from = cmd[cmd.len() - rest.len()..]
                .trim()
                .trim_matches(['<', '>'])
                .to_string();
            rcpt.clear();
            b"250 ok\r\n"
        } else if let Some(rest) = upper.strip_prefix("RCPT TO:") {
            if state.fail_permanent.load(Ordering::SeqCst) {
                // Like real relays, quote the recipient in the refusal.
                let addr = cmd[cmd.len() - rest.len()..].trim().to_string();
                let reply = format!("550 5.1.1 {addr}: Recipient address rejected\r\n");
                stream.get_mut().write_all(reply.as_bytes()).await?;
                continue;
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
        } else if upper == "DATA" && rcpt.is_empty() {
            // RFC 2920 §3.1: a pipelined DATA after refused recipients must not open the data.
            b"554 5.5.1 no valid recipients\r\n"
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
