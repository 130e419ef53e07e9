//! Command line → [`RunConfig`], validated once with messages that name the
//! bad value.

use crate::config::RunConfig;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sched::classify::FlowMask;
use sched::config::{
    Config, DefaultAction, Dir, FlowsetSpec, Match, PipeSpec, QueueSpec, RuleSpec,
};
use sched::Kind;
use std::time::Duration;
use xsk::{XdpMode, XskParams};

/// xdpsched: schedule traffic between AF_XDP ports.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// `cleanup`: remove what a crashed xdpsched left on interfaces.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Port to serve (port A). Alone: reflect mode (MAC swap, out the same port).
    #[arg(long)]
    pub iface: Option<String>,
    /// Second port (port B): inline bridge; A→B is scheduled, B→A forwarded
    /// (or scheduled too: --reverse-*, or rules with dir = "b-to-a").
    #[arg(long)]
    pub out: Option<String>,
    /// Scheduler for the simple form (A→B): fifo, prio, drr, wf2q, qfq,
    /// fq_codel (Linux's defaults: CoDel on each flow, 10240 packets in all,
    /// longest-queue-drop; use with --rate).
    #[arg(long, default_value = "fifo")]
    pub sched: String,
    /// Egress rate for the simple form, A→B (e.g. 100mbit, 1Gbit/s); absent:
    /// as fast as the port takes it.
    #[arg(long)]
    pub rate: Option<String>,
    /// Propagation delay for the simple form, A→B (e.g. 40ms; a bare number
    /// is milliseconds).
    #[arg(long)]
    pub delay: Option<String>,
    /// Schedule B→A too (simple form), with this scheduler. Any --reverse-*
    /// flag schedules B→A; the others default as for A→B.
    #[arg(long)]
    pub reverse_sched: Option<String>,
    /// Rate of B→A (simple form), e.g. 2mbit for an asymmetric access line.
    #[arg(long)]
    pub reverse_rate: Option<String>,
    /// Propagation delay of B→A (simple form).
    #[arg(long)]
    pub reverse_delay: Option<String>,
    /// Per-flow queue limit for the simple form: packets ("100") or bytes
    /// with a unit ("150KB"). The default is the kernel fq's flow_limit
    /// (100), or fq_codel's limit (10240) with --sched fq_codel.
    #[arg(long)]
    pub flow_queue: Option<String>,
    /// Queue management of every flow queue in the simple form: none or
    /// codel (the default with --sched fq_codel).
    #[arg(long)]
    pub aqm: Option<String>,
    /// CoDel's target, the standing delay it accepts (simple form; default 5ms).
    #[arg(long)]
    pub target: Option<String>,
    /// CoDel's interval (simple form; default 100ms).
    #[arg(long)]
    pub interval: Option<String>,
    /// CoDel marks ECN-capable packets CE instead of dropping them: on
    /// (default) or off.
    #[arg(long)]
    pub ecn: Option<String>,
    /// Packets queued at most over all flows of a direction (simple form;
    /// default what the flows can hold, at most 65536; 10240 for fq_codel).
    #[arg(long)]
    pub limit: Option<u32>,
    /// At --limit: tail (drop the arrival) or longest (push out a packet of
    /// the flow with the most queued; the default for fq_codel).
    #[arg(long)]
    pub overflow: Option<String>,
    /// Full pipe/flowset/rule configuration (TOML); replaces the simple form's
    /// --sched/--rate/--delay/--flow-queue and --reverse-*.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// What the ports do if xdpsched dies (kill -9, crash): auto (bridge for
    /// a bridge, stack for a reflector), bridge (a kernel bridge of the two
    /// ports that xdpsched sets up, works on any ports), redirect (XDP
    /// port-to-port; into a veth only if its peer has GRO on), stack (the
    /// port's kernel stack), closed (dropped).
    #[arg(long, default_value = "auto")]
    pub fail_open: String,
    /// XDP attach mode: auto, native, skb.
    #[arg(long, default_value = "auto")]
    pub xdp_mode: String,
    /// AF_XDP sockets: auto (zero copy where the driver offers it, else
    /// copy), copy, or zerocopy (an error where the driver cannot). The mode
    /// each port got is logged at start and shown by `show` and /metrics.
    #[arg(long, default_value = "auto")]
    pub bind: String,
    /// Frames whose TCP/UDP checksum the sender left to the device (a
    /// local stack offloading it through a veth or tap: the field holds
    /// only the pseudo-header sum): fix (complete them as a NIC would;
    /// full checksums, right or wrong, are left alone), keep (forward as
    /// they are), auto (fix on virtual ports, which have local senders;
    /// keep on physical NICs, whose frames come from a wire).
    #[arg(long, default_value = "auto")]
    pub checksum: String,
    /// The seed of every random process (loss, jitter, duplicates, rules'
    /// prob, ...), overriding the configuration's `seed`: the same seed
    /// replays the same draws. Default: the configuration's, else drawn at
    /// start (logged, and shown by `show` and --stats-json). A reloaded
    /// file with a `seed` of its own uses it; one without, this.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Write every frame that leaves and every frame dropped to this pcapng
    /// file, each with a comment saying what the scheduler did (direction;
    /// sent by which pipe and flow after how long, passed, or dropped and
    /// why). Frames a busy worker has no room to record are counted, never
    /// waited for.
    #[arg(long)]
    pub capture: Option<std::path::PathBuf>,
    /// UMEM frame size in bytes (2048 or 4096).
    #[arg(long, default_value_t = 2048)]
    pub frame_size: u32,
    /// UMEM frames (shared by the ports).
    #[arg(long, default_value_t = 8192)]
    pub frames: u32,
    /// Descriptors per AF_XDP ring (RX, fill, TX, completion), a power of
    /// two, at most --frames (default: a quarter of --frames, 64..4096). The
    /// RX ring is what holds arrivals while a worker is off the CPU.
    #[arg(long)]
    pub ring_size: Option<u32>,
    /// Frames per RX/TX batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Print a summary line this often, e.g. 1s (0: never).
    #[arg(long, default_value = "0")]
    pub stats_interval: String,
    /// Stop after this long, e.g. 10s (default: until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<String>,
    /// Cores to pin the workers to, DPDK style: "1", "1,3", "0-3"; one worker
    /// per core listed (at most one per RX socket). Default: one unpinned
    /// worker per RX socket.
    #[arg(long)]
    pub cores: Option<String>,
    /// Write the final counters as JSON to this file at exit.
    #[arg(long)]
    pub stats_json: Option<std::path::PathBuf>,
    /// Keep libbpf's and libxdp's own log lines.
    #[arg(long)]
    pub verbose: bool,
    /// RX queues to serve on each port (0..N, one AF_XDP socket each; the
    /// scheduled port has one scheduler, so fairness is global across queues).
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// Never sleep: poll the rings continuously, and busy-poll the devices'
    /// NAPI from the workers (SO_PREFER_BUSY_POLL; the kernel leaves NAPI to
    /// them between polls if the device has napi_defer_hard_irqs and
    /// gro_flush_timeout set). Lowest latency; holds a whole core per worker,
    /// which on a small machine starves everything else.
    #[arg(long)]
    pub busy_poll: bool,
    /// How far (percent of the gap) departures of a rate-limited pipe may
    /// land off their spacing before a worker spins to be on time. A worker
    /// sleeps until shortly before a departure, then spins for as long as
    /// its sleeps have lately ended late; where that lateness varies by less
    /// than this share of the gap between departures, it does not spin.
    /// Lower costs CPU (0: always spin); higher saves CPU at
    /// low rates, where a gap is long beside the timers' jitter.
    #[arg(long, default_value_t = 5.0)]
    pub pacing_tolerance: f64,
    /// Serve Prometheus/OpenMetrics figures at http://ADDR/metrics: a port
    /// ("9108": loopback) or an address and port ("10.0.0.1:9108"). Off by
    /// default.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Serve a live page at http://ADDR/: each flow's rate (what its queue
    /// sends on to the link) over the last minute, updated four times a
    /// second, with Jain's index and the error against the flowsets'
    /// weighted shares. A port ("5007": loopback) or an address and port.
    /// Off by default.
    #[arg(long)]
    pub web: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask the xdpsched running on a port (in this network namespace) for
    /// its figures: ports, pipes (rate, drops by reason), flowsets and the
    /// top flows of each (rate, backlog). Root only.
    Show {
        /// Only this part: ports, pipes, flowsets or flows.
        part: Option<String>,
        /// The port the instance runs on (its --iface or --out).
        #[arg(long)]
        iface: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply a new configuration to a running xdpsched, losing no packet.
    ///
    /// The instance on the port re-reads its configuration file (or FILE,
    /// which it then keeps) and applies it without losing a queued
    /// packet: flowsets and pipes kept by name keep their queues and links;
    /// packets of a flowset that is gone go where the new rules send them.
    /// An invalid file changes nothing and the error is printed. SIGHUP does
    /// the same with the file the instance runs with. Root only.
    Reload {
        /// The new configuration (default: the file it runs with).
        file: Option<std::path::PathBuf>,
        /// The port the instance runs on (its --iface or --out).
        #[arg(long)]
        iface: String,
        /// Print what happened as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash: `source <(xdpsched
    /// completions bash)`; zsh: into a directory of $fpath as `_xdpsched`;
    /// fish: into ~/.config/fish/completions/xdpsched.fish).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (xdpsched.1, xdpsched-show.1, ...) into DIR
    /// (scripts/man.sh builds them all).
    #[command(hide = true)]
    Man {
        /// Where to write them.
        dir: std::path::PathBuf,
    },
    /// Capture what a running xdpsched does for a while.
    ///
    /// The instance on the port writes every frame that leaves and every
    /// frame dropped to FILE (pcapng), each with a comment
    /// saying what the scheduler did (the duration: --duration); read it with Wireshark or
    /// `tshark -r FILE -T fields -e frame.comment`. Root only.
    Capture {
        /// The pcapng file to write (by the instance).
        file: std::path::PathBuf,
        /// The port the instance runs on (its --iface or --out).
        #[arg(long)]
        iface: String,
        /// How long.
        #[arg(long, default_value = "10s")]
        duration: String,
    },
    /// Detach XDP programs a killed xdpsched left on the interfaces.
    Cleanup {
        /// Interface to clean (repeatable).
        #[arg(long, required = true)]
        iface: Vec<String>,
    },
}

impl Cli {
    /// The simple form's queue flags, validated.
    fn queues(&self) -> anyhow::Result<Queues> {
        use sched::algo::aqm::{Aqm, CodelParams};
        let flow_queue = match &self.flow_queue {
            Some(fq) => {
                Some(sched::config::parse_queue("--flow-queue", fq).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let dur = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<u64>> {
            v.as_deref()
                .map(|s| sched::units::parse_duration(s).with_context(|| format!("{flag} {s:?}")))
                .transpose()
        };
        let target = dur("--target", &self.target)?;
        let interval = dur("--interval", &self.interval)?;
        let ecn = match self.ecn.as_deref() {
            None => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            Some(o) => bail!("--ecn {o:?}: expected on or off"),
        };
        let codel_flags = target.is_some() || interval.is_some() || ecn.is_some();
        let aqm = match self.aqm.as_deref() {
            Some("none") if codel_flags => {
                bail!("--target, --interval and --ecn are CoDel's: they need --aqm codel, not none")
            }
            Some("none") => Some(Aqm::None),
            Some("codel") | None if codel_flags || self.aqm.is_some() => {
                let d = CodelParams::default();
                Some(Aqm::Codel(
                    CodelParams::new(
                        target.unwrap_or(d.target_ns()),
                        interval.unwrap_or(d.interval_ns()),
                        ecn.unwrap_or(d.ecn()),
                        None,
                    )
                    .map_err(|e| anyhow::anyhow!("--target/--interval: {e}"))?,
                ))
            }
            None => None,
            Some(o) => bail!("--aqm {o:?}: expected none or codel"),
        };
        let overflow = match self.overflow.as_deref() {
            None => None,
            Some("tail") => Some(sched::OverflowPolicy::TailDrop),
            Some("longest") => Some(sched::OverflowPolicy::DropLongest),
            Some(o) => bail!("--overflow {o:?}: expected tail or longest"),
        };
        if let Some(l) = self.limit {
            if !(1..=sched::emu::MAX_PIPE_PACKETS).contains(&l) {
                bail!("--limit {l}: allowed 1..={}", sched::emu::MAX_PIPE_PACKETS);
            }
        }
        Ok(Queues {
            flow_queue,
            aqm,
            limit: self.limit,
            overflow,
        })
    }
}

/// One direction of the simple form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Simple {
    /// Scheduler.
    pub kind: Kind,
    /// Rate in bit/s (`None`: unlimited).
    pub rate_bps: Option<u64>,
    /// Propagation delay.
    pub delay_ns: u64,
}

/// The simple form's queues: what the flags set, `None` for a default
/// (which depends on the scheduler).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queues {
    /// Each flow's queue limit (default 100 packets; 10240 for fq_codel).
    pub flow_queue: Option<QueueSpec>,
    /// Queue management (default none; CoDel for fq_codel).
    pub aqm: Option<sched::algo::aqm::Aqm>,
    /// Packets in all (default: what the flows hold; 10240 for fq_codel).
    pub limit: Option<u32>,
    /// At the limit (default tail; longest for fq_codel).
    pub overflow: Option<sched::OverflowPolicy>,
}

/// The simple form: per direction one pipe with per-5-tuple flows of equal
/// weight, each flow's queue and queue management from `q`. A→B (`egress`)
/// takes every frame (the default); B→A (`reverse`), if given, every IP
/// packet (non-IP frames such as ARP pass).
pub fn simple_config(ab: Simple, ba: Option<Simple>, q: Queues) -> Config {
    let pipe = |name: &str, s: Simple| {
        let mut pipe = if s.kind == Kind::FqCodel {
            PipeSpec::fq_codel(name)
        } else {
            PipeSpec::new(name)
        };
        pipe.bandwidth_bps = s.rate_bps;
        pipe.delay_ns = s.delay_ns;
        pipe.sched = s.kind;
        pipe.aqm = q.aqm.unwrap_or(pipe.aqm);
        pipe.limit = q.limit.or(pipe.limit);
        pipe.overflow = q.overflow.unwrap_or(pipe.overflow);
        pipe
    };
    let flowset = |name: &str, pipe: usize, kind: Kind| {
        let mut fs = FlowsetSpec::new(name, pipe);
        fs.mask = FlowMask::FIVE_TUPLE;
        fs.max_flows = 65_536;
        fs.queue = q.flow_queue.unwrap_or(if kind == Kind::FqCodel {
            QueueSpec::Packets(sched::config::FQ_CODEL_LIMIT)
        } else {
            QueueSpec::Packets(100)
        });
        fs
    };
    let mut c = Config {
        pipes: vec![pipe("egress", ab)],
        flowsets: vec![flowset("flows", 0, ab.kind)],
        rules: Vec::new(),
        default: DefaultAction::Flowset(0),
        default_dir: Dir::AToB,
        seed: None,
        classes: Vec::new(),
    };
    if let Some(ba) = ba {
        c.pipes.push(pipe("reverse", ba));
        c.flowsets.push(flowset("reverse-flows", 1, ba.kind));
        c.rules.push(RuleSpec {
            matcher: Match::ANY,
            flowset: 1,
            dir: Dir::BToA,
            prob: None,
            set_dscp: None,
        });
    }
    c
}

fn duration(s: &str, what: &str) -> anyhow::Result<Option<Duration>> {
    let ns = sched::units::parse_duration(s).with_context(|| format!("{what}: {s:?}"))?;
    Ok((ns > 0).then(|| Duration::from_nanos(ns)))
}

impl Cli {
    /// Validates the command line, then checks privileges and interfaces.
    pub fn into_run_config(self) -> anyhow::Result<RunConfig> {
        let Some(iface) = self.iface.clone() else {
            bail!("--iface is required (or a subcommand: cleanup)");
        };
        if self.config.is_some() {
            for (flag, given) in [
                ("--rate", self.rate.is_some()),
                ("--delay", self.delay.is_some()),
                ("--reverse-sched", self.reverse_sched.is_some()),
                ("--reverse-rate", self.reverse_rate.is_some()),
                ("--reverse-delay", self.reverse_delay.is_some()),
                ("--flow-queue", self.flow_queue.is_some()),
                ("--aqm", self.aqm.is_some()),
                ("--target", self.target.is_some()),
                ("--interval", self.interval.is_some()),
                ("--ecn", self.ecn.is_some()),
                ("--limit", self.limit.is_some()),
                ("--overflow", self.overflow.is_some()),
            ] {
                if given {
                    bail!("{flag} is a flag of the simple form, and --config replaces the simple form: say it in the file");
                }
            }
        }
        let mut emulator = match &self.config {
            Some(path) => load_config(path)?,
            None => {
                let simple = |flag: &str,
                              sched: Option<&str>,
                              rate: Option<&str>,
                              delay: Option<&str>|
                 -> anyhow::Result<Simple> {
                    let kind: Kind = sched
                        .unwrap_or("fifo")
                        .parse()
                        .map_err(|e| anyhow::anyhow!("--{flag}sched: {e}"))?;
                    let rate_bps = match rate {
                        Some(r) => Some(
                            sched::units::parse_rate(r)
                                .with_context(|| format!("--{flag}rate {r:?}"))?,
                        ),
                        None => None,
                    };
                    let delay_ns = match delay {
                        Some(d) => sched::units::parse_duration(d)
                            .with_context(|| format!("--{flag}delay {d:?}"))?,
                        None => 0,
                    };
                    if delay_ns > sched::config::MAX_DELAY_NS {
                        bail!("--{flag}delay {delay:?}: at most 1h");
                    }
                    Ok(Simple {
                        kind,
                        rate_bps,
                        delay_ns,
                    })
                };
                let ab = simple(
                    "",
                    Some(&self.sched),
                    self.rate.as_deref(),
                    self.delay.as_deref(),
                )?;
                let ba = if self.reverse_sched.is_some()
                    || self.reverse_rate.is_some()
                    || self.reverse_delay.is_some()
                {
                    if self.out.is_none() {
                        bail!("--reverse-sched/--reverse-rate/--reverse-delay schedule B→A: they need a bridge (--out)");
                    }
                    Some(simple(
                        "reverse-",
                        self.reverse_sched.as_deref(),
                        self.reverse_rate.as_deref(),
                        self.reverse_delay.as_deref(),
                    )?)
                } else {
                    None
                };
                let q = self.queues()?;
                if q.overflow == Some(sched::OverflowPolicy::DropLongest)
                    && (ab.kind == Kind::Fifo || ba.is_some_and(|b| b.kind == Kind::Fifo))
                {
                    bail!("--overflow longest needs per-flow queues; fifo has one queue (use --sched drr, qfq, fq_codel, ...)");
                }
                simple_config(ab, ba, q)
            }
        };
        if let Some(seed) = self.seed {
            emulator.seed = Some(seed);
        }
        if self.out.is_none() && emulator.only_b_to_a() {
            bail!("the configuration has a rule or default for b-to-a only, but reflect mode (no --out) has only a-to-b: remove it or give --out");
        }
        let fix = match self.checksum.as_str() {
            "auto" => None,
            "fix" => Some(true),
            "keep" => Some(false),
            other => bail!("--checksum {other:?}: expected auto, fix or keep"),
        };
        let bind = match self.bind.as_str() {
            "auto" => xsk::BindMode::Auto,
            "copy" => xsk::BindMode::Copy,
            "zerocopy" | "zero-copy" => xsk::BindMode::ZeroCopy,
            other => bail!("--bind {other:?}: expected auto, copy or zerocopy"),
        };
        let mode = match self.xdp_mode.as_str() {
            "auto" => XdpMode::Auto,
            "native" => XdpMode::Native,
            "skb" => XdpMode::Skb,
            other => bail!("--xdp-mode {other:?}: expected auto, native or skb"),
        };
        if !matches!(self.frame_size, 2048 | 4096) {
            bail!(
                "--frame-size {}: must be 2048 or 4096 (a power of two the kernel accepts)",
                self.frame_size
            );
        }
        if !(64..=1 << 20).contains(&self.frames) {
            bail!("--frames {}: allowed 64..=1048576", self.frames);
        }
        if let Some(r) = self.ring_size {
            if !r.is_power_of_two() || !(64..=16384).contains(&r) || r > self.frames {
                bail!(
                    "--ring-size {r}: must be a power of two in 64..=16384 and at most --frames ({})",
                    self.frames
                );
            }
        }
        if !(0.0..=50.0).contains(&self.pacing_tolerance) {
            bail!(
                "--pacing-tolerance {}: a percentage in 0..=50",
                self.pacing_tolerance
            );
        }
        let metrics = match &self.metrics {
            None => None,
            Some(m) => Some(parse_listen_addr("--metrics", m, 9108)?),
        };
        let web = match &self.web {
            None => None,
            Some(m) => Some(parse_listen_addr("--web", m, 5007)?),
        };
        if !(1..=1024).contains(&self.batch) {
            bail!("--batch {}: allowed 1..=1024", self.batch);
        }
        if !(1..=xsk::MAX_QUEUES).contains(&self.queues) {
            bail!("--queues {}: allowed 1..={}", self.queues, xsk::MAX_QUEUES);
        }
        if self.out.as_deref() == Some(iface.as_str()) {
            bail!("--out {iface:?} is the same port as --iface: leave --out out for reflect mode");
        }
        let fail_open = crate::failopen::FailOpen::parse(&self.fail_open, self.out.is_some())?;
        let cores = match &self.cores {
            Some(list) => parse_core_list(list, num_cpus())?,
            None => Vec::new(),
        };
        // A capture file that cannot be written is an error now, not a
        // log line later.
        let capture = match self.capture {
            Some(p) => {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&p)
                    .with_context(|| format!("--capture {}", p.display()))?;
                Some(
                    std::path::absolute(&p)
                        .with_context(|| format!("--capture {}", p.display()))?,
                )
            }
            None => None,
        };
        // Arguments are all valid: now the machine.
        crate::preflight::check_privileges()?;
        for name in std::iter::once(&iface).chain(self.out.iter()) {
            crate::preflight::check_interface(name, self.frame_size)?;
            if let Some(have) = crate::preflight::rx_queues(name) {
                if self.queues > have {
                    bail!("--queues {}: {name} has {have} RX queue(s)", self.queues);
                }
            }
        }
        let ring = self
            .ring_size
            .unwrap_or_else(|| xsk::ring_size_for(self.frames));
        // Absolute: a reload re-reads it, and a daemon's directory may change.
        let config_path = match &self.config {
            Some(p) => {
                Some(std::path::absolute(p).with_context(|| format!("--config {}", p.display()))?)
            }
            None => None,
        };
        let complete_checksums = [
            fix.unwrap_or_else(|| crate::preflight::is_virtual(&iface)),
            self.out
                .as_deref()
                .is_some_and(|o| fix.unwrap_or_else(|| crate::preflight::is_virtual(o))),
        ];
        Ok(RunConfig {
            capture,
            complete_checksums,
            iface,
            out: self.out,
            emulator,
            config_path,
            xsk: XskParams {
                frame_size: self.frame_size,
                frames: self.frames,
                ring_size: ring,
                mode,
                queues: self.queues,
                no_socket: fail_open.no_socket(),
                bind,
            },
            fail_open,
            batch: self.batch,
            duration: match &self.duration {
                Some(d) => duration(d, "--duration")?,
                None => None,
            },
            stats_interval: duration(&self.stats_interval, "--stats-interval")?,
            stats_json: self.stats_json,
            cores,
            verbose: self.verbose,
            busy_poll: self.busy_poll,
            pacing_tolerance: self.pacing_tolerance / 100.0,
            metrics,
            web,
        })
    }
}

/// `--metrics`: "PORT" (loopback) or "ADDR:PORT".
/// `completions`: the script for `shell`, from these definitions.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "xdpsched", out);
}

