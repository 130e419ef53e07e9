//! xdpgen's command line, turned into a validated configuration.

use crate::engine::{EngineConfig, PortSpec};
use crate::packet::frame::{parse_mac, Endpoints, Template};
use crate::traffic::spec::{self, Flow};
use clap::{Args, Parser, Subcommand, ValueEnum};
use sched::units::{parse_duration, parse_rate};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use xsk::{XdpMode, XskParams};

/// xdpgen: paced weighted UDP flows over AF_XDP, with per-packet latency,
/// loss, reordering and fairness measured by the same process.
#[derive(Debug, Parser)]
#[command(name = "xdpgen", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: send flows and measure them).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Sending and measuring options.
    #[command(flatten)]
    pub send: SendArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Estimate the path's bottleneck capacity from packet-pair and
    /// packet-train dispersion (the method of pathrate).
    Capacity(Box<CapacityArgs>),
    /// Print a shell completion script (bash: `source <(xdpgen completions
    /// bash)`; zsh: into a directory of $fpath as `_xdpgen`; fish: into
    /// ~/.config/fish/completions/xdpgen.fish).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write the man pages (xdpgen.1, xdpgen-capacity.1, ...) into DIR
    /// (scripts/man.sh builds them all).
    #[command(hide = true)]
    Man {
        /// Where to write them.
        dir: PathBuf,
    },
}

/// `completions`: the script for `shell`, from these definitions.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "xdpgen", out);
}

/// `man`: one page for xdpgen and one per subcommand, into `dir`.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    let cmd = <Cli as clap::CommandFactory>::command();
    clap_mangen::generate_to(cmd, dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("xdpgen") && n.ends_with(".1"))
        })
        .collect();
    written.sort();
    Ok(written)
}

/// Ports and AF_XDP settings.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// Sending port.
    #[arg(long, short = 'i')]
    pub iface: Option<String>,
    /// Network namespace of --iface (an `ip netns` name).
    #[arg(long)]
    pub netns: Option<String>,
    /// Receiving port (default: --iface, for a DUT in reflect mode).
    #[arg(long)]
    pub rx_iface: Option<String>,
    /// Network namespace of --rx-iface.
    #[arg(long)]
    pub rx_netns: Option<String>,
    /// Source MAC (default: --iface's).
    #[arg(long)]
    pub src_mac: Option<String>,
    /// Destination MAC (default: --rx-iface's; reflect mode: 02:58:47:00:00:02).
    #[arg(long)]
    pub dst_mac: Option<String>,
    /// Source IPv4 address (default: --iface's first, else 198.18.0.1).
    #[arg(long)]
    pub src_ip: Option<Ipv4Addr>,
    /// Destination IPv4 address (default: --rx-iface's first, else 198.18.0.2).
    #[arg(long)]
    pub dst_ip: Option<Ipv4Addr>,
    /// xdp: AF_XDP sockets; socket: ordinary UDP sockets (sendmmsg/recvmmsg).
    #[arg(long, value_enum, default_value_t = Mode::Xdp)]
    pub mode: Mode,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,
    /// UMEM frame size (2048 or 4096).
    #[arg(long, default_value_t = 2048)]
    pub frame_size: u32,
    /// UMEM frames per port.
    #[arg(long, default_value_t = 4096)]
    pub frames: u32,
    /// Frames per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Most frames in the TX ring at once (a short ring keeps the stamp
    /// close to the real departure).
    #[arg(long, default_value_t = 128)]
    pub in_flight: usize,
    /// Cores for the sending and the receiving thread, e.g. `0,1`.
    #[arg(long, value_delimiter = ',')]
    pub cores: Vec<usize>,
}

