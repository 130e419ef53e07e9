//! A scheduled direction (A→B, or B→A when the configuration schedules
//! it): its configuration and its emulator, built at start for the egress
//! port it leaves by, and what the emulator queues ([`Desc`]).

use sched::config::{Config, Direction};
use sched::emu::Emulator;
use sched::Packet;

/// What the scheduler queues: a UMEM frame number, the packet length and
/// what an ECN mark needs. 16 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Desc {
    /// Frame number in the UMEM.
    pub frame: u32,
    /// Packet length in bytes (a UMEM frame is at most 4096).
    pub len: u16,
    /// Offset of the IP header in the frame (after Ethernet and VLAN tags).
    pub l3: u8,
    /// The IP header's ECN field (bits 0-1, `ECN_*`), whether it is IPv6
    /// (`V6`) and whether queue management marked it CE (`MARK_CE`: the
    /// frame is rewritten when it leaves).
    pub ecn: u8,
    /// When it reached the emulator (the run's clock, ns): for the queue
    /// delay a capture reports.
    pub arrived: u64,
}

impl Desc {
    /// `ecn`: the ECN codepoint's bits.
    const ECN_MASK: u8 = 0b11;
    /// `ecn`: the IP header is IPv6.
    const V6: u8 = 0b100;
    /// `ecn`: queue management marked it CE.
    const MARK_CE: u8 = 0b1000;

    /// A frame of `len` bytes that reached the emulator at `now`.
    pub fn new(frame: u32, len: u32, now: u64) -> Self {
        Desc {
            frame,
            // UMEM frames are at most 4096 bytes.
            len: u16::try_from(len).unwrap_or(u16::MAX),
            l3: 0,
            ecn: 0,
            arrived: now,
        }
    }

    /// Where its IP header is, if it has one: (offset, IPv6).
    #[inline]
    pub fn ip(&self) -> Option<(usize, bool)> {
        (self.l3 != 0).then_some((self.l3 as usize, self.ecn & Self::V6 != 0))
    }

    /// Where the CE mark goes, if queue management marked it: (IP header
    /// offset, IPv6).
    #[inline]
    pub fn ce_mark(&self) -> Option<(usize, bool)> {
        (self.ecn & Self::MARK_CE != 0).then_some((self.l3 as usize, self.ecn & Self::V6 != 0))
    }
}

impl Packet for Desc {
    #[inline]
    fn len(&self) -> u32 {
        u32::from(self.len)
    }
    #[inline]
    fn ecn_capable(&self) -> bool {
        self.ecn & Self::ECN_MASK != 0
    }
    #[inline]
    fn set_ce(&mut self) {
        self.ecn |= Self::MARK_CE;
    }
    #[inline]
    fn l3_offset(&self) -> u32 {
        u32::from(self.l3)
    }
    #[inline]
    fn parsed(&mut self, h: &sched::wire::Headers) {
        let ip = match h.family {
            sched::wire::Family::V4 => 0,
            sched::wire::Family::V6 => Self::V6,
            _ => return,
        };
        // Ethernet and at most two VLAN tags: at most 22.
        if let Ok(l3) = u8::try_from(h.l3_offset) {
            self.l3 = l3;
            self.ecn = (h.ecn & Self::ECN_MASK) | ip;
        }
    }
}

/// One scheduled direction: its configuration and emulator, on the worker
/// that owns the direction's egress port.
pub(crate) struct Sched {
    pub dir: Direction,
    pub cfg: Config,
    pub emu: Emulator<Desc>,
    /// Frames inside the emulator.
    pub queued: usize,
    /// Its trace-driven pipes' packet logs (`trace_log`).
    pub logs: Vec<crate::tracelog::LogTarget>,
}

/// The run's seed: the configuration's `seed`, or one drawn from the
/// operating system's randomness (reported at start and in the statistics,
/// so the run can be replayed with `seed = N`).
pub(crate) fn run_seed(emulator: &Config) -> u64 {
    use std::hash::BuildHasher;
    emulator.seed.unwrap_or_else(|| {
        // RandomState's keys come from the OS; below 2^63 so that TOML
        // (signed 64-bit integers) can say it back.
        std::collections::hash_map::RandomState::new().hash_one(std::process::id()) >> 1
    })
}

/// The scheduled directions of `emulator`, by egress side: A→B leaves on B
/// (on A when reflecting), B→A on A when the configuration schedules it.
/// `seed` is the run's (see [`run_seed`]); `salt` varies it: 0 at start,
/// the reload's number at a reload.
pub(crate) fn directions(
    emulator: &Config,
    bridge: bool,
    seed: u64,
    salt: u64,
) -> anyhow::Result<[Option<Sched>; 2]> {
    let mut scheds: [Option<Sched>; 2] = [None, None];
    for dir in Direction::ALL {
        let egress = match (dir, bridge) {
            (Direction::AToB, true) => 1,
            (Direction::AToB, false) => 0,
            (Direction::BToA, true) => 0,
            (Direction::BToA, false) => {
                if emulator.only_b_to_a() {
                    anyhow::bail!("the configuration schedules b-to-a traffic only, but reflect mode (no --out) has only a-to-b");
                }
                continue;
            }
        };
        if dir == Direction::BToA && !emulator.uses(dir) {
            continue;
        }
        let dcfg = emulator.for_direction(dir);
        let seed = seed
            ^ (egress as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ salt.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let emu = Emulator::from_config(&dcfg, seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.name()))?;
        let logs = trace_logs(&dcfg, dir);
        scheds[egress] = Some(Sched {
            dir,
            cfg: dcfg,
            emu,
            queued: 0,
            logs,
        });
    }
    Ok(scheds)
}

/// The packet logs of `cfg`'s trace-driven pipes in direction `dir`: the
/// file named by `trace_log` (with `.b-to-a` appended for B→A, so that a
/// pipe used both ways writes two), and Mahimahi's header.
fn trace_logs(cfg: &Config, dir: Direction) -> Vec<crate::tracelog::LogTarget> {
    // The wall clock when the run started (log times count from there,
    // across reloads).
    static RUN_START_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let init_ms = *RUN_START_MS.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    });
    cfg.pipes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let t = p.trace.as_ref()?;
            let log = t.log.as_ref()?;
            let path = match dir {
                Direction::AToB => log.clone(),
                Direction::BToA => format!("{log}.b-to-a"),
            };
            let link = format!("{} {}", p.name, dir.name());
            Some(crate::tracelog::LogTarget {
                pipe: i,
                path: path.into(),
                header: sched::emu::trace::log_header(&link, &t.file, init_ms).into(),
            })
        })
        .collect()
}