/// `man`: one page for xdpsched and one per subcommand, into `dir`.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let cmd = <Cli as clap::CommandFactory>::command().name("xdpsched");
    clap_mangen::generate_to(cmd, dir)?;
    let mut written: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("xdpsched") && n.ends_with(".1"))
        })
        .collect();
    written.sort();
    Ok(written)
}

/// Reads and validates a configuration file (at start and at a reload).
pub fn load_config(path: &std::path::Path) -> anyhow::Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut cfg = sched::config::from_toml(&text).with_context(|| format!("{}", path.display()))?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    sched::config::load_files(&mut cfg, |kind, name| read_file(kind, name, dir))
        .with_context(|| format!("{}", path.display()))?;
    // Packet logs are written relative to the configuration's folder too.
    for p in &mut cfg.pipes {
        if let Some(log) = p.trace.as_mut().and_then(|t| t.log.as_mut()) {
            *log = dir.join(&*log).display().to_string();
        }
    }
    Ok(cfg)
}

/// Where iproute2 installs its distribution tables (`TC_LIB_DIR` first, as
/// tc itself looks).
const TC_LIB_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/tc",
    "/usr/lib/tc",
    "/usr/lib64/tc",
    "/usr/local/lib/tc",
];

/// A file the configuration names: a profile, a trace or a `.dist` table
/// (paths relative to the configuration's folder), or a distribution tc
/// knows (`normal`, `pareto`, `paretonormal`, `experimental`) read from
/// iproute2's library folder.
fn read_file(
    kind: sched::config::FileKind,
    name: &str,
    config_dir: &std::path::Path,
) -> Result<String, String> {
    if kind != sched::config::FileKind::Distribution || name.ends_with(".dist") {
        let p = config_dir.join(name);
        return std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()));
    }
    let env = std::env::var("TC_LIB_DIR").ok();
    let dirs = env.iter().map(String::as_str).chain(TC_LIB_DIRS);
    let mut tried = Vec::new();
    for d in dirs {
        let p = std::path::Path::new(d).join(format!("{name}.dist"));
        match std::fs::read_to_string(&p) {
            Ok(t) => return Ok(t),
            Err(_) => tried.push(p.display().to_string()),
        }
    }
    Err(format!(
        "not found in {} (iproute2 installs these tables; set TC_LIB_DIR, or give a .dist file)",
        tried.join(", ")
    ))
}