/// `xdpgen` (send and measure).
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Ports.
    #[command(flatten)]
    pub port: PortArgs,
    /// A flow: `dport=10001,rate=100M,size=1500,dscp=46,start=10s,duration=60s,weight=2,name=voice`
    /// (repeatable; `rate=max` sends as fast as the port takes).
    #[arg(long = "flow")]
    pub flow: Vec<String>,
    /// N identical flows (from the single --flow given, or the defaults), dports counting up.
    #[arg(long)]
    pub flows: Option<usize>,
    /// A TOML scenario (`[[flow]]` tables with the --flow keys), e.g. gen/examples/lab.toml.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Run length (default: until the last flow ends; 10s if none ends).
    #[arg(long)]
    pub duration: Option<String>,
    /// Report interval.
    #[arg(long)]
    pub interval: Option<String>,
    /// How long to keep receiving after the last departure.
    #[arg(long, default_value = "500ms")]
    pub drain: String,
    /// Weights, e.g. `1:2:3:4`, for the share-vs-weight error (also settable per flow).
    #[arg(long)]
    pub weights: Option<String>,
    /// The bottleneck's rate: judge each interval against the max-min fair shares.
    #[arg(long)]
    pub link_rate: Option<String>,
    /// Bytes per frame the bottleneck counts besides the frame (24: Ethernet
    /// preamble, SFD, inter-frame gap and FCS, as xdpsched's pipes count).
    #[arg(long, default_value_t = 24)]
    pub link_overhead: u32,
    /// Serve a live page at http://ADDR/ while the flows run: each flow's
    /// received rate per interval over the last minute, Jain's index and
    /// the error against the max-min fair shares of --link-rate (else the
    /// weighted shares). A port ("5006": loopback) or an address and port.
    #[arg(long)]
    pub web: Option<String>,
    /// Final summary as JSON (`-`: stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Newline-delimited JSON interval events (`-`: stdout).
    #[arg(long)]
    pub json_stream: Option<PathBuf>,
    /// CSV time series.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// HdrHistogram interval log of latency (per flow, tagged `f<ID>`).
    #[arg(long)]
    pub hdr_log: Option<PathBuf>,
    /// Write plots STEM-rate.{png,svg} and STEM-latency.{png,svg}.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// No interval lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Keep the BPF libraries' log lines.
    #[arg(long)]
    pub verbose: bool,
}

/// `xdpgen capacity`.
#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    /// Ports.
    #[command(flatten)]
    pub port: PortArgs,
    /// Trains to send.
    #[arg(long, default_value_t = 40)]
    pub trains: usize,
    /// Frames per train (2: packet pairs).
    #[arg(long, default_value_t = 32)]
    pub train_len: usize,
    /// Frame size (without FCS).
    #[arg(long, default_value_t = 1500)]
    pub size: u32,
    /// Gap between trains (lets queues drain).
    #[arg(long, default_value = "20ms")]
    pub gap: String,
    /// Per-frame overhead on the wire counted in the capacity (preamble, SFD,
    /// inter-frame gap, FCS).
    #[arg(long, default_value_t = 24)]
    pub overhead: u32,
    /// Result as JSON (`-`: stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Keep the BPF libraries' log lines.
    #[arg(long)]
    pub verbose: bool,
}

/// Packet I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// AF_XDP sockets.
    Xdp,
    /// Kernel UDP sockets.
    Socket,
}

/// XDP attach mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native if possible.
    Auto,
    /// Driver mode.
    Native,
    /// Generic mode.
    Skb,
}

/// A port's addresses, read in its namespace.
#[derive(Debug, Clone, Default)]
pub struct IfaceInfo {
    /// MAC.
    pub mac: Option<[u8; 6]>,
    /// First IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// MTU.
    pub mtu: Option<u32>,
}

/// Reads an interface's MAC and first IPv4 address in namespace `netns`.
pub fn iface_info(name: &str, netns: Option<&str>) -> anyhow::Result<IfaceInfo> {
    let r = xsk::netns::within(netns, || -> anyhow::Result<IfaceInfo> {
        if nix::net::if_::if_nametoindex(name).is_err() {
            anyhow::bail!(
                "interface {name:?} not found{}",
                netns.map_or(String::new(), |n| format!(" in network namespace {n:?}"))
            );
        }
        let mut info = IfaceInfo::default();
        for a in nix::ifaddrs::getifaddrs()? {
            if a.interface_name != name {
                continue;
            }
            let Some(addr) = a.address else { continue };
            if let Some(l) = addr.as_link_addr() {
                if info.mac.is_none() {
                    info.mac = l.addr();
                }
            } else if let Some(v4) = addr.as_sockaddr_in() {
                if info.ipv4.is_none() {
                    info.ipv4 = Some(v4.ip());
                }
            }
        }
        Ok(info)
    })??;
    Ok(r)
}

/// Everything `main` needs to run the flows.
#[derive(Debug, Clone)]
pub struct SendPlan {
    /// The engine's configuration.
    pub engine: EngineConfig,
    /// Weights were given explicitly.
    pub weighted: bool,
    /// Link rate for fair shares.
    pub link_bps: Option<f64>,
    /// Its per-frame overhead.
    pub link_overhead: u32,
    /// Description (from the scenario).
    pub description: Option<String>,
}

