//! otp-burst: sends N `POST /otp/generate` requests, each for a distinct address, as fast as C
//! keep-alive connections allow, records when each request was sent, then (with --sink) waits until
//! the otp-sink has a mail for every accepted address and reports mails/s and request-to-mail latency.
//!
//! Usage: otp-burst --target 127.0.0.1:8080 --count 20000 [--connections 50] [--threads 2]
//!                  [--prefix e2e] [--domain bench.example] [--sink 127.0.0.1:PORT] [--wait-secs 300]
//!                  [--wrong-codes FILE] [--verify FILE]
//! Addresses are `<prefix>-<i>@<domain>`, i in 0..count. Prints one JSON line on stdout.
//! --verify FILE sends `POST /otp/verify` instead, request i using line i % lines of FILE
//! (`<address>\t<code>`, as written by --wrong-codes); used for fixed-count profiles.
//! --wrong-codes FILE writes `<address>\t<a 6-digit code that is not the mailed one>` for every
//! address the sink has a code for (the input of bench/verify.lua).
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use otp_bench::{arg, now_us};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;



#[derive(Clone, Copy, Default)]
struct Sent {
    at_us: u64,
    rt_us: u64,
    status: u16, // 0 = transport error
}

/// Reads one HTTP/1.1 response; returns its status. `buf` keeps bytes beyond it.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + len);
    Ok(status)
}

async fn connect(target: &str) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn client(
    target: Arc<String>,
    next: Arc<AtomicUsize>,
    count: usize,
    prefix: Arc<String>,
    domain: Arc<String>,
    verify: Arc<Vec<(String, String)>>,
) -> Vec<(usize, Sent)> {
    let mut out = Vec::new();
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let i = next.fetch_add(1, Relaxed);
        if i >= count {
            return out;
        }
        let (path, body) = if verify.is_empty() {
            ("/otp/generate", format!("{{\"email\":\"{prefix}-{i}@{domain}\"}}"))
        } else {
            let (email, otp) = &verify[i % verify.len()];
            ("/otp/verify", format!("{{\"email\":\"{email}\",\"otp\":\"{otp}\"}}"))
        };
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {target}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut result = Sent::default();
        for _attempt in 0..2 {
            if conn.is_none() {
                match connect(&target).await {
                    Ok(c) => {
                        conn = Some(c);
                        buf.clear();
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
            }
            let Some(s) = conn.as_mut() else { continue };
            let started = Instant::now();
            result.at_us = now_us();
            let r = async {
                s.write_all(req.as_bytes()).await?;
                read_response(s, &mut buf).await
            }
            .await;
            match r {
                Ok(status) => {
                    result.status = status;
                    result.rt_us = started.elapsed().as_micros() as u64;
                    break;
                }
                Err(_) => conn = None,
            }
        }
        out.push((i, result));
    }
}

async fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).to_string();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(std::io::Error::other(format!("GET {path}: {text:.200}"))),
    }
}

