//! otp-sink: a fast, multi-threaded SMTP sink for the email-otp bench.
//!
//! SMTP (EHLO with PIPELINING and 8BITMIME, HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY) on one
//! port, TCP_NODELAY on every accepted socket, replies batched while pipelined commands are waiting.
//! Per recipient it records the first and last arrival time and the 6-digit code of the newest mail
//! (the code alone on an indented line of the text/plain part; base64 parts are decoded).
//!
//! A small HTTP/1.1 interface on a second port (one request per connection):
//!   GET /stats                      {"count","recipients","first_ms","last_ms","no_code","connections","bytes"}
//!   GET /wait?count=N&timeout_ms=T  waits until count >= N (or T passes), then answers like /stats
//!   GET /arrivals                   {"<recipient>": first arrival, Unix ms, ...}
//!   GET /codes                      {"<recipient>": "<code of the newest mail>", ...}
//!   GET /dump                       TSV: recipient, first_us, last_us, code (or -), mails
//!   GET|POST /reset                 forgets everything
//!
//! Usage: otp-sink [--smtp 127.0.0.1:0] [--http 127.0.0.1:0] [--threads 2]
//! Prints `otp-sink smtp=<addr> http=<addr>` on stdout once both ports listen.
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use otp_bench::{arg, now_us};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

const SHARDS: usize = 64;
const MAX_LINE: usize = 64 * 1024;

struct Rec {
    first_us: u64,
    last_us: u64,
    code: Option<[u8; 6]>,
    mails: u32,
}

#[derive(Default)]
struct State {
    count: AtomicU64,
    first_us: AtomicU64,
    last_us: AtomicU64,
    no_code: AtomicU64,
    connections: AtomicU64,
    bytes: AtomicU64,
    shards: Vec<Mutex<HashMap<String, Rec>>>,
}


impl State {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            ..Default::default()
        }
    }

    fn shard(&self, rcpt: &str) -> &Mutex<HashMap<String, Rec>> {
        let mut h = DefaultHasher::new();
        rcpt.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn record(&self, rcpts: &[String], t: u64, code: Option<[u8; 6]>, bytes: usize) {
        for rcpt in rcpts {
            let mut map = self.shard(rcpt).lock().unwrap_or_else(|e| e.into_inner());
            match map.get_mut(rcpt.as_str()) {
                Some(r) => {
                    r.last_us = t;
                    r.mails += 1;
                    if code.is_some() {
                        r.code = code;
                    }
                }
                None => {
                    map.insert(
                        rcpt.clone(),
                        Rec {
                            first_us: t,
                            last_us: t,
                            code,
                            mails: 1,
                        },
                    );
                }
            }
        }
        if code.is_none() {
            self.no_code.fetch_add(1, Relaxed);
        }
        self.bytes.fetch_add(bytes as u64, Relaxed);
        let _ = self
            .first_us
            .compare_exchange(0, t, Relaxed, Relaxed);
        self.last_us.fetch_max(t, Relaxed);
        // Counted last: whoever sees the count also sees the recipient.
        self.count.fetch_add(1, Relaxed);
    }

    fn reset(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        for a in [
            &self.count,
            &self.first_us,
            &self.last_us,
            &self.no_code,
            &self.connections,
            &self.bytes,
        ] {
            a.store(0, Relaxed);
        }
    }

    fn recipients(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    fn stats_json(&self) -> String {
        let ms = |us: u64| {
            if us == 0 {
                "null".to_string()
            } else {
                (us / 1000).to_string()
            }
        };
        format!(
            "{{\"count\":{},\"recipients\":{},\"first_ms\":{},\"last_ms\":{},\"no_code\":{},\"connections\":{},\"bytes\":{}}}\n",
            self.count.load(Relaxed),
            self.recipients(),
            ms(self.first_us.load(Relaxed)),
            ms(self.last_us.load(Relaxed)),
            self.no_code.load(Relaxed),
            self.connections.load(Relaxed),
            self.bytes.load(Relaxed),
        )
    }

    fn each(&self, mut f: impl FnMut(&str, &Rec)) {
        for s in &self.shards {
            let map = s.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in map.iter() {
                f(k, v);
            }
        }
    }
}

// ---------------------------------------------------------------- code extraction

fn trim_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., b'\r' | b'\n' | b' ' | b'\t'] = l {
        l = rest;
    }
    l
}

