//! Where log lines go: a shared buffer that a background thread writes out every
//! `FLUSH_EVERY`, so a log line costs a copy, not a system call and a thread wake-up. Nothing
//! is dropped: past `HIGH_WATER` bytes the thread that logs writes the buffer out itself.
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How stale a buffered line may get before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes past which the logging thread writes them out at once (back-pressure).
const HIGH_WATER: usize = 64 * 1024;

/// The `MakeWriter` of the log layers; clones share one buffer.
#[derive(Clone)]
pub struct BatchedWriter {
    shared: Arc<Shared>,
}

/// Stops the flushing thread and writes what is left when dropped (at the end of `main`).
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    tick: Condvar,
    /// Held while writing out, so buffers reach the output in the order they were filled.
    out: Mutex<Output>,
}

struct Output {
    sink: Box<dyn Write + Send>,
    /// An empty buffer with the capacity of one written out: swapped in for the one taken, so
    /// the buffer does not grow again from nothing after every write.
    spare: Vec<u8>,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    closed: bool,
}

/// A poisoned lock only means another thread panicked while logging; the buffer is still bytes.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Writes out everything buffered so far. Write errors are ignored: there is nowhere left
    /// to report them.
    fn flush(&self) {
        let out = &mut *lock(&self.out);
        std::mem::swap(&mut lock(&self.pending).bytes, &mut out.spare);
        if !out.spare.is_empty() {
            let _ = out
                .sink
                .write_all(&out.spare)
                .and_then(|()| out.sink.flush());
        }
        out.spare.clear();
    }
}

impl BatchedWriter {
    /// A writer into `out`, flushed every `every`, and the guard that ends its flushing thread.
    pub fn new(out: Box<dyn Write + Send>, every: Duration) -> io::Result<(Self, FlushGuard)> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            tick: Condvar::new(),
            out: Mutex::new(Output {
                sink: out,
                spare: Vec::new(),
            }),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                loop {
                    let closed = {
                        let pending = lock(&worker.pending);
                        // Checks `closed` before waiting too, so a close that came first is seen.
                        let (pending, _) = worker
                            .tick
                            .wait_timeout_while(pending, every, |p| !p.closed)
                            .unwrap_or_else(PoisonError::into_inner);
                        pending.closed
                    };
                    worker.flush();
                    if closed {
                        return;
                    }
                }
            })?;
        let guard = FlushGuard {
            shared: shared.clone(),
            thread: Some(thread),
        };
        Ok((Self { shared }, guard))
    }

    /// Standard output through its own file handle: `io::Stdout` would write line by line.
    pub fn stdout() -> io::Result<(Self, FlushGuard)> {
        use std::os::fd::AsFd;
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        Self::new(Box::new(std::fs::File::from(fd)), FLUSH_EVERY)
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        lock(&self.shared.pending).closed = true;
        self.shared.tick.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.shared.flush();
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.shared)
    }
}

/// One log line's writer: the formatter hands it the whole line in one `write_all`.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let full = {
            let mut pending = lock(&self.0.pending);
            pending.bytes.extend_from_slice(buf);
            pending.bytes.len() >= HIGH_WATER
        };
        if full {
            self.0.flush();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn text(c: &Captured) -> String {
        String::from_utf8(c.0.lock().unwrap().clone()).unwrap()
    }

    /// Never ticks within a test: only the guard and the high-water mark write.
    const NEVER: Duration = Duration::from_secs(3600);

    #[test]
    fn lines_are_buffered_and_the_guard_writes_them_in_order() {
        let out = Captured::default();
        let (writer, guard) = BatchedWriter::new(Box::new(out.clone()), NEVER).unwrap();
        writer.make_writer().write_all(b"one\n").unwrap();
        writer.make_writer().write_all(b"two\n").unwrap();
        assert_eq!(text(&out), "", "buffered, not written per line");
        drop(guard);
        assert_eq!(text(&out), "one\ntwo\n");
    }

    #[test]
    fn the_tick_writes_buffered_lines() {
        let out = Captured::default();
        let (writer, _guard) =
            BatchedWriter::new(Box::new(out.clone()), Duration::from_millis(10)).unwrap();
        writer.make_writer().write_all(b"one\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while text(&out).is_empty() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(text(&out), "one\n");
    }

    #[test]
    fn past_the_high_water_mark_the_logging_thread_writes_at_once() {
        let out = Captured::default();
        let (writer, guard) = BatchedWriter::new(Box::new(out.clone()), NEVER).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..2000 {
                        w.make_writer()
                            .write_all(format!("{t}:{i:040}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 8000 lines of 43 bytes are over 5 high-water marks: most are out without a tick.
        assert!(text(&out).len() >= 4 * HIGH_WATER, "{}", text(&out).len());
        drop(guard);
        let written = text(&out);
        for t in 0..4 {
            let mine: Vec<usize> = written
                .lines()
                .filter_map(|l| l.strip_prefix(&format!("{t}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..2000).collect::<Vec<_>>(), "every line, in order");
        }
    }
}