fn xsk_params(p: &PortArgs) -> anyhow::Result<XskParams> {
    if !p.frame_size.is_power_of_two() || !(2048..=4096).contains(&p.frame_size) {
        anyhow::bail!("--frame-size {}: must be 2048 or 4096", p.frame_size);
    }
    if p.frames < 64 {
        anyhow::bail!("--frames {}: at least 64", p.frames);
    }
    if p.batch == 0 || p.batch > 1024 {
        anyhow::bail!("--batch {}: 1..=1024", p.batch);
    }
    if p.in_flight == 0 {
        anyhow::bail!("--in-flight must be at least 1");
    }
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(c) = p.cores.iter().find(|&&c| c >= online) {
        anyhow::bail!(
            "--cores: core {c} does not exist (this machine has {online}: 0..={})",
            online - 1
        );
    }
    Ok(XskParams {
        frame_size: p.frame_size,
        frames: p.frames,
        ring_size: 2048.min(p.frames.next_power_of_two()),
        queues: 1,
        no_socket: xsk::NoSocket::Peer,
        bind: xsk::BindMode::Auto,
        mode: match p.xdp_mode {
            XdpModeArg::Auto => XdpMode::Auto,
            XdpModeArg::Native => XdpMode::Native,
            XdpModeArg::Skb => XdpMode::Skb,
        },
    })
}

/// The ports and their addresses.
pub fn ports(p: &PortArgs) -> anyhow::Result<(PortSpec, Option<PortSpec>, Endpoints)> {
    let Some(iface) = p.iface.clone() else {
        anyhow::bail!("--iface is required: the port to send from");
    };
    let tx = PortSpec {
        iface,
        netns: p.netns.clone(),
    };
    let rx = p.rx_iface.clone().map(|iface| PortSpec {
        iface,
        netns: p.rx_netns.clone().or_else(|| p.netns.clone()),
    });
    if p.rx_netns.is_some() && p.rx_iface.is_none() {
        anyhow::bail!("--rx-netns needs --rx-iface");
    }
    let ti = iface_info(&tx.iface, tx.netns.as_deref())?;
    let ri = match &rx {
        Some(r) => Some(iface_info(&r.iface, r.netns.as_deref())?),
        None => None,
    };
    let mac = |flag: &str, s: &Option<String>| -> anyhow::Result<Option<[u8; 6]>> {
        s.as_deref()
            .map(|m| {
                parse_mac(m).ok_or_else(|| {
                    anyhow::anyhow!("{flag} {m:?}: not a MAC address (aa:bb:cc:dd:ee:ff)")
                })
            })
            .transpose()
    };
    let ep = Endpoints {
        src_mac: mac("--src-mac", &p.src_mac)?
            .or(ti.mac)
            .unwrap_or([0x02, 0x58, 0x47, 0, 0, 1]),
        dst_mac: mac("--dst-mac", &p.dst_mac)?
            .or(ri.as_ref().and_then(|r| r.mac))
            .unwrap_or([0x02, 0x58, 0x47, 0, 0, 2]),
        src_ip: p.src_ip.or(ti.ipv4).unwrap_or(Ipv4Addr::new(198, 18, 0, 1)),
        dst_ip: p
            .dst_ip
            .or(ri.as_ref().and_then(|r| r.ipv4))
            .unwrap_or(Ipv4Addr::new(198, 18, 0, 2)),
    };
    Ok((tx, rx, ep))
}

