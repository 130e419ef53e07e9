//! The control socket: a running xdpsched answers `xdpsched show` on a unix
//! socket per port (root only), and a second xdpsched on the same port finds
//! it there and is refused.
//!
//! The thread that started the workers serves it between its looks at the
//! stop flag. Figures the workers own (pipes, flowsets, flows) are built by
//! the workers themselves when asked, never on the packet path and never
//! waiting for a lock (see `Worker::serve_show`); the port counters are the
//! workers' live atomics.

use crate::config::RunConfig;
use crate::lane::Shared;
use crate::stats::{sum, FlowReport, FlowShow, LaneShow, PipeReport, PipeShow, PortShow, Show};
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use xsk::SocketStats;

/// Where the control sockets live (root only).
pub const SOCKET_DIR: &str = "/run/xdpsched";
/// How long the server waits for the workers' figures.
const WORKERS_WAIT: Duration = Duration::from_millis(500);
/// Without an answer in the last this long, a rate is measured over a
/// fresh `RATE_WINDOW` instead.
const RATE_MEMORY: Duration = Duration::from_secs(10);
/// The window of a fresh rate measurement.
const RATE_WINDOW: Duration = Duration::from_millis(300);
/// A client's reads and writes give up after this long.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reload waits for the workers to take the new configuration.
const RELOAD_WAIT: Duration = Duration::from_secs(2);
/// A client waits this long for a reload's answer.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket of the instance on `iface` in this network namespace:
/// `/run/xdpsched/<iface>.<namespace inode>.sock` (the same interface name
/// can exist in several namespaces).
pub fn socket_path(iface: &str) -> PathBuf {
    let ns = std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino());
    PathBuf::from(SOCKET_DIR).join(format!("{iface}.{ns}.sock"))
}

/// One request and its answer, a JSON line each way.
pub fn request(path: &Path, cmd: &str) -> std::io::Result<serde_json::Value> {
    request_with(path, &serde_json::json!({ "cmd": cmd }), IO_TIMEOUT)
}

/// One request (`{"cmd": ..., ...}`) and its answer, waiting at most `wait`.
pub fn request_with(
    path: &Path,
    req: &serde_json::Value,
    wait: Duration,
) -> std::io::Result<serde_json::Value> {
    let mut s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(wait))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    writeln!(s, "{req}")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The listening sockets of a running instance (removed when dropped).
#[derive(Debug)]
pub struct Control {
    listeners: Vec<(PathBuf, UnixListener)>,
    /// `--metrics`: the HTTP listener `/metrics` is served on.
    http: Option<TcpListener>,
    ifaces: Vec<String>,
    started: Instant,
    /// The bytes of every pipe and flow at the last answer, for rates.
    last: Option<(Instant, HashMap<String, u64>)>,
    /// The configuration file a reload without a file re-reads.
    pub config: Option<PathBuf>,
    /// Reloads applied.
    pub reloads: u64,
    /// The run's seed (a reload's configuration may set its own).
    pub seed: u64,
    /// Set by SIGHUP: reload the configuration file.
    pub hup: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Per port: its XDP attach mode and whether its sockets are zero copy.
    pub modes: Vec<(&'static str, bool)>,
    /// `--web`: the live page and what its rates are measured from.
    pub web: Option<Web>,
}

/// How often the live page gets a snapshot.
const WEB_EVERY: Duration = Duration::from_millis(250);

/// The live page (`--web`): every `WEB_EVERY`, the flows' rates (what
/// their queues sent on to the link since the last snapshot) and fairness.
#[derive(Debug)]
pub struct Web {
    live: live::Live,
    title: String,
    started: Instant,
    /// When the last snapshot was made, and each flow's (sent bytes, when
    /// its worker read them).
    last: Option<(Instant, Readings)>,
}

/// Per flow: (bytes sent, when its worker read them).
type Readings = HashMap<String, (u64, u64)>;

impl Web {
    pub fn new(live: live::Live, ports: String) -> Web {
        Web {
            live,
            title: format!("xdpsched {ports}: per-flow rates"),
            started: Instant::now(),
            last: None,
        }
    }

