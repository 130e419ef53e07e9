//! TOML configuration of pipes, flowsets and rules, dummynet-style.
//!
//! [`from_toml`] reads a configuration from text and validates all of it up
//! front into a [`Config`]; after that nothing is checked again. Every error
//! names the object (`pipe "wan"`, `flowset "web"`, `rule 3`, `default`),
//! the field and the rejected value, and, when the TOML text locates it, the
//! line and column.
//!
//! # The model
//! - A **pipe** is an emulated link: a rate, a propagation delay, a loss
//!   model, a scheduler, and the queue of its implicit flowset. With a
//!   `mask` it is a *dynamic* pipe (dummynet `pipe N config mask ...`): each
//!   distinct masked key gets its own instance of the pipe (own rate, delay
//!   line and scheduler).
//! - A **flowset** (dummynet `queue N config pipe P`) feeds one pipe: its
//!   `mask` splits its traffic into per-flow queues, created on demand (at
//!   most `max_flows`, expired after `idle_timeout`), each with the flowset's
//!   weight, priority, quantum, lmax and queue limit.
//! - **Rules** are tried in order; the first that matches sends the packet to
//!   its flowset. A rule may name a `pipe` instead (dummynet `ipfw add pipe N`):
//!   the packet then goes to that pipe's *implicit flowset* (see below).
//! - **`[default]`** says what happens to packets no rule matches, and to
//!   non-IP frames: `action = "pass"` (the default: forwarded unscheduled),
//!   `flowset = "name"` or `pipe = "name"`.
//! - **Directions.** xdpsched's bridge (`--iface A --out B`) carries two
//!   directions; each rule and the default apply to one of them (`dir`,
//!   default `"a-to-b"`: what `--iface` receives and `--out` sends) or to
//!   both. Each direction is scheduled on its own with what its rules name
//!   ([`Config::for_direction`]): a pipe used in both directions is two
//!   links with the same parameters, one per direction (full duplex, as
//!   netem on each interface; dummynet would share one pipe). In reflect
//!   mode (one port) there is only `"a-to-b"`.
//! - **Chains.** A pipe's `next` sends what leaves it (after its delay) into
//!   another pipe's implicit flowset (`next = "pipe"`) or into a flowset
//!   (`next = { flowset = "name" }`), where it is classified again by that
//!   flowset's mask — dummynet with `one_pass` off, or stacked tc qdiscs.
//!   Chains may not loop back.
//!
//! # Keys, values and defaults
//! ```toml
//! [[pipe]]
//! name = "wan"              # required; 1..=64 of A-Z a-z 0-9 _ - .
//! bandwidth = "40Mbit/s"    # a rate (units::parse_rate), an integer in bit/s, or "unlimited" (default)
//! delay = "80ms"            # a duration (units::parse_duration), an integer in ms; 0..=1h; default 0
//! plr = 0.01                # uniform loss probability 0..=1; default 0 (no loss)
//! # [pipe.gilbert_elliott]  # instead of plr: p, r required; k default 1, h default 0
//! queue = 50                # the implicit flowset's per-flow queue: packets, or bytes with a unit; default 50 packets
//! overhead = 24             # bytes added to every frame for rate accounting, 0..=1024; default 24
//! sched = "wf2q"            # fifo, prio, drr, wf2q, qfq, fq_codel; default wf2q (dummynet's)
//! mask = { src_ip = "0.0.0.255" }  # optional: a dynamic pipe, one instance per masked key
//! max_instances = 1024      # dynamic pipes only: most instances at once, 1..=2^24; default 1024
//!                           # (more keys share one overflow instance)
//! idle_timeout = "30s"      # dynamic pipes only: idle instances expire; default 30s
//! next = "uplink"           # optional: what leaves this pipe goes on into pipe "uplink"
//!                           # (or next = { flowset = "name" }); no cycles
//! aqm = "codel"             # queue management of its queues: "none" (default), "codel", "red",
//!                           # "gred", "pie" (flowsets without their own take the pipe's)
//! target = "5ms"            # CoDel: 1us..=interval; default 5ms (target, interval, ce_threshold
//!                           # alone imply aqm = "codel")
//! interval = "100ms"        # CoDel: 1us..=100s; default 100ms
//! ce_threshold = "1ms"      # CoDel: mark every ECN-capable packet queued longer; default off
//! red = "0.002/10/30/0.1"   # RED, dummynet's w_q/min_th/max_th/max_p (gred = "..." for Gentle
//!                           # RED); thresholds in packets, or bytes with a unit; or the keys
//!                           # w_q (default 0.002), min_th, max_th (required), max_p (0.1)
//! # aqm = "pie": target (15ms), tupdate (15ms), max_burst (150ms), alpha (0.125), beta (1.25),
//! #   dq_rate_estimator (true: RFC 8033's departure rate; false: timestamps, as Linux)
//! ecn = true                # any: mark ECN-capable packets CE instead of dropping; default true
//! limit = 10240             # packets in the pipe's scheduler over all flows, 1..=65536;
//!                           # default what its flowsets hold (capped at 65536)
//! overflow = "tail"         # at `limit`: "tail" (default) or "longest" (push out a packet of
//!                           # the flow with the most queued; not with fifo)
//! # sched = "fq_codel" changes the pipe's defaults to Linux fq_codel's: aqm "codel",
//! # queue and limit 10240, overflow "longest", and its implicit flowset a queue per 5-tuple.
//!
//! [[flowset]]
//! name = "web"              # required
//! pipe = "wan"              # required: the pipe it feeds
//! mask = "5-tuple"          # "none" (default: one queue), "5-tuple", "src-ip", "dst-ip", "all", or a table
//! weight = 10               # 1..=65536; default 1
//! priority = 0              # 0..=15, 0 served first (PRIO); default 0
//! quantum = "3028B"         # DRR bytes per round, 64..=16MiB; default: none (weight × the DRR unit)
//! lmax = 1514               # longest packet in bytes, 64..=65536; default 65536
//! queue = 50                # per-flow queue: packets, or bytes with a unit; default 50 packets
//! max_flows = 65536         # per-flow queues at once, 1..=2^24; default 65536
//!                           # (more flows share the flowset's overflow queue)
//! idle_timeout = "30s"      # idle per-flow queues expire; default 30s
//! aqm = "codel"             # and target, interval, ecn, ce_threshold: as on a pipe;
//!                           # default: the pipe's queue management
//!
//! [[rule]]                  # ordered; first match wins
//! flowset = "web"           # or pipe = "wan"
//! match = { src = "10.0.0.0/8", dst = "192.168.1.0/24", proto = "tcp", src_port = "1024-65535", dst_port = 443, dscp = "ef", vlan = 100 }
//! dir = "a-to-b"            # "a-to-b" (default), "b-to-a" or "both"
//!
//! [default]
//! action = "pass"           # or flowset = "name", or pipe = "name"
//! dir = "a-to-b"            # the direction(s) it applies to; the other one passes
//! ```
//! Unknown keys anywhere are errors. A configuration needs at least one pipe.
//!
//! ## Values
//! - **Rates, sizes, durations**: see [`crate::units`]. Rates are SI
//!   (`K` = 1000) in bits per second (`"100Mbps"` is bits; `"12.5MByte/s"`
//!   is bytes). Sizes are binary (`K` = 1024, as dummynet and tc). A plain
//!   integer duration is milliseconds (`delay = 80`, as dummynet).
//! - **Queues**: an integer, or a string of digits only, is a number of
//!   packets (1..=2^26, dummynet's "slots"); a string with a unit is bytes
//!   (64..=4294967295). `queue = "50KBytes"` is 51200 bytes.
//! - **Loss**: `plr` is dummynet's uniform packet loss rate. The
//!   `[pipe.gilbert_elliott]` table is the 4-parameter Gilbert-Elliott model
//!   in its standard form: a two-state Markov chain with `p` = P(good → bad)
//!   and `r` = P(bad → good), evaluated per packet; in the good state a packet
//!   is lost with probability `1 - k`, in the bad state with `1 - h`. With
//!   `k = 1, h = 0` (the defaults) it is the simple Gilbert model. Linux
//!   netem's `loss gemodel p r 1-h 1-k` takes the same four numbers (as
//!   percentages, the last two as loss probabilities). `plr = 0` is read as
//!   no loss ([`LossModel::None`]); `plr` and `gilbert_elliott` together are an error.
//! - **Overhead** (default 24) counts what an Ethernet link carries per frame
//!   beyond the frame as the datapath sees it (no FCS): preamble and start
//!   delimiter 8, inter-frame gap 12, FCS 4.
//!
//! ## Masks
//! A mask selects the bits of a packet's key that tell flows (flowset) or
//! pipe instances (dynamic pipe) apart. As a table, each field is optional
//! (absent = 0, ignored):
//! - `src_ip`, `dst_ip`: an IPv4 mask (`"0.0.0.255"`, `"0x000000ff"` — up to
//!   8 hex digits —, an integer up to `0xffffffff`, or a prefix length `"/24"`
//!   with 0..=32), an IPv6 mask (`"ffff:ffff::"`, 9..=32 hex digits, or `"/48"`
//!   with 33..=128), or `true` (all 128 bits).
//! - `src_port`, `dst_port`: 0..=0xffff; `proto`: 0..=0xff; `dscp`: 0..=0x3f;
//!   `vlan`: 0..=0xfff (the 12-bit VLAN id). An integer, a string `"0x..."` or
//!   decimal, or `true` for all bits.
//!
//! Addresses and masks are `u128` in IPv6 space, IPv4 as the IPv4-mapped
//! address `::ffff:a.b.c.d` (v4 in the low 32 bits). An IPv4 mask `m` also
//! keeps the upper 96 bits: it is `(!0 << 32) | m`, so the v4 mask of prefix
//! length `n` is the 128-bit mask of length `96 + n` (as [`Prefix`] lengths),
//! IPv4 and IPv6 flows never share a key, and IPv6 traffic under an IPv4
//! mask is split by its upper 96 bits. A pipe mask of all zeros (`"none"`)
//! is the same as no mask.
//!
//! ## Matches
//! All fields are optional; an absent field matches everything, and a rule
//! with no `match` matches every packet.
//! - `src`, `dst`: `"10.0.0.0/8"`, `"2001:db8::/32"`, a bare address (a host:
//!   /32 or /128), or `"any"`. A prefix with host bits set (`"10.0.0.1/8"`)
//!   is **rejected**, naming the prefix it probably meant: such a prefix is
//!   more often a typo for a host than a deliberate network. IPv6 prefixes
//!   shorter than /96 also match IPv4 packets (in their mapped form).
//! - `proto`: `tcp`, `udp`, `icmp`, `icmpv6` (or `ipv6-icmp`), `sctp`, `gre`,
//!   `esp`, `ah`, `dccp`, `udplite`, or a number 0..=255.
//! - `src_port`, `dst_port`: `443`, `"443"`, or an inclusive range
//!   `"1024-65535"`. Needs no proto, but if a proto is given it must be one
//!   with ports (tcp, udp, sctp, dccp, udplite).
//! - `dscp`: `ef` (46), `af11`..`af43`, `cs0`..`cs7`, `be`/`df` (0), `le` (1),
//!   `va` (44), or a number 0..=63.
//! - `vlan`: the VLAN id 0..=4095.
//!
//! ## Implicit flowsets
//! A rule or `[default]` that names a pipe sends to that pipe's implicit
//! flowset, as dummynet does for `ipfw add pipe N`. It is created once per
//! pipe, appended to [`Config::flowsets`] after the declared ones, and named
//! `"pipe:NAME"` (a `:` cannot appear in declared names). It has one queue
//! per pipe instance (mask none), the pipe's `queue` as its limit, and every
//! other field at its default (`max_flows` 1). The pipe's `queue` key has no
//! other use: flowsets declared on a pipe have their own limits.

