//! The live web view: `xdpsched --web ADDR` and `xdpgen --web ADDR` serve
//! one self-contained page (HTML, CSS and JavaScript embedded in the binary:
//! no CDN, works offline) that draws per-flow rates over a moving window,
//! one line per flow with a legend, and the fairness figures — the picture
//! the classic tc + iperf3 lab builds with a bokeh server, live.
//!
//! The producer (xdpsched's control thread, xdpgen's interval loop) calls
//! [`Live::publish`] several times a second; each page holds a server-sent
//! events stream (`/events`) that gets every snapshot as one JSON line.
//! A page that connects first gets the last minute of snapshots (the
//! server keeps them), so it opens on the picture so far, not on an empty
//! chart. `/data` answers the latest snapshot (scripts, tests). A thread accepts
//! connections and one thread serves each (at most [`MAX_CLIENTS`]); the
//! producer only swaps a string and wakes them, so a slow or stuck browser
//! never slows it.

#![forbid(unsafe_code)]

use serde::Serialize;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// The page.
pub const PAGE: &str = include_str!("page.html");
/// Pages served at once; more get a 503.
pub const MAX_CLIENTS: usize = 16;
/// A stream with nothing new sends a comment this often (keeps proxies and
/// the browser's reconnect logic quiet).
const KEEPALIVE: Duration = Duration::from_secs(2);
/// Seconds of snapshots kept for pages that connect later (the page's window
/// is 60 s), and at most this many of them.
const HISTORY_S: f64 = 62.0;
const HISTORY_MAX: usize = 1000;

/// One flow's rate now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowRate {
    /// Its name in the legend (stable across snapshots: it keys the line).
    pub name: String,
    /// Bits per second over the producer's last interval.
    pub bps: f64,
}

/// How fair the rates are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fairness {
    /// Jain's index of the rates (1: equal).
    pub jain: f64,
    /// Largest relative error of a flow's share against its reference share
    /// (0.02: 2 %).
    pub max_error: f64,
    /// The reference: "equal shares", "weighted shares", ...
    pub reference: String,
}

/// What a page shows at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The page's title (what runs).
    pub title: String,
    /// Seconds since the producer started.
    pub t: f64,
    /// Per flow.
    pub flows: Vec<FlowRate>,
    /// Over the flows (None: fewer than two).
    pub fairness: Option<Fairness>,
}

/// Jain's fairness index of `x`: (Σx)² / (n·Σx²); 1 when all are equal.
pub fn jain(x: &[f64]) -> f64 {
    let s: f64 = x.iter().sum();
    let q: f64 = x.iter().map(|v| v * v).sum();
    if x.is_empty() || q == 0.0 {
        return 1.0;
    }
    s * s / (x.len() as f64 * q)
}

/// The largest relative error of each rate's share of the total against
/// its weight's share of the weights: max |r/Σr − w/Σw| / (w/Σw).
pub fn max_share_error(rates: &[f64], weights: &[f64]) -> f64 {
    let (sr, sw): (f64, f64) = (rates.iter().sum(), weights.iter().sum());
    if sr <= 0.0 || sw <= 0.0 {
        return 0.0;
    }
    rates
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(r, w)| ((r / sr) - (w / sw)).abs() / (w / sw))
        .fold(0.0, f64::max)
}

#[derive(Default)]
struct Latest {
    gen: u64,
    json: String,
    /// The last `HISTORY_S` seconds: (t, JSON), oldest first.
    history: std::collections::VecDeque<(f64, String)>,
}

struct Shared {
    latest: Mutex<Latest>,
    changed: Condvar,
    clients: AtomicUsize,
}

/// A running web view.
pub struct Live {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("addr", &self.addr).finish()
    }
}

impl Live {
    /// Listens on `addr` and serves the page from a thread of its own.
    pub fn serve(addr: SocketAddr) -> std::io::Result<Live> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            latest: Mutex::new(Latest::default()),
            changed: Condvar::new(),
            clients: AtomicUsize::new(0),
        });
        let sh = shared.clone();
        std::thread::Builder::new()
            .name("web".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    let Ok(stream) = conn else {
                        // Out of file descriptors and the like: not a spin.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    if sh.clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                        sh.clients.fetch_sub(1, Ordering::AcqRel);
                        let _ =
                            respond(&stream, "503 Service Unavailable", "text/plain", b"busy\n");
                        continue;
                    }
                    let mine = sh.clone();
                    let spawned =
                        std::thread::Builder::new()
                            .name("web-client".into())
                            .spawn(move || {
                                // A client that goes away is its own problem.
                                let _ = handle(stream, &mine);
                                mine.clients.fetch_sub(1, Ordering::AcqRel);
                            });
                    if spawned.is_err() {
                        sh.clients.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })?;
        Ok(Live { shared, addr })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Pages connected now.
    pub fn clients(&self) -> usize {
        self.shared.clients.load(Ordering::Acquire)
    }

    /// Hands `s` to every page (and to `/data`).
    pub fn publish(&self, s: &Snapshot) {
        let json = serde_json::to_string(s).unwrap_or_default();
        if let Ok(mut l) = self.shared.latest.lock() {
            l.gen += 1;
            while l.history.front().is_some_and(|(t, _)| *t < s.t - HISTORY_S)
                || l.history.len() >= HISTORY_MAX
            {
                l.history.pop_front();
            }
            l.history.push_back((s.t, json.clone()));
            l.json = json;
        }
        self.shared.changed.notify_all();
    }
}