    /// Four times a second while a page is open; once a second otherwise
    /// (the last minute is kept for a page that opens later).
    fn due(&self) -> bool {
        let every = if self.live.clients() > 0 {
            WEB_EVERY
        } else {
            WEB_EVERY * 4
        };
        self.last.as_ref().is_none_or(|(t, _)| t.elapsed() >= every)
    }

    /// A snapshot from the workers' figures `now`.
    fn publish(&mut self, now: &LaneShow) {
        let t = Instant::now();
        let mut sent: Readings = now
            .flows
            .iter()
            .map(|f| (flow_key(f), (f.sent_bytes, f.at_ns)))
            .collect();
        let mut flows = Vec::new();
        let (mut rates, mut weights) = (Vec::new(), Vec::new());
        if let Some((_, before)) = &self.last {
            for f in &now.flows {
                let k = flow_key(f);
                // A flow seen for the first time has no rate yet.
                let Some(&(b, at)) = before.get(&k) else {
                    continue;
                };
                // Figures a worker did not renew (it did not answer in
                // time): keep the older reading as the baseline.
                if f.at_ns <= at {
                    sent.insert(k, (b, at));
                    continue;
                }
                let dt = (f.at_ns - at) as f64 / 1e9;
                let bps = f.sent_bytes.saturating_sub(b) as f64 * 8.0 / dt;
                // Competing flows: those with packets waiting for their turn.
                if f.backlog_packets > 0 {
                    rates.push(bps);
                    weights.push(f64::from(f.weight.max(1)));
                }
                // A flowset without a mask has one flow: its name says it.
                let name = if f.key == "proto0 [::]:0 > [::]:0" {
                    format!("{} ({})", f.flowset, f.dir)
                } else {
                    format!("{} ({}, {})", f.key, f.flowset, f.dir)
                };
                flows.push(live::FlowRate { name, bps });
            }
        }
        let weighted = weights.windows(2).any(|w| w[0] != w[1]);
        // Jain's index of the rates per unit of weight (1: every flow got
        // its weighted share).
        let normalized: Vec<f64> = rates.iter().zip(&weights).map(|(r, w)| r / w).collect();
        let fairness = (rates.len() >= 2).then(|| live::Fairness {
            jain: live::jain(&normalized),
            max_error: live::max_share_error(&rates, &weights),
            reference: if weighted {
                "weighted shares (backlogged flows)".into()
            } else {
                "equal shares (backlogged flows)".into()
            },
        });
        self.live.publish(&live::Snapshot {
            title: self.title.clone(),
            t: self.started.elapsed().as_secs_f64(),
            flows,
            fairness,
        });
        self.last = Some((t, sent));
    }
}

impl Control {
    /// Listens on the sockets of `ifaces`; refuses to start if an xdpsched
    /// answers on one of them (a stale socket is removed).
    pub fn bind(ifaces: &[String], metrics: Option<SocketAddr>) -> anyhow::Result<Control> {
        std::fs::create_dir_all(SOCKET_DIR).with_context(|| format!("creating {SOCKET_DIR}"))?;
        std::fs::set_permissions(SOCKET_DIR, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {SOCKET_DIR} to root"))?;
        let mut listeners = Vec::new();
        for iface in ifaces {
            let path = socket_path(iface);
            if path.exists() {
                match request(&path, "ping") {
                    Ok(v) => bail!(
                        "another xdpsched (pid {}) already runs on {iface} in this network namespace (its control socket: {}); stop it first",
                        v["pid"],
                        path.display()
                    ),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        // Left by a killed instance.
                        std::fs::remove_file(&path)
                            .with_context(|| format!("removing the stale {}", path.display()))?;
                    }
                    Err(e) => bail!(
                        "{iface}: {} exists and does not answer ({e}): another xdpsched may be starting or stuck there",
                        path.display()
                    ),
                }
            }
            let l = UnixListener::bind(&path)
                .with_context(|| format!("listening on {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to root", path.display()))?;
            l.set_nonblocking(true)
                .with_context(|| format!("{}: non-blocking", path.display()))?;
            listeners.push((path, l));
        }
        let http = match metrics {
            Some(addr) => {
                let l = TcpListener::bind(addr).with_context(|| {
                    format!("--metrics {addr}: listening (is the address on an interface of this network namespace, and the port free?)")
                })?;
                l.set_nonblocking(true)
                    .with_context(|| format!("--metrics {addr}: non-blocking"))?;
                Some(l)
            }
            None => None,
        };
        Ok(Control {
            listeners,
            http,
            ifaces: ifaces.to_vec(),
            started: Instant::now(),
            last: None,
            config: None,
            reloads: 0,
            seed: 0,
            hup: None,
            modes: Vec::new(),
            web: None,
        })
    }