fn parse_listen_addr(flag: &str, s: &str, eg: u16) -> anyhow::Result<std::net::SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        anyhow::anyhow!("{flag} {s:?}: expected a port ({eg}) or an address and port (127.0.0.1:{eg}, [::1]:{eg})")
    })
}

/// CPUs this process may run on.
fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parses a DPDK-style core list ("1", "1,3", "0-3", "0,2-3") and checks
/// every core exists (`0..available`).
pub fn parse_core_list(list: &str, available: usize) -> anyhow::Result<Vec<usize>> {
    let mut cores = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let num = |s: &str| -> anyhow::Result<usize> {
            s.parse()
                .map_err(|_| anyhow::anyhow!("--cores {list:?}: {s:?} is not a core number"))
        };
        let (lo, hi) = (num(lo)?, num(hi)?);
        if lo > hi {
            bail!("--cores {list:?}: range {lo}-{hi} runs backwards");
        }
        for c in lo..=hi {
            if c >= available {
                bail!(
                    "--cores {list:?}: core {c} does not exist (this machine has cores 0..={})",
                    available.saturating_sub(1)
                );
            }
            if !cores.contains(&c) {
                cores.push(c);
            }
        }
    }
    Ok(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("1", 4).expect("1"), vec![1]);
        assert_eq!(parse_core_list("0,2-3", 4).expect("list"), vec![0, 2, 3]);
        assert_eq!(parse_core_list(" 1 - 2 ,1", 4).expect("dup"), vec![1, 2]);
        let e = parse_core_list("0-7", 2).expect_err("absent").to_string();
        assert!(
            e.contains("core 2 does not exist") && e.contains("0..=1"),
            "{e}"
        );
        assert!(parse_core_list("a", 2).is_err());
        assert!(parse_core_list("3-1", 4).is_err());
    }

    #[test]
    fn simple_form_is_one_pipe_with_per_flow_queues_per_direction() {
        let ab = Simple {
            kind: Kind::Qfq,
            rate_bps: Some(100_000_000),
            delay_ns: 5_000_000,
        };
        let c = simple_config(ab, None, Queues::default());
        assert_eq!(c.pipes.len(), 1);
        assert_eq!(c.pipes[0].bandwidth_bps, Some(100_000_000));
        assert_eq!(c.pipes[0].delay_ns, 5_000_000);
        assert_eq!(c.flowsets[0].mask, FlowMask::FIVE_TUPLE);
        assert_eq!(c.default, DefaultAction::Flowset(0));
        assert_eq!(c.flowsets[0].queue, QueueSpec::Packets(100));
        assert!(!c.uses(sched::config::Direction::BToA));
        let ba = Simple {
            kind: Kind::Fifo,
            rate_bps: Some(2_000_000),
            delay_ns: 40_000_000,
        };
        let c = simple_config(ab, Some(ba), Queues::default());
        let rev = c.for_direction(sched::config::Direction::BToA);
        assert_eq!(rev.pipes.len(), 1);
        assert_eq!(rev.pipes[0].name, "reverse");
        assert_eq!(rev.pipes[0].bandwidth_bps, Some(2_000_000));
        assert_eq!(rev.rules.len(), 1);
        let fwd = c.for_direction(sched::config::Direction::AToB);
        assert_eq!(fwd.pipes.len(), 1);
        assert_eq!(fwd.pipes[0].name, "egress");
        assert!(fwd.rules.is_empty());
    }

    #[test]
    fn fq_codel_and_queue_management_in_the_simple_form() {
        use sched::algo::aqm::{Aqm, CodelParams};
        let fq = Simple {
            kind: Kind::FqCodel,
            rate_bps: Some(100_000_000),
            delay_ns: 0,
        };
        let c = simple_config(fq, None, Queues::default());
        assert_eq!(c.pipes[0].aqm, Aqm::Codel(CodelParams::default()));
        assert_eq!(c.pipes[0].limit, Some(10_240));
        assert_eq!(c.pipes[0].overflow, sched::OverflowPolicy::DropLongest);
        assert_eq!(c.flowsets[0].queue, QueueSpec::Packets(10_240));
        assert_eq!(c.flowsets[0].aqm, None, "the pipe's");
        let cli = |args: &[&str]| {
            let mut v = vec!["xdpsched", "--iface", "lo"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).expect("parses")
        };
        let q = cli(&[
            "--sched",
            "drr",
            "--target",
            "2ms",
            "--ecn",
            "off",
            "--overflow",
            "longest",
        ])
        .queues()
        .expect("valid");
        assert_eq!(
            q.aqm,
            Some(Aqm::Codel(
                CodelParams::new(2_000_000, 100_000_000, false, None).expect("params")
            ))
        );
        assert_eq!(q.overflow, Some(sched::OverflowPolicy::DropLongest));
        for (bad, says) in [
            (&["--aqm", "red"][..], "--aqm \"red\""),
            (
                &["--aqm", "none", "--target", "5ms"][..],
                "need --aqm codel",
            ),
            (&["--target", "1s", "--interval", "100ms"][..], "target"),
            (&["--ecn", "yes"][..], "--ecn"),
            (&["--overflow", "head"][..], "--overflow"),
            (&["--limit", "0"][..], "--limit 0"),
            (&["--overflow", "longest"][..], "fifo has one queue"),
        ] {
            let e = format!("{:#}", cli(bad).into_run_config().expect_err("rejected"));
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn flow_queue_takes_packets_or_bytes_and_names_itself_when_wrong() {
        let parse = |q: &str| {
            Cli::try_parse_from(["xdpsched", "--iface", "lo", "--flow-queue", q])
                .expect("parses")
                .into_run_config()
        };
        // Validation of --flow-queue happens before the interface checks.
        for bad in ["0", "12parsecs", "1B"] {
            let e = format!("{:#}", parse(bad).expect_err(bad));
            assert!(e.contains("--flow-queue"), "{bad}: {e}");
        }
        assert_eq!(
            sched::config::parse_queue("--flow-queue", "150KB"),
            Ok(QueueSpec::Bytes(150 * 1024))
        );
    }
}
