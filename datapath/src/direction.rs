//! A scheduled direction (A→B, or B→A when the configuration schedules
//! it): its configuration and its emulator, built at start for the egress
//! port it leaves by, and what the emulator queues ([`Desc`]).

use sched::config::{Config, Direction};
use sched::emu::Emulator;
use sched::Packet;

/// What the scheduler queues: a UMEM frame number and the packet length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Desc {
    /// Frame number in the UMEM.
    pub frame: u32,
    /// Packet length in bytes.
    pub len: u32,
    /// When it reached the emulator (the run's clock, ns): for the queue
    /// delay a capture reports.
    pub arrived: u64,
}

impl Packet for Desc {
    #[inline]
    fn len(&self) -> u32 {
        self.len
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
}

/// The scheduled directions of `emulator`, by egress side: A→B leaves on B
/// (on A when reflecting), B→A on A when the configuration schedules it.
/// `salt` varies the seeds (of the loss models): 0 at start, the reload's
/// number at a reload.
pub(crate) fn directions(
    emulator: &Config,
    bridge: bool,
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
        let seed = 0x5eed_1234
            ^ (egress as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ salt.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let emu = Emulator::from_config(&dcfg, seed)
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.name()))?;
        scheds[egress] = Some(Sched {
            dir,
            cfg: dcfg,
            emu,
            queued: 0,
        });
    }
    Ok(scheds)
}