/// Builds the flows and the engine configuration from the command line.
pub fn plan(a: &SendArgs) -> anyhow::Result<SendPlan> {
    let xsk = xsk_params(&a.port)?;
    let max_size = xsk.frame_size - 256; // xsk-rs keeps headroom out of the frame
    let mut duration_ns = a.duration.as_deref().map(parse_duration).transpose()?;
    let mut interval_ns = a.interval.as_deref().map(parse_duration).transpose()?;
    let mut description = None;
    let mut flows: Vec<Flow> = if let Some(path) = &a.scenario {
        if !a.flow.is_empty() || a.flows.is_some() {
            anyhow::bail!("--scenario and --flow/--flows exclude each other");
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let p = spec::parse_scenario(&text, max_size)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        duration_ns = duration_ns.or(p.duration_ns);
        interval_ns = interval_ns.or(p.interval_ns);
        description = p.description;
        p.flows
    } else if let Some(n) = a.flows {
        if a.flow.len() > 1 {
            anyhow::bail!("--flows N takes at most one --flow as the template");
        }
        spec::replicate(a.flow.first().map_or("", String::as_str), n, max_size)?
    } else {
        a.flow
            .iter()
            .enumerate()
            .map(|(i, s)| spec::parse_flow(s, i, max_size))
            .collect::<Result<_, _>>()?
    };
    let weighted = if let Some(w) = &a.weights {
        let ws: Vec<f64> = w
            .split(':')
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v > 0.0)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| anyhow::anyhow!("--weights {w:?}: numbers > 0 separated by ':'"))?;
        if ws.len() != flows.len() {
            anyhow::bail!(
                "--weights has {} values for {} flows",
                ws.len(),
                flows.len()
            );
        }
        for (f, w) in flows.iter_mut().zip(ws) {
            f.weight = w;
        }
        true
    } else {
        flows.iter().any(|f| f.weight != 1.0)
    };
    let mut p = plan_with_flows(a, flows)?;
    p.weighted = weighted;
    p.description = description;
    p.engine.run_ns = spec::run_length(&p.engine.flows, duration_ns).unwrap_or(10_000_000_000);
    if let Some(iv) = interval_ns {
        if iv < 1_000_000 {
            anyhow::bail!("--interval: at least 1ms");
        }
        p.engine.interval_ns = iv;
    }
    Ok(p)
}

/// The engine configuration for given flows (run length from --duration,
/// else the flows', else 10 s).
pub fn plan_with_flows(a: &SendArgs, flows: Vec<Flow>) -> anyhow::Result<SendPlan> {
    let xsk = xsk_params(&a.port)?;
    spec::check(&flows)?;
    let duration_ns = a.duration.as_deref().map(parse_duration).transpose()?;
    let run_ns = spec::run_length(&flows, duration_ns).unwrap_or(10_000_000_000);
    let interval_ns = a
        .interval
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .unwrap_or(100_000_000);
    if interval_ns < 1_000_000 {
        anyhow::bail!("--interval: at least 1ms");
    }
    let drain_ns = parse_duration(&a.drain)?;
    let link_bps = a
        .link_rate
        .as_deref()
        .map(parse_rate)
        .transpose()?
        .map(|r| r as f64);
    let (tx, rx, ep) = ports(&a.port)?;
    let templates = flows.iter().map(|f| Template::new(f, &ep)).collect();
    let flows_weighted = flows.iter().any(|f| f.weight != 1.0);
    Ok(SendPlan {
        engine: EngineConfig {
            tx,
            rx,
            flows,
            templates,
            run_ns,
            drain_ns,
            interval_ns,
            xsk,
            batch: a.port.batch,
            in_flight: a.port.in_flight,
            cores: a.port.cores.clone(),
            interval_histograms: a.hdr_log.is_some(),
        },
        weighted: flows_weighted,
        link_bps,
        link_overhead: a.link_overhead,
        description: None,
    })
}

/// The capacity probe's flows: `trains` unpaced trains of `train_len` frames,
/// `gap` apart (each train is its own flow id).
pub fn capacity_flows(c: &CapacityArgs) -> anyhow::Result<(Vec<Flow>, u64)> {
    let xsk = xsk_params(&c.port)?;
    if c.train_len < 2 || c.train_len > 1024 {
        anyhow::bail!("--train-len {}: 2..=1024", c.train_len);
    }
    if c.trains == 0 || c.trains > 10_000 {
        anyhow::bail!("--trains {}: 1..=10000", c.trains);
    }
    let gap = parse_duration(&c.gap)?;
    if gap == 0 {
        anyhow::bail!("--gap must be more than 0");
    }
    let max_size = xsk.frame_size - 256;
    let mut flows = Vec::with_capacity(c.trains);
    for i in 0..c.trains {
        let mut f = spec::parse_flow(&format!("size={},rate=max", c.size), i, max_size)?;
        f.name = format!("train{i}");
        f.dport = spec::BASE_DPORT;
        f.sport = 10_000u16.wrapping_add(i as u16);
        f.start_ns = i as u64 * gap;
        f.count = Some(c.train_len as u64);
        flows.push(f);
    }
    Ok((flows, c.trains as u64 * gap))
}
