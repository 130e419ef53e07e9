//! What the scheduler did, per packet, in a pcapng file: `--capture FILE`
//! for a whole run, `xdpsched capture --iface P FILE` for a while on a
//! running instance. Every frame that leaves (on its egress port, outbound)
//! and every frame dropped (on the port it came in by, inbound) is written
//! with a comment carrying the direction, the decision (sent by which pipe
//! and flow after how long in the emulator, passed unscheduled, or dropped
//! and why), readable in Wireshark/tshark (`frame.comment`). xdpdump and
//! tcpdump see the wire; this shows the queueing in between.
//!
//! Bounded cost: off by default; when on, a worker copies the first
//! `SNAP` (128) bytes of the frame and a few words into a fixed-size record and
//! pushes it into its lane's ring (no allocation, no lock); a full ring
//! drops the record (counted as `lost`), never slows the packet path. The
//! capture thread drains the rings, formats the comments and writes the
//! file.
//!
//! The pcapng blocks are written here (the format is small and fixed:
//! section header, one interface description per port with nanosecond
//! timestamps, enhanced packet blocks with `opt_comment` and `epb_flags`).

use crossbeam_queue::ArrayQueue;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes of each frame kept: Ethernet, two VLAN tags, IPv6 and a TCP header
/// with options fit.
pub(crate) const SNAP: usize = 128;
/// Records per lane's ring (~2.6 MB): 40 ms of 64-byte frames at 400 kpps,
/// for a capture thread that does not get a CPU at once.
const RING: usize = 16384;

/// What happened to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Left pipe `pipe` (index in its direction's configuration) of flow
    /// `flow` after `delay_ns` inside the emulator.
    Sent { pipe: u16, flow: u32, delay_ns: u64 },
    /// Forwarded unscheduled.
    Passed,
    /// Dropped.
    Dropped { reason: &'static str },
}

/// One frame's record, as a worker leaves it for the capture thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// When (the run's clock, ns).
    pub t_ns: u64,
    /// The port it is recorded on (0: --iface, 1: --out).
    pub port: u8,
    /// The egress side it was for (its direction).
    pub egress: u8,
    pub event: Event,
    /// The frame's length, and how much of it is in `data`.
    pub len: u32,
    pub snap: u16,
    pub data: [u8; SNAP],
}

/// What the workers and the capture thread share.
pub(crate) struct Tap {
    /// Record now (read by the workers per frame, relaxed).
    pub on: AtomicBool,
    /// Per lane.
    pub rings: Vec<ArrayQueue<Record>>,
    /// Per lane: records that found the ring full.
    pub lost: Vec<AtomicU64>,
    /// A capture asked for (by `--capture` or `xdpsched capture`), taken by
    /// the capture thread.
    pub job: Mutex<Option<Job>>,
    /// The current or last capture.
    pub status: Mutex<Status>,
    /// Per egress side: its direction's name and pipe names (set at start
    /// and at each reload).
    pub names: Mutex<[(String, Vec<String>); 2]>,
}

/// A capture to make.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub path: PathBuf,
    /// Stop after this long (None: until xdpsched stops).
    pub duration: Option<Duration>,
}

/// The current or last capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Whether it is writing now.
    pub active: bool,
    /// Its file.
    pub file: Option<String>,
    /// Frames written.
    pub written: u64,
    /// Frames not recorded: a worker's ring was full.
    pub lost: u64,
    /// Why it stopped early (the file could not be written).
    pub error: Option<String>,
}

impl Tap {
    pub fn new(lanes: usize) -> Tap {
        Tap {
            on: AtomicBool::new(false),
            rings: (0..lanes).map(|_| ArrayQueue::new(RING)).collect(),
            lost: (0..lanes).map(|_| AtomicU64::new(0)).collect(),
            job: Mutex::new(None),
            status: Mutex::new(Status::default()),
            names: Mutex::new(Default::default()),
        }
    }