    /// The ports it answers for.
    pub fn ifaces(&self) -> &[String] {
        &self.ifaces
    }

    /// Reloads if SIGHUP came, and answers whoever connected since the last
    /// call (never blocks when nobody did). `program`: the XDP programs'
    /// counters.
    pub(crate) fn serve(
        &mut self,
        sh: &Shared,
        cfg: &RunConfig,
        program: &impl Fn() -> (u64, u64),
    ) {
        if self
            .hup
            .as_ref()
            .is_some_and(|h| h.swap(false, Ordering::Relaxed))
        {
            match self.reload(sh, cfg, None) {
                Ok(r) => tracing::info!("SIGHUP: reloaded {}: {}", r["file"], r["directions"]),
                Err(e) => {
                    tracing::error!("SIGHUP: {e:#}")
                }
            }
        }
        let mut conns = Vec::new();
        for (_, l) in &self.listeners {
            while let Ok((s, _)) = l.accept() {
                conns.push(s);
            }
        }
        for s in conns {
            // A client that goes away mid-answer is its own problem.
            let _ = self.answer(s, sh, cfg, program);
        }
        if self.web.as_ref().is_some_and(Web::due) {
            // A worker that did not answer in time: no snapshot this round
            // (its flows would read as gone).
            let (now, complete) = collect(sh);
            if let Some(w) = self.web.as_mut() {
                if complete {
                    w.publish(&now);
                }
            }
        }
        let mut scrapes = Vec::new();
        if let Some(l) = &self.http {
            while let Ok((s, _)) = l.accept() {
                scrapes.push(s);
            }
        }
        for s in scrapes {
            let _ = self.scrape(s, sh, program);
        }
    }

