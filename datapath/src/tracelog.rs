//! Mahimahi packet logs of trace-driven pipes (`trace_log = "FILE"`): the
//! workers hand the lines their emulators kept to a writer thread every
//! millisecond (never writing files on the packet path); the writer opens
//! each file with Mahimahi's header and appends. A batch the writer cannot
//! take at once is counted as lost lines, never waited for.

use sched::emu::trace::LogLine;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// Batches in the channel before the workers count lines as lost.
const DEPTH: usize = 256;

/// Where one pipe's log goes.
#[derive(Debug, Clone)]
pub(crate) struct LogTarget {
    /// The pipe's index in its direction's emulator.
    pub pipe: usize,
    /// The file.
    pub path: Arc<str>,
    /// Its header (Mahimahi's), written when the file is opened.
    pub header: Arc<str>,
}

/// Lines of one pipe.
#[derive(Debug)]
pub(crate) struct Batch {
    target: LogTarget,
    lines: Vec<LogLine>,
}

/// The workers' end.
#[derive(Debug)]
pub(crate) struct TraceLogs {
    tx: Option<SyncSender<Batch>>,
    /// Lines the emulators or the channel had no room for.
    pub lost: AtomicU64,
}

impl TraceLogs {
    /// No logs.
    pub fn off() -> Self {
        TraceLogs {
            tx: None,
            lost: AtomicU64::new(0),
        }
    }

    /// Logs written by a thread of their own (joined when every sender is
    /// gone: [`TraceLogs::close`]).
    pub fn start() -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = sync_channel(DEPTH);
        let h = std::thread::Builder::new()
            .name("xdpsched-tracelog".into())
            .spawn(move || write_all(rx));
        let logs = TraceLogs {
            tx: Some(tx),
            lost: AtomicU64::new(0),
        };
        match h {
            Ok(h) => (logs, h),
            Err(e) => {
                tracing::error!("trace_log: no writer thread ({e}); no packet logs");
                (Self::off(), std::thread::spawn(|| {}))
            }
        }
    }

    /// Stops accepting lines (the writer finishes what it has).
    pub fn close(&mut self) {
        self.tx = None;
    }

    /// Hands `lines` of `target` to the writer, or counts them lost.
    pub fn send(&self, target: &LogTarget, lines: Vec<LogLine>) {
        let n = lines.len() as u64;
        let Some(tx) = &self.tx else {
            self.lost.fetch_add(n, Ordering::Relaxed);
            return;
        };
        let b = Batch {
            target: target.clone(),
            lines,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(b) {
            self.lost.fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn write_all(rx: Receiver<Batch>) {
    let mut files: HashMap<Arc<str>, Option<std::io::BufWriter<std::fs::File>>> = HashMap::new();
    let mut text = String::new();
    loop {
        let b = match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(b) => b,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // Quiet: what was written so far goes to the files.
                for w in files.values_mut().flatten() {
                    let _ = w.flush();
                }
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let f = files.entry(b.target.path.clone()).or_insert_with(|| {
            match std::fs::File::create(&*b.target.path) {
                Ok(f) => {
                    let mut w = std::io::BufWriter::new(f);
                    let _ = w.write_all(b.target.header.as_bytes());
                    Some(w)
                }
                Err(e) => {
                    tracing::error!("trace_log {}: {e}; this log is not written", b.target.path);
                    None
                }
            }
        });
        let Some(w) = f else { continue };
        text.clear();
        for l in &b.lines {
            let _ = l.write(&mut text);
        }
        if let Err(e) = w.write_all(text.as_bytes()) {
            tracing::error!("trace_log {}: {e}", b.target.path);
        }
    }
    for w in files.values_mut().flatten() {
        let _ = w.flush();
    }
}