    /// Records `data` (a frame) for lane `lane`; a full ring loses it.
    #[inline]
    pub fn record(
        &self,
        lane: usize,
        t_ns: u64,
        port: usize,
        egress: usize,
        event: Event,
        data: &[u8],
    ) {
        let snap = data.len().min(SNAP);
        let mut r = Record {
            t_ns,
            port: port as u8,
            egress: egress as u8,
            event,
            len: data.len() as u32,
            snap: snap as u16,
            data: [0; SNAP],
        };
        r.data[..snap].copy_from_slice(&data[..snap]);
        if self.rings[lane].push(r).is_err() {
            self.lost[lane].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks for a capture; refused while one runs.
    pub fn start(&self, job: Job) -> anyhow::Result<()> {
        let status = self
            .status
            .lock()
            .map_err(|_| anyhow::anyhow!("capture thread failed"))?;
        let mut pending = self
            .job
            .lock()
            .map_err(|_| anyhow::anyhow!("capture thread failed"))?;
        if status.active || pending.is_some() {
            anyhow::bail!(
                "a capture is running (to {}): wait for it to end",
                status.file.as_deref().unwrap_or("?")
            );
        }
        *pending = Some(job);
        Ok(())
    }
}

/// Names the directions and pipes of `scheds` (by egress side) for the
/// comments.
pub(crate) fn set_names(tap: &Tap, scheds: &[Option<crate::direction::Sched>; 2], bridge: bool) {
    let Ok(mut n) = tap.names.lock() else { return };
    for (e, sc) in scheds.iter().enumerate() {
        n[e] = match sc {
            Some(sc) => (
                sc.dir.name().to_owned(),
                sc.cfg.pipes.iter().map(|p| p.name.clone()).collect(),
            ),
            // Unscheduled: the direction that leaves by this side.
            None => (
                if bridge && e == 0 { "b-to-a" } else { "a-to-b" }.to_owned(),
                Vec::new(),
            ),
        };
    }
}

/// Appends `n` in decimal (the capture thread formats hundreds of
/// thousands of comments a second; `write!` cost a fifth of its time).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// The comment of a record, into `out` (cleared): `dir=a-to-b
/// decision=sent pipe=egress flow=3 queue_delay_ns=1234`, `...
/// decision=passed`, `... decision=dropped reason=flow_limit`.
pub(crate) fn comment(out: &mut String, r: &Record, names: &[(String, Vec<String>); 2]) {
    out.clear();
    let (dir, pipes) = &names[usize::from(r.egress).min(1)];
    out.push_str("dir=");
    out.push_str(dir);
    match r.event {
        Event::Sent {
            pipe,
            flow,
            delay_ns,
        } => {
            out.push_str(" decision=sent pipe=");
            out.push_str(pipes.get(usize::from(pipe)).map_or("?", String::as_str));
            out.push_str(" flow=");
            push_u64(out, u64::from(flow));
            out.push_str(" queue_delay_ns=");
            push_u64(out, delay_ns);
        }
        Event::Passed => out.push_str(" decision=passed"),
        Event::Dropped { reason } => {
            out.push_str(" decision=dropped reason=");
            out.push_str(reason);
        }
    }
}

/// pcapng blocks (little endian, as the host writes them).
pub(crate) mod pcapng {
    fn pad4(n: usize) -> usize {
        (n + 3) & !3
    }

    fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
        out.extend_from_slice(&code.to_le_bytes());
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
        out.resize(pad4(out.len()), 0);
    }

    /// A block of `kind` around `body` (its length written at both ends).
    fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let total = (12 + body.len()) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(&total.to_le_bytes());
    }