fn respond(mut s: &TcpStream, status: &str, kind: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)
}

/// Reads an HTTP request's head from `stream` (2 s timeouts set on it):
/// whether it is a GET, and its path without the query. Shared with
/// xdpsched's `/metrics`.
pub fn read_request(stream: &TcpStream) -> std::io::Result<(bool, String)> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut r = BufReader::new(stream);
    let mut first = String::new();
    r.read_line(&mut first)?;
    // The rest of the head, up to the blank line.
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l.trim().is_empty() {
            break;
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    Ok((first.starts_with("GET "), path.to_owned()))
}

fn handle(stream: TcpStream, sh: &Shared) -> std::io::Result<()> {
    let (get, path) = read_request(&stream)?;
    match (get, path.as_str()) {
        (true, "/" | "/index.html") => respond(
            &stream,
            "200 OK",
            "text/html; charset=utf-8",
            PAGE.as_bytes(),
        ),
        (true, "/data") => {
            let json = sh.latest.lock().map(|l| l.json.clone()).unwrap_or_default();
            let body = if json.is_empty() {
                "null".to_owned()
            } else {
                json
            };
            respond(&stream, "200 OK", "application/json", body.as_bytes())
        }
        (true, "/events") => events(&stream, sh),
        (true, _) => respond(
            &stream,
            "404 Not Found",
            "text/plain",
            b"try /, /data or /events\n",
        ),
        (false, _) => respond(
            &stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
        ),
    }
}

/// Server-sent events: every snapshot as it is published.
fn events(mut s: &TcpStream, sh: &Shared) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\nretry: 1000\n\n"
    )?;
    // The picture so far, then every new snapshot.
    let (past, mut seen) = match sh.latest.lock() {
        Ok(l) => (
            l.history.iter().map(|(_, j)| j.clone()).collect::<Vec<_>>(),
            l.gen,
        ),
        Err(_) => return Ok(()),
    };
    // Each event in one write (no small segments).
    let mut out = String::new();
    for json in past {
        out.push_str("data: ");
        out.push_str(&json);
        out.push_str("\n\n");
    }
    s.write_all(out.as_bytes())?;
    loop {
        let next = {
            let Ok(l) = sh.latest.lock() else {
                return Ok(());
            };
            let (l, _) = sh
                .changed
                .wait_timeout_while(l, KEEPALIVE, |l| l.gen == seen)
                .map_err(|_| std::io::Error::other("poisoned"))?;
            (l.gen != seen).then(|| {
                seen = l.gen;
                l.json.clone()
            })
        };
        let event = match next {
            Some(json) => format!("data: {json}\n\n"),
            None => ": keepalive\n\n".to_owned(),
        };
        s.write_all(event.as_bytes())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn fairness_figures() {
        assert!((jain(&[1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!(max_share_error(&[1.0, 2.0], &[1.0, 2.0]) < 1e-12);
        // Shares 0.5/0.5 against 1/3, 2/3: the first is 50 % over.
        assert!((max_share_error(&[1.0, 1.0], &[1.0, 2.0]) - 0.5).abs() < 1e-12);
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn serves_the_page_the_data_and_the_stream() {
        let live = Live::serve("127.0.0.1:0".parse().expect("addr")).expect("serve");
        let page = get(live.addr(), "/");
        assert!(
            page.starts_with("HTTP/1.1 200 OK") && page.contains("<canvas"),
            "{page}"
        );
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "the page loads nothing from elsewhere"
        );
        assert!(get(live.addr(), "/data").ends_with("null"));
        assert!(get(live.addr(), "/nope").starts_with("HTTP/1.1 404"));
        // A stream gets what is published after it connects.
        let mut s = TcpStream::connect(live.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(s, "GET /events HTTP/1.1\r\n\r\n").expect("write");
        std::thread::sleep(Duration::from_millis(100));
        let snap = Snapshot {
            title: "t".into(),
            t: 1.5,
            flows: vec![FlowRate {
                name: "flow 1".into(),
                bps: 1e6,
            }],
            fairness: None,
        };
        live.publish(&snap);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\"flow 1\"") {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "stream ended");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("text/event-stream") && text.contains("data: {"),
            "{text}"
        );
        assert!(get(live.addr(), "/data").contains("\"bps\":1000000.0"));
        assert!(live.clients() >= 1);
        // A page that connects later gets the last minute first: snapshots
        // older than that are gone.
        for t in [10.0, 80.0, 81.0] {
            live.publish(&Snapshot { t, ..snap.clone() });
        }
        let mut late = TcpStream::connect(live.addr()).expect("connect");
        late.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(late, "GET /events HTTP/1.1\r\n\r\n").expect("write");
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("\"t\":81.0") {
            let n = late.read(&mut buf).expect("read");
            assert!(n > 0, "stream ended");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("\"t\":80.0") && text.contains("\"t\":81.0"),
            "{text}"
        );
        assert!(
            !text.contains("\"t\":1.5") && !text.contains("\"t\":10.0"),
            "{text}"
        );
    }
}