    /// One HTTP request: `GET /metrics` gets the exposition, anything else
    /// a 404.
    fn scrape(
        &mut self,
        s: TcpStream,
        sh: &Shared,
        program: &impl Fn() -> (u64, u64),
    ) -> std::io::Result<()> {
        s.set_nonblocking(false)?;
        let (get, path) = live::read_request(&s)?;
        let (status, kind, body) = if get && path == "/metrics" {
            let figures = self.show(sh, program, false);
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                crate::metrics::render(&figures),
            )
        } else {
            ("404 Not Found", "text/plain", "try /metrics\n".to_owned())
        };
        let mut w = &s;
        write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn answer(
        &mut self,
        s: UnixStream,
        sh: &Shared,
        cfg: &RunConfig,
        program: &impl Fn() -> (u64, u64),
    ) -> std::io::Result<()> {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line)?;
        let req = serde_json::from_str::<serde_json::Value>(&line).unwrap_or_default();
        let cmd = req["cmd"].as_str().unwrap_or_default();
        let reply = match cmd {
            "ping" => serde_json::json!({ "pid": std::process::id(), "ifaces": self.ifaces }),
            "show" => serde_json::to_value(self.show(sh, program, true))
                .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() })),
            "reload" => {
                let file = req["file"].as_str().map(PathBuf::from);
                match self.reload(sh, cfg, file) {
                    Ok(r) => {
                        tracing::info!("reloaded {}: {}", r["file"], r["directions"]);
                        r
                    }
                    Err(e) => {
                        tracing::error!("{e:#}");
                        serde_json::json!({ "error": format!("{e:#}") })
                    }
                }
            }
            "capture" => {
                let file = req["file"].as_str().map(PathBuf::from);
                let secs = req["seconds"]
                    .as_f64()
                    .filter(|s| *s > 0.0 && *s <= 86_400.0);
                match (file, secs) {
                    (Some(path), Some(secs)) => match sh.tap.start(crate::capture::Job {
                        path: path.clone(),
                        duration: Some(Duration::from_secs_f64(secs)),
                    }) {
                        Ok(()) => {
                            serde_json::json!({ "file": path.display().to_string(), "seconds": secs })
                        }
                        Err(e) => serde_json::json!({ "error": format!("{e:#}") }),
                    },
                    _ => {
                        serde_json::json!({ "error": "capture needs a file and 0 < seconds <= 86400" })
                    }
                }
            }
            "capture-status" => {
                // A capture asked for and not yet started counts as active.
                let pending = sh.tap.job.lock().map(|j| j.is_some()).unwrap_or(false);
                match sh.tap.status.lock() {
                    Ok(s) => {
                        let mut v = serde_json::to_value(&*s).unwrap_or_default();
                        if pending {
                            v["active"] = true.into();
                        }
                        v
                    }
                    Err(_) => serde_json::json!({ "error": "the capture thread failed" }),
                }
            }
            other => serde_json::json!({
                "error": format!("unknown command {other:?} (ping, show, reload, capture, capture-status)")
            }),
        };
        let mut w = &s;
        writeln!(w, "{reply}")
    }

    /// A reload's checks, off the packet path: the file read and validated,
    /// the new directions built, the UMEM budget checked (warnings logged
    /// and returned).
    fn prepare(
        &self,
        sh: &Shared,
        cfg: &RunConfig,
        file: Option<PathBuf>,
        seed: u64,
    ) -> anyhow::Result<(PathBuf, [Option<crate::direction::Sched>; 2], Vec<String>)> {
        let Some(path) = file.or_else(|| self.config.clone()) else {
            bail!("this instance was started without --config (from the simple flags): name a file to reload");
        };
        let emulator = crate::cli::load_config(&path)?;
        let bridge = sh.plan.bridge;
        if !bridge && emulator.only_b_to_a() {
            bail!("{}: a rule or default for b-to-a only, but this instance reflects (no --out): it has only a-to-b", path.display());
        }
        let base = emulator.seed.unwrap_or(self.seed);
        let scheds = crate::direction::directions(&emulator, bridge, base, seed)
            .with_context(|| path.display().to_string())?;
        let dirs: Vec<(sched::config::Direction, &sched::config::Config)> = scheds
            .iter()
            .flatten()
            .map(|sc| (sc.dir, &sc.cfg))
            .collect();
        let warnings = crate::budget::check_frames(cfg, &sh.plan, &dirs)
            .with_context(|| path.display().to_string())?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok((path, scheds, warnings))
    }

    /// Re-reads the configuration (`file`, or the one it runs with) and, if
    /// it is valid for this instance, hands each worker the new directions
    /// for the egress ports it owns and waits for them to take over (see
    /// `Worker::serve_reload`). An invalid file changes nothing. Returns
    /// what each direction did with the packets it held.
    pub(crate) fn reload(
        &mut self,
        sh: &Shared,
        cfg: &RunConfig,
        file: Option<PathBuf>,
    ) -> anyhow::Result<serde_json::Value> {
        // A new seed per reload: loss patterns do not replay.
        let gen = sh.reload_req.load(Ordering::Relaxed) + 1;
        let (path, mut scheds, warnings) = self
            .prepare(sh, cfg, file, gen)
            .context("reload refused, the running configuration kept")?;
        let bridge = sh.plan.bridge;
        // A capture names the new pipes from now on (records of packets
        // that left just before may get the new names: they are few).
        crate::capture::set_names(&sh.tap, &scheds, bridge);
        // Every egress side gets its new direction (or none), on its owner.
        let sides = if bridge { 2 } else { 1 };
        let mut owners = Vec::new();
        for (e, sc) in scheds.iter_mut().enumerate().take(sides) {
            let o = sh.plan.owner(e);
            let Ok(mut slot) = sh.reload[o].lock() else {
                bail!("a worker failed");
            };
            if slot.gen != gen {
                slot.gen = gen;
                slot.new = [None, None];
            }
            slot.new[e] = Some(sc.take());
            if !owners.contains(&o) {
                owners.push(o);
            }
        }
        sh.reload_req.store(gen, Ordering::Release);
        for w in &sh.wake {
            w.nudge();
        }
        let t0 = Instant::now();
        let mut report = Vec::new();
        let mut pending = owners.clone();
        // Each worker that has carried it out: its report, and off the list.
        // At the end (`withdraw`), the others are withdrawn from it under the
        // lock: a worker takes all of its slot or nothing, and one that took
        // it meanwhile counts as done.
        let mut settle = |pending: &mut Vec<usize>, withdraw: bool| {
            pending.retain(|&o| match sh.reload[o].lock() {
                Ok(slot) if slot.done >= gen => {
                    report.extend(
                        slot.report
                            .iter()
                            .map(|&(e, t)| takeover_json(e, bridge, &t)),
                    );
                    false
                }
                Ok(mut slot) if withdraw => {
                    slot.gen = 0;
                    slot.new = [None, None];
                    true
                }
                _ => true,
            });
        };
        while !pending.is_empty() && t0.elapsed() < RELOAD_WAIT {
            settle(&mut pending, false);
            std::thread::sleep(Duration::from_millis(1));
        }
        settle(&mut pending, true);
        if !pending.is_empty() {
            if report.is_empty() {
                bail!(
                    "reload refused, the running configuration kept: {} worker(s) did not take the new configuration within {RELOAD_WAIT:?}",
                    pending.len()
                );
            }
            // Some directions run the new configuration: it is the one a
            // reload without a file re-reads now.
            self.config = Some(path.clone());
            self.reloads += 1;
            bail!(
                "reload incomplete: {} worker(s) did not take the new configuration within {RELOAD_WAIT:?}; applied on the others: {} (reload again to apply it everywhere)",
                pending.len(),
                serde_json::Value::from(report)
            );
        }
        self.config = Some(path.clone());
        self.reloads += 1;
        Ok(serde_json::json!({
            "file": path.display().to_string(),
            "directions": report,
            "warnings": warnings,
        }))
    }

    /// The figures now, with rates since the last answer (or, if `fresh`,
    /// over a fresh window if there was none lately; else no rates).
    fn show(&mut self, sh: &Shared, program: &impl Fn() -> (u64, u64), fresh: bool) -> Show {
        let recent = self.last.take().filter(|(t, _)| t.elapsed() <= RATE_MEMORY);
        // `before`: the bytes the rates are measured from (None: no rates,
        // reported as 0 over a 0 s window).
        let (before, since) = match recent {
            Some((t, bytes)) => (Some(bytes), t),
            None if !fresh => (None, Instant::now()),
            None => {
                let (first, _) = collect(sh);
                let t = Instant::now();
                std::thread::sleep(RATE_WINDOW);
                (Some(bytes_of(&first)), t)
            }
        };
        let (now, complete) = collect(sh);
        let t = Instant::now();
        let window = if before.is_some() {
            t.duration_since(since).as_secs_f64().max(1e-3)
        } else {
            0.0
        };
        let rate = |key: &str, bytes: u64| match &before {
            Some(b) => bytes.saturating_sub(b.get(key).copied().unwrap_or(0)) as f64 * 8.0 / window,
            None => 0.0,
        };
        let live = sum(&sh.live);
        let kernel = SocketStats::from_array(sum(&sh.kernel));
        let (to_socket, failed_open) = program();
        let show = Show {
            pid: std::process::id(),
            ports: self
                .ifaces
                .iter()
                .enumerate()
                .map(|(i, iface)| PortShow {
                    iface: iface.clone(),
                    side: if i == 0 { "a" } else { "b" },
                    rx: live[i],
                    tx: live[2 + i],
                    xdp_mode: self.modes.get(i).map_or("?", |m| m.0),
                    bind: match self.modes.get(i) {
                        Some((_, true)) => "zerocopy",
                        Some((_, false)) => "copy",
                        None => "?",
                    },
                })
                .collect(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            dropped: live[4],
            passed: live[5],
            lost_before_rx: kernel.lost_before_rx(),
            kernel,
            xdp_to_socket: to_socket,
            xdp_failed_open: failed_open,
            rate_window_s: window,
            complete,
            pipes: now
                .pipes
                .iter()
                .map(|p| PipeShow {
                    rate_bps: rate(&pipe_key(p), p.delivered_bytes),
                    report: p.clone(),
                })
                .collect(),
            flowsets: now.flowsets.clone(),
            flows: now
                .flows
                .iter()
                .map(|f| FlowShow {
                    rate_bps: rate(&flow_key(f), f.bytes),
                    report: f.clone(),
                })
                .collect(),
            workers: {
                let mut w = now.workers.clone();
                w.sort_by_key(|w| w.worker);
                w
            },
            config: self.config.as_ref().map(|p| p.display().to_string()),
            reloads: self.reloads,
            seed: self.seed,
        };
        self.last = Some((t, bytes_of(&now)));
        show
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        for (path, _) in &self.listeners {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What a reload did on egress side `e`, for the caller.
fn takeover_json(e: usize, bridge: bool, t: &sched::emu::Takeover) -> serde_json::Value {
    let dir = match (bridge, e) {
        (true, 0) => "b-to-a",
        _ => "a-to-b",
    };
    serde_json::json!({
        "dir": dir,
        "pipes_kept": t.pipes_kept,
        "pipes_removed": t.pipes_removed,
        "flowsets_kept": t.flowsets_kept,
        "flowsets_removed": t.flowsets_removed,
        "flows_kept": t.flows_kept,
        "requeued": t.requeued,
        "reclassified": t.reclassified,
        "in_flight_kept": t.in_flight_kept,
        "released": t.released,
        "dropped": t.dropped,
    })
}

fn pipe_key(p: &PipeReport) -> String {
    format!("pipe/{}/{}", p.dir, p.name)
}

fn flow_key(f: &FlowReport) -> String {
    format!("flow/{}/{}/{}", f.dir, f.flowset, f.key)
}

fn bytes_of(s: &LaneShow) -> HashMap<String, u64> {
    s.pipes
        .iter()
        .map(|p| (pipe_key(p), p.delivered_bytes))
        .chain(s.flows.iter().map(|f| (flow_key(f), f.bytes)))
        .collect()
}

/// Asks every worker for its figures and gathers them (waiting at most
/// `WORKERS_WAIT`); whether all answered.
fn collect(sh: &Shared) -> (LaneShow, bool) {
    let gen = sh.show_req.fetch_add(1, Ordering::Relaxed) + 1;
    for w in &sh.wake {
        w.nudge();
    }
    let t0 = Instant::now();
    let mut out = LaneShow::default();
    let mut done = vec![false; sh.show.len()];
    while t0.elapsed() < WORKERS_WAIT && done.iter().any(|d| !d) {
        for (i, slot) in sh.show.iter().enumerate() {
            if done[i] {
                continue;
            }
            let Ok(s) = slot.lock() else {
                done[i] = true;
                continue;
            };
            if s.gen >= gen {
                out.pipes.extend_from_slice(&s.pipes);
                out.flowsets.extend_from_slice(&s.flowsets);
                out.flows.extend_from_slice(&s.flows);
                out.workers.extend_from_slice(&s.workers);
                done[i] = true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let complete = done.iter().all(|&d| d);
    // A worker that did not answer in time: its figures of an earlier request.
    for (i, slot) in sh.show.iter().enumerate() {
        if let (false, Ok(s)) = (done[i], slot.lock()) {
            out.pipes.extend_from_slice(&s.pipes);
            out.flowsets.extend_from_slice(&s.flowsets);
            out.flows.extend_from_slice(&s.flows);
            out.workers.extend_from_slice(&s.workers);
        }
    }
    (out, complete)
}