/// The first line that is indented and holds exactly six digits.
fn scan_code(body: &[u8]) -> Option<[u8; 6]> {
    for raw in body.split(|&c| c == b'\n') {
        let line = trim_eol(raw);
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            continue;
        }
        let t = line.trim_ascii_start();
        if t.len() == 6 && t.iter().all(u8::is_ascii_digit) {
            let mut c = [0u8; 6];
            c.copy_from_slice(t);
            return Some(c);
        }
    }
    None
}

fn b64_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn extract_code(data: &[u8]) -> Option<[u8; 6]> {
    // Skip the message headers, whose folded lines are indented too.
    let body = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| &data[p + 4..])
        .or_else(|| data.windows(2).position(|w| w == b"\n\n").map(|p| &data[p + 2..]))
        .unwrap_or(data);
    if let Some(c) = scan_code(body) {
        return Some(c);
    }
    // Base64-encoded parts (lettre picks base64 for some non-ASCII bodies).
    let (mut in_headers, mut b64, mut acc) = (true, false, Vec::new());
    let flush = |b64: bool, acc: &mut Vec<u8>| -> Option<[u8; 6]> {
        let found = if b64 && !acc.is_empty() {
            scan_code(&b64_decode(acc))
        } else {
            None
        };
        acc.clear();
        found
    };
    for raw in data.split(|&c| c == b'\n') {
        let line = trim_eol(raw);
        if line.starts_with(b"--") {
            if let Some(c) = flush(b64, &mut acc) {
                return Some(c);
            }
            in_headers = true;
            b64 = false;
            continue;
        }
        if in_headers {
            if line.is_empty() {
                in_headers = false;
            } else {
                let lower = line.to_ascii_lowercase();
                if lower.starts_with(b"content-transfer-encoding:")
                    && lower.windows(6).any(|w| w == b"base64")
                {
                    b64 = true;
                }
            }
            continue;
        }
        if b64 {
            acc.extend_from_slice(line);
        }
    }
    flush(b64, &mut acc)
}

// ---------------------------------------------------------------- SMTP

async fn read_line<R: AsyncBufReadExt + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.clear();
    let n = r.read_until(b'\n', buf).await?;
    if buf.len() > MAX_LINE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(n)
}

fn angle_addr(arg: &[u8]) -> String {
    let s = String::from_utf8_lossy(arg);
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if b > a => s[a + 1..b].to_string(),
        _ => s
            .split_once(':')
            .map(|(_, r)| r.trim().split(' ').next().unwrap_or("").to_string())
            .unwrap_or_default(),
    }
}

async fn smtp_session(stream: TcpStream, st: Arc<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    st.connections.fetch_add(1, Relaxed);
    let (r, w) = stream.into_split();
    let mut r = BufReader::with_capacity(32 * 1024, r);
    let mut w = BufWriter::with_capacity(4 * 1024, w);
    w.write_all(b"220 otp-sink ESMTP ready\r\n").await?;
    w.flush().await?;
    let mut line = Vec::with_capacity(1024);
    let mut data = Vec::with_capacity(16 * 1024);
    let mut rcpts: Vec<String> = Vec::new();
    loop {
        if read_line(&mut r, &mut line).await? == 0 {
            return Ok(());
        }
        let cmd = trim_eol(&line);
        let verb_end = cmd.iter().position(|&c| c == b' ').unwrap_or(cmd.len());
        let verb = cmd[..verb_end].to_ascii_uppercase();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-otp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 52428800\r\n",
            b"HELO" => b"250 otp-sink\r\n",
            b"MAIL" => {
                rcpts.clear();
                b"250 2.1.0 Ok\r\n"
            }
            b"RCPT" => {
                rcpts.push(angle_addr(&cmd[verb_end..]));
                b"250 2.1.5 Ok\r\n"
            }
            b"DATA" if rcpts.is_empty() => b"503 5.5.1 Error: need RCPT command\r\n",
            b"DATA" => {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                w.flush().await?;
                data.clear();
                loop {
                    if read_line(&mut r, &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let l = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
                    data.extend_from_slice(l);
                }
                let t = now_us();
                st.record(&rcpts, t, extract_code(&data), data.len());
                rcpts.clear();
                b"250 2.0.0 Ok: queued\r\n"
            }
            b"RSET" => {
                rcpts.clear();
                b"250 2.0.0 Ok\r\n"
            }
            b"NOOP" => b"250 2.0.0 Ok\r\n",
            b"VRFY" => b"252 2.0.0 Cannot VRFY user\r\n",
            b"QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n").await?;
                w.flush().await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Error: command not recognized\r\n",
        };
        w.write_all(reply).await?;
        // Pipelining: answer a batch of commands with one write.
        if r.buffer().is_empty() {
            w.flush().await?;
        }
    }
}