    /// The section header: byte-order magic, version 1.0, unknown length,
    /// the writing application.
    pub fn section(out: &mut Vec<u8>, app: &str) {
        let mut b = Vec::new();
        b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(-1i64).to_le_bytes());
        option(&mut b, 4, app.as_bytes()); // shb_userappl
        option(&mut b, 0, &[]);
        block(out, 0x0A0D_0D0A, &b);
    }

    /// An Ethernet interface named `name`, timestamps in nanoseconds.
    pub fn interface(out: &mut Vec<u8>, name: &str, snaplen: u32) {
        let mut b = Vec::new();
        b.extend_from_slice(&1u16.to_le_bytes()); // LINKTYPE_ETHERNET
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&snaplen.to_le_bytes());
        option(&mut b, 2, name.as_bytes()); // if_name
        option(&mut b, 9, &[9]); // if_tsresol: 10^-9
        option(&mut b, 0, &[]);
        block(out, 1, &b);
    }

    /// A packet on interface `iface` at `ts_ns` (since the epoch): `data`
    /// (captured) of a frame of `len` bytes, `outbound` or inbound, with a
    /// comment.
    pub fn packet(
        out: &mut Vec<u8>,
        iface: u32,
        ts_ns: u64,
        data: &[u8],
        len: u32,
        outbound: bool,
        comment: &str,
    ) {
        // Written in place (no block buffer): the capture thread writes
        // hundreds of thousands a second.
        let total = 12 + 20 + pad4(data.len()) + 4 + pad4(comment.len()) + 8 + 4;
        out.reserve(total);
        out.extend_from_slice(&6u32.to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&iface.to_le_bytes());
        out.extend_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
        out.extend_from_slice(&(ts_ns as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(data);
        out.resize(pad4(out.len()), 0);
        // opt_comment, then epb_flags (direction in bits 0-1: 1 inbound, 2
        // outbound), then the end of options.
        option(out, 1, comment.as_bytes());
        option(out, 2, &(if outbound { 2u32 } else { 1u32 }).to_le_bytes());
        option(out, 0, &[]);
        out.extend_from_slice(&(total as u32).to_le_bytes());
    }
}

/// How often the capture thread drains the rings while capturing, and looks
/// for a job otherwise.
const DRAIN_EVERY: Duration = Duration::from_millis(1);
const IDLE_EVERY: Duration = Duration::from_millis(20);

/// The capture thread: waits for a job, writes it, until `halt`. `ifaces`:
/// the ports (interface ids 0 and 1); `epoch_ns`: the wall-clock time of
/// the run's clock zero.
pub(crate) fn run(tap: &Tap, ifaces: &[String], epoch_ns: u64, halt: &AtomicBool) {
    loop {
        let job = tap.job.lock().ok().and_then(|mut j| j.take());
        match job {
            Some(job) => write(tap, ifaces, epoch_ns, halt, job),
            None if halt.load(Ordering::Relaxed) => return,
            None => std::thread::sleep(IDLE_EVERY),
        }
    }
}

fn set_status(tap: &Tap, f: impl FnOnce(&mut Status)) {
    if let Ok(mut s) = tap.status.lock() {
        f(&mut s);
    }
}

/// One capture: the file's headers, then the rings drained into it until
/// the job's time is up or xdpsched halts.
fn write(tap: &Tap, ifaces: &[String], epoch_ns: u64, halt: &AtomicBool, job: Job) {
    let lost0: u64 = tap.lost.iter().map(|l| l.load(Ordering::Relaxed)).sum();
    set_status(tap, |s| {
        *s = Status {
            active: true,
            file: Some(job.path.display().to_string()),
            ..Status::default()
        }
    });
    // Packet heads, written by root: readable by the owner only.
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&job.path)
    };
    // Unbuffered: the rings are drained into `buf` in 64 KiB pieces, each
    // one write.
    let mut w = match file {
        Ok(f) => f,
        Err(e) => {
            set_status(tap, |s| {
                s.active = false;
                s.error = Some(format!("{}: {e}", job.path.display()));
            });
            tracing::error!("capture: {}: {e}", job.path.display());
            return;
        }
    };
    let mut buf = Vec::with_capacity(1 << 17);
    pcapng::section(&mut buf, concat!("xdpsched ", env!("CARGO_PKG_VERSION")));
    for name in ifaces {
        pcapng::interface(&mut buf, name, SNAP as u32);
    }
    let mut err = w.write_all(&buf).err();
    // Records a worker left after an earlier capture ended belong to none.
    for ring in &tap.rings {
        while ring.pop().is_some() {}
    }
    tap.on.store(true, Ordering::Relaxed);
    tracing::info!("capture: writing {}", job.path.display());
    let started = Instant::now();
    let mut written = 0u64;
    let mut stopping = false;
    let mut text = String::with_capacity(128);
    loop {
        let done = halt.load(Ordering::Relaxed)
            || job.duration.is_some_and(|d| started.elapsed() >= d)
            || err.is_some();
        if done && !stopping {
            // Records pushed just before the switch still arrive: one more round.
            tap.on.store(false, Ordering::Relaxed);
            stopping = true;
            std::thread::sleep(DRAIN_EVERY * 5);
        } else if !done && tap.rings.iter().all(ArrayQueue::is_empty) {
            // Sleeps only when it has caught up.
            std::thread::sleep(DRAIN_EVERY);
        }
        let names = tap.names.lock().map(|n| n.clone()).unwrap_or_default();
        for ring in &tap.rings {
            buf.clear();
            let mut n = 0u64;
            while let Some(r) = ring.pop() {
                comment(&mut text, &r, &names);
                pcapng::packet(
                    &mut buf,
                    u32::from(r.port),
                    epoch_ns + r.t_ns,
                    &r.data[..usize::from(r.snap)],
                    r.len,
                    !matches!(r.event, Event::Dropped { .. }),
                    &text,
                );
                n += 1;
                // One write per 64 KiB; the ring is drained to the end.
                if buf.len() > 1 << 16 {
                    if err.is_none() {
                        err = w.write_all(&buf).err();
                        written += n * u64::from(err.is_none());
                    }
                    buf.clear();
                    n = 0;
                }
            }
            if err.is_none() && !buf.is_empty() {
                err = w.write_all(&buf).err();
                written += n * u64::from(err.is_none());
            }
        }
        set_status(tap, |s| s.written = written);
        if stopping && tap.rings.iter().all(ArrayQueue::is_empty) {
            break;
        }
    }
    if err.is_none() {
        err = w.flush().err();
    }
    let lost = tap
        .lost
        .iter()
        .map(|l| l.load(Ordering::Relaxed))
        .sum::<u64>()
        - lost0;
    set_status(tap, |s| {
        s.active = false;
        s.written = written;
        s.lost = lost;
        s.error = err.as_ref().map(|e| format!("{}: {e}", job.path.display()));
    });
    match err {
        Some(e) => tracing::error!("capture: {}: {e}", job.path.display()),
        None => tracing::info!(
            "capture: wrote {written} frames to {} ({lost} not recorded: a ring was full)",
            job.path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks pcapng blocks: (type, body) each, checking both lengths.
    fn blocks(b: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < b.len() {
            let kind = u32::from_le_bytes(b[at..at + 4].try_into().expect("4"));
            let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().expect("4")) as usize;
            assert_eq!(len % 4, 0, "block length {len}");
            let end = u32::from_le_bytes(b[at + len - 4..at + len].try_into().expect("4")) as usize;
            assert_eq!(len, end);
            out.push((kind, b[at + 8..at + len - 4].to_vec()));
            at += len;
        }
        out
    }

    #[test]
    fn blocks_are_well_formed_and_carry_the_comment() {
        let mut b = Vec::new();
        pcapng::section(&mut b, "xdpsched test");
        pcapng::interface(&mut b, "dutA", SNAP as u32);
        pcapng::packet(
            &mut b,
            0,
            1_700_000_000_123_456_789,
            &[1, 2, 3, 4, 5],
            60,
            true,
            "dir=a-to-b decision=passed",
        );
        let bl = blocks(&b);
        assert_eq!(
            bl.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            vec![0x0A0D_0D0A, 1, 6]
        );
        let epb = &bl[2].1;
        let ts = (u64::from(u32::from_le_bytes(epb[4..8].try_into().expect("4"))) << 32)
            | u64::from(u32::from_le_bytes(epb[8..12].try_into().expect("4")));
        assert_eq!(ts, 1_700_000_000_123_456_789);
        assert_eq!(u32::from_le_bytes(epb[12..16].try_into().expect("4")), 5);
        assert_eq!(u32::from_le_bytes(epb[16..20].try_into().expect("4")), 60);
        // Data padded to 8, then opt_comment.
        assert_eq!(&epb[20..25], &[1, 2, 3, 4, 5]);
        assert_eq!(u16::from_le_bytes([epb[28], epb[29]]), 1);
        let n = usize::from(u16::from_le_bytes([epb[30], epb[31]]));
        assert_eq!(&epb[32..32 + n], b"dir=a-to-b decision=passed");
    }

    #[test]
    fn a_full_ring_loses_records_and_counts_them() {
        let tap = Tap::new(1);
        for i in 0..RING + 10 {
            tap.record(0, i as u64, 0, 1, Event::Passed, &[0u8; 200]);
        }
        assert_eq!(tap.rings[0].len(), RING);
        assert_eq!(tap.lost[0].load(Ordering::Relaxed), 10);
        let r = tap.rings[0].pop().expect("a record");
        assert_eq!((r.len, usize::from(r.snap)), (200, SNAP));
        let names = [
            ("b-to-a".to_owned(), vec![]),
            ("a-to-b".to_owned(), vec!["egress".to_owned()]),
        ];
        let sent = Record {
            event: Event::Sent {
                pipe: 0,
                flow: 3,
                delay_ns: 1500,
            },
            ..r
        };
        let mut c = String::new();
        comment(&mut c, &sent, &names);
        assert_eq!(
            c,
            "dir=a-to-b decision=sent pipe=egress flow=3 queue_delay_ns=1500"
        );
        let drop = Record {
            event: Event::Dropped {
                reason: "flow_limit",
            },
            egress: 0,
            ..r
        };
        comment(&mut c, &drop, &names);
        assert_eq!(c, "dir=b-to-a decision=dropped reason=flow_limit");
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0u64, 7, 10, 1234, u64::MAX] {
            let mut s = String::from("x=");
            push_u64(&mut s, n);
            assert_eq!(s, format!("x={n}"));
        }
    }

    #[test]
    fn a_second_capture_is_refused_while_one_is_pending() {
        let tap = Tap::new(1);
        let job = Job {
            path: "/tmp/x.pcapng".into(),
            duration: None,
        };
        tap.start(job.clone()).expect("first");
        assert!(tap.start(job).is_err());
    }
}