//!
//! # The code
//! [`model`] is what a validated configuration is ([`Config`] and its specs);
//! [`error`] how a rejected one is reported; `raw` the file as serde reads
//! it, spans kept; `validate` turns the raw form into the model, every
//! object at once, naming object, field and value; `values` parses each
//! kind of value (rates, masks, prefixes, ports, ...).

mod classes;
pub mod error;
mod impair;
pub mod model;
mod raw;
mod validate;
mod values;

pub use error::{ConfigFileError, Location};
pub use model::*;
pub use validate::from_toml;
pub use values::parse_queue;

/// What kind of file a configuration names (for the caller's reader: a
/// distribution is looked up where iproute2 installs its tables unless it
/// is a `.dist` path; the others are paths, relative to the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A jitter or slot distribution table (`normal`, or a `.dist` file).
    Distribution,
    /// A dummynet delay profile.
    Profile,
    /// A Mahimahi trace.
    Trace,
}

/// Reads the files the pipes name — distribution tables (jitter, slots),
/// dummynet profiles, Mahimahi traces — through `read`, which the caller
/// provides (the library does no I/O: xdpsched reads iproute2's installed
/// tables and paths relative to the configuration; tests hand in their
/// own). Each file is read once per pipe and parsed; errors name the pipe,
/// the key, the file and why.
pub fn load_files(
    cfg: &mut Config,
    mut read: impl FnMut(FileKind, &str) -> Result<String, String>,
) -> Result<(), ConfigFileError> {
    fn table(
        pipe: &str,
        what: &str,
        d: &mut Distribution,
        read: &mut impl FnMut(FileKind, &str) -> Result<String, String>,
    ) -> Result<(), ConfigFileError> {
        let Distribution::Table { name, table } = d else {
            return Ok(());
        };
        if table.is_some() {
            return Ok(());
        }
        let t = read(FileKind::Distribution, name)
            .and_then(|text| crate::emu::jitter::parse_table(&text))
            .map_err(|e| invalid(pipe, &format!("{what} {name:?}: {e}")))?;
        *table = Some(t);
        Ok(())
    }
    fn invalid(pipe: &str, message: &str) -> ConfigFileError {
        ConfigFileError::Invalid {
            at: None,
            object: format!("pipe {pipe:?}"),
            message: message.to_owned(),
        }
    }
    for p in &mut cfg.pipes {
        let name = p.name.clone();
        if let Some(j) = &mut p.jitter {
            table(&name, "distribution", &mut j.distribution, &mut read)?;
        }
        if let Some(SlotSpec {
            delay: SlotDelaySpec::Table { distribution, .. },
            ..
        }) = &mut p.slot
        {
            table(&name, "slot distribution", distribution, &mut read)?;
        }
        if let Some(f) = p.profile.as_mut().filter(|f| f.profile.is_none()) {
            let pf = read(FileKind::Profile, &f.file)
                .and_then(|text| crate::emu::impair::Profile::parse(&text))
                .map_err(|e| invalid(&name, &format!("profile {:?}: {e}", f.file)))?;
            // The profile's `bw` is the link's rate unless the pipe sets one.
            match (p.bandwidth_bps, pf.bandwidth_bps) {
                (None, Some(bw)) => p.bandwidth_bps = Some(bw),
                (None, None) => {
                    return Err(invalid(
                        &name,
                        &format!(
                            "profile {:?}: its extra air time needs a bandwidth (a `bw` line in the profile, or bandwidth on the pipe)",
                            f.file
                        ),
                    ))
                }
                _ => {}
            }
            f.profile = Some(std::sync::Arc::new(pf));
        }
        if let Some(t) = p.trace.as_mut().filter(|t| t.trace.is_none()) {
            let tr = read(FileKind::Trace, &t.file)
                .and_then(|text| crate::emu::trace::Trace::parse(&text))
                .map_err(|e| invalid(&name, &format!("trace {:?}: {e}", t.file)))?;
            t.trace = Some(std::sync::Arc::new(tr));
        }
    }
    Ok(())
}