// ---------------------------------------------------------------- HTTP

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn query_param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

async fn http_session(mut s: TcpStream, st: Arc<State>) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() > 16 * 1024 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut parts = head.split_whitespace();
    let _method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, ctype, body) = match path {
        "/stats" => ("200 OK", "application/json", st.stats_json()),
        "/wait" => {
            let want = query_param(query, "count").unwrap_or(0);
            let deadline = Instant::now() + Duration::from_millis(query_param(query, "timeout_ms").unwrap_or(10_000));
            while st.count.load(Relaxed) < want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ("200 OK", "application/json", st.stats_json())
        }
        "/arrivals" | "/codes" => {
            let arrivals = path == "/arrivals";
            let mut out = String::from("{");
            st.each(|k, v| {
                if out.len() > 1 {
                    out.push(',');
                }
                json_str(k, &mut out);
                out.push(':');
                if arrivals {
                    out.push_str(&(v.first_us / 1000).to_string());
                } else {
                    match v.code {
                        Some(c) => json_str(std::str::from_utf8(&c).unwrap_or(""), &mut out),
                        None => out.push_str("null"),
                    }
                }
            });
            out.push_str("}\n");
            ("200 OK", "application/json", out)
        }
        "/dump" => {
            let mut out = String::new();
            st.each(|k, v| {
                let code = v.code.map(|c| String::from_utf8_lossy(&c).to_string());
                out.push_str(&format!(
                    "{k}\t{}\t{}\t{}\t{}\n",
                    v.first_us,
                    v.last_us,
                    code.as_deref().unwrap_or("-"),
                    v.mails
                ));
            });
            ("200 OK", "text/tab-separated-values", out)
        }
        "/reset" => {
            st.reset();
            ("200 OK", "application/json", "{\"ok\":true}\n".to_string())
        }
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    s.shutdown().await
}

// ---------------------------------------------------------------- main


async fn accept_loop<F, Fut>(listener: TcpListener, st: Arc<State>, handler: F)
where
    F: Fn(TcpStream, Arc<State>) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = handler(s, st).await;
                });
            }
            // EMFILE and friends: back off briefly instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: otp-sink [--smtp 127.0.0.1:0] [--http 127.0.0.1:0] [--threads 2]");
        return Ok(());
    }
    let threads: usize = arg(&args, "--threads", "2").parse().unwrap_or(2).max(1);
    // One thread: a current-thread runtime (no work stealing, no cross-thread wake-ups).
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async {
        let smtp = TcpListener::bind(arg(&args, "--smtp", "127.0.0.1:0")).await?;
        let http = TcpListener::bind(arg(&args, "--http", "127.0.0.1:0")).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "otp-sink smtp={} http={}", smtp.local_addr()?, http.local_addr()?)?;
            out.flush()?;
        }
        let st = Arc::new(State::new());
        tokio::spawn(accept_loop(smtp, st.clone(), smtp_session));
        tokio::spawn(accept_loop(http, st.clone(), http_session));
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_indented_code_in_a_plain_part() {
        let mail = b"From: a@b\r\nSubject: x\r\n  folded 111111\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nUse this code:\r\n\r\n    042424\r\n\r\n--b--\r\n";
        assert_eq!(extract_code(mail), Some(*b"042424"));
    }

    #[test]
    fn decodes_base64_parts() {
        // "Use this code:\n\n    987654\n"
        let mail = b"From: a@b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nVXNlIHRoaXMgY29kZToKCiAgICA5ODc2NTQK\r\n--b--\r\n";
        assert_eq!(extract_code(mail), Some(*b"987654"));
    }

    #[test]
    fn no_code_is_none() {
        assert_eq!(extract_code(b"Subject: x\r\n\r\nhello 123456\r\n"), None);
    }
}