fn json_u64(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\":"))? + key.len() + 3;
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let target = Arc::new(arg(&args, "--target", "127.0.0.1:8080"));
    let count: usize = arg(&args, "--count", "20000").parse().unwrap_or(20000);
    let connections: usize = arg(&args, "--connections", "50").parse().unwrap_or(50).max(1);
    let threads: usize = arg(&args, "--threads", "2").parse().unwrap_or(2).max(1);
    let prefix = Arc::new(arg(&args, "--prefix", "e2e"));
    let domain = Arc::new(arg(&args, "--domain", "bench.example"));
    let sink = arg(&args, "--sink", "");
    let wait = Duration::from_secs(arg(&args, "--wait-secs", "300").parse().unwrap_or(300));
    let wrong_codes = arg(&args, "--wrong-codes", "");
    let verify_file = arg(&args, "--verify", "");
    let verify: Arc<Vec<(String, String)>> = Arc::new(if verify_file.is_empty() {
        Vec::new()
    } else {
        std::fs::read_to_string(&verify_file)?
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(a, c)| (a.to_string(), c.to_string()))
            .collect()
    });
    if !verify_file.is_empty() && verify.is_empty() {
        return Err(std::io::Error::other(format!("no `address<TAB>code` lines in {verify_file}")));
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let start_us = now_us();
        let started = Instant::now();
        let tasks: Vec<_> = (0..connections)
            .map(|_| {
                tokio::spawn(client(
                    target.clone(),
                    next.clone(),
                    count,
                    prefix.clone(),
                    domain.clone(),
                    verify.clone(),
                ))
            })
            .collect();
        let mut sent = vec![Sent::default(); count];
        for t in tasks {
            for (i, s) in t.await.map_err(std::io::Error::other)? {
                sent[i] = s;
            }
        }
        let send_secs = started.elapsed().as_secs_f64();
        let ok = sent.iter().filter(|s| (200..300).contains(&s.status)).count();
        let errors = sent.iter().filter(|s| s.status == 0).count();
        let non2xx = count - ok - errors;
        let mut rts: Vec<u64> = sent.iter().filter(|s| s.status != 0).map(|s| s.rt_us).collect();
        rts.sort_unstable();
        let mut line = format!(
            "{{\"requests\":{count},\"ok\":{ok},\"non2xx\":{non2xx},\"errors\":{errors},\"send_secs\":{send_secs:.3},\"rps\":{:.1},\"http_p50_us\":{},\"http_p99_us\":{}",
            count as f64 / send_secs.max(1e-9),
            pct(&rts, 50.0),
            pct(&rts, 99.0),
        );
        if !sink.is_empty() {
            // Wait for one mail per accepted request (the harness resets the sink before a burst).
            let deadline = Instant::now() + wait;
            let mut stats = String::new();
            while Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now()).as_millis().min(2000);
                stats = http_get(&sink, &format!("/wait?count={ok}&timeout_ms={left}")).await?;
                if json_u64(&stats, "count").unwrap_or(0) >= ok as u64 {
                    break;
                }
            }
            let waited_secs = started.elapsed().as_secs_f64();
            let dump = http_get(&sink, "/dump").await?;
            let mut arrivals: HashMap<usize, (u64, String)> = HashMap::with_capacity(count);
            let head = format!("{prefix}-");
            let tail = format!("@{domain}");
            for l in dump.lines() {
                let mut f = l.split('\t');
                let (Some(rcpt), Some(first), Some(_last), Some(code)) = (f.next(), f.next(), f.next(), f.next()) else {
                    continue;
                };
                let Some(i) = rcpt
                    .strip_prefix(head.as_str())
                    .and_then(|r| r.strip_suffix(tail.as_str()))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if i < count {
                    arrivals.insert(i, (first.parse().unwrap_or(0), code.to_string()));
                }
            }
            let mut lat: Vec<u64> = Vec::with_capacity(arrivals.len());
            let mut last_us = 0u64;
            let mut first_us = u64::MAX;
            let mut with_code = 0usize;
            for (i, (at, code)) in &arrivals {
                let s = sent[*i];
                if (200..300).contains(&s.status) {
                    lat.push(at.saturating_sub(s.at_us));
                }
                last_us = last_us.max(*at);
                first_us = first_us.min(*at);
                if code.len() == 6 {
                    with_code += 1;
                }
            }
            lat.sort_unstable();
            let mails = arrivals.len();
            let span = last_us.saturating_sub(start_us) as f64 / 1e6;
            let sink_span = last_us.saturating_sub(first_us) as f64 / 1e6;
            line.push_str(&format!(
                ",\"mails\":{mails},\"with_code\":{with_code},\"all_arrived\":{},\"waited_secs\":{waited_secs:.3},\"last_mail_secs\":{span:.3},\"mails_per_s\":{:.1},\"sink_mails_per_s\":{:.1},\"lat_p50_ms\":{:.1},\"lat_p99_ms\":{:.1},\"lat_max_ms\":{:.1},\"sink_stats\":{}",
                mails >= ok && ok > 0,
                if span > 0.0 { mails as f64 / span } else { 0.0 },
                if sink_span > 0.0 { (mails.saturating_sub(1)) as f64 / sink_span } else { 0.0 },
                pct(&lat, 50.0) as f64 / 1000.0,
                pct(&lat, 99.0) as f64 / 1000.0,
                lat.last().copied().unwrap_or(0) as f64 / 1000.0,
                stats.trim(),
            ));
            if !wrong_codes.is_empty() {
                let mut f = std::io::BufWriter::new(std::fs::File::create(&wrong_codes)?);
                let mut idx: Vec<_> = arrivals.iter().filter(|(_, (_, c))| c.len() == 6).collect();
                idx.sort_unstable_by_key(|(i, _)| **i);
                for (i, (_, code)) in idx {
                    let wrong = (code.parse::<u32>().unwrap_or(0) + 1) % 1_000_000;
                    writeln!(f, "{prefix}-{i}@{domain}\t{wrong:06}")?;
                }
                f.flush()?;
            }
        }
        line.push('}');
        println!("{line}");
        Ok(())
    })
}
