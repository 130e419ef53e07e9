//! Opening the AF_XDP setup, one step per function: the UMEM, the XDP
//! programs, the lanes and their books, binding one socket per (port, queue)
//! and splitting its ring halves between lanes, pre-filling the fill rings,
//! and only then attaching the programs.

use crate::frames::{new_umem_id, Book};
use crate::lane::{Lane, Port};
use crate::params::{BindMode, NoSocket, XskError, XskParams, MAX_QUEUES};
use crate::program::XdpProgram;
use std::num::NonZeroU32;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FrameDesc, Socket, TxQueue, Umem};

/// The XDP programs, and the UMEM's lanes until the caller takes them.
pub struct Xsk {
    /// Our XDP program on each port, dropped (detached) first on a clean exit,
    /// so that no frame fails open while the sockets close.
    programs: Vec<XdpProgram>,
    /// The lanes (put them back before the `Xsk` drops, so that the programs
    /// detach before the sockets close).
    pub lanes: Vec<Lane>,
    /// Ring halves no lane drives (the TX side of queues > 0): kept open.
    _idle: Vec<(TxQueue, CompQueue)>,
    frames: usize,
}

impl std::fmt::Debug for Xsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xsk")
            .field("lanes", &self.lanes)
            .field("frames", &self.frames)
            .finish()
    }
}

/// How sockets map onto lanes: for the socket of (side, queue), the lane
/// that receives on it and the lane that transmits on it (None: nobody).
pub trait LanePlan {
    /// Lanes to create (≥ 1).
    fn lanes(&self) -> usize;
    /// The lane receiving on (side, queue).
    fn rx_lane(&self, side: usize, queue: u32) -> usize;
    /// The lane transmitting on (side, queue), if any.
    fn tx_lane(&self, side: usize, queue: u32) -> Option<usize>;
}

/// One lane drives everything (one thread).
#[derive(Debug, Clone, Copy)]
pub struct OneLane;

impl LanePlan for OneLane {
    fn lanes(&self) -> usize {
        1
    }
    fn rx_lane(&self, _: usize, _: u32) -> usize {
        0
    }
    fn tx_lane(&self, _: usize, _: u32) -> Option<usize> {
        Some(0)
    }
}

fn cfg_err(what: &'static str, value: u32, why: &'static str) -> XskError {
    XskError::Config { what, value, why }
}

/// The UMEM of `p.frames` frames of `p.frame_size`, with its descriptors,
/// and the ring size every ring gets.
fn make_umem(p: &XskParams, nlanes: usize) -> Result<(Umem, Vec<FrameDesc>, QueueSize), XskError> {
    let frame_size = FrameSize::new(p.frame_size).map_err(|_| {
        cfg_err(
            "frame size",
            p.frame_size,
            "must be a power of two in 2048..=4096",
        )
    })?;
    let ring = QueueSize::new(p.ring_size)
        .map_err(|_| cfg_err("ring size", p.ring_size, "must be a power of two"))?;
    let frames = NonZeroU32::new(p.frames).ok_or(cfg_err("frames", 0, "must be at least 1"))?;
    if p.frames / (nlanes as u32) < 16 {
        return Err(cfg_err(
            "frames",
            p.frames,
            "too few for the worker lanes (16 each at least)",
        ));
    }
    let umem_cfg = UmemConfig::builder()
        .frame_size(frame_size)
        .fill_queue_size(ring)
        .comp_queue_size(ring)
        .build()
        .map_err(|_| {
            cfg_err(
                "frame size",
                p.frame_size,
                "rejected by the UMEM configuration",
            )
        })?;
    let (umem, descs) = Umem::new(umem_cfg, frames, false).map_err(|source| XskError::Umem {
        frames: p.frames,
        frame_size: p.frame_size,
        source,
    })?;
    Ok((umem, descs, ring))
}

/// Our program for each port (loaded, not attached): with two ports and
/// [`NoSocket::Peer`] each fails open to the other, otherwise to the stack,
/// or drops.
fn load_programs(
    ifaces: &[String],
    indexes: &[u32],
    no_socket: NoSocket,
) -> Result<Vec<XdpProgram>, XskError> {
    ifaces
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let peer = (indexes.len() == 2 && no_socket == NoSocket::Peer).then(|| indexes[1 - i]);
            XdpProgram::load(indexes[i], peer, no_socket == NoSocket::Drop).map_err(|source| {
                XskError::Program {
                    iface: name.clone(),
                    source,
                }
            })
        })
        .collect()
}

/// `nlanes` lanes over the UMEM, each with its book (its share of the frames
/// free) and no ports yet.
fn make_lanes(umem: &Umem, descs: &[FrameDesc], p: &XskParams, nlanes: usize) -> Vec<Lane> {
    let umem_id = new_umem_id();
    let n = descs.len() as u32;
    (0..nlanes)
        .map(|id| Lane {
            id,
            umem: umem.clone(),
            frame_size: p.frame_size,
            ring_size: p.ring_size,
            ports: Vec::new(),
            descs: descs.to_vec(),
            book: Book::new(id, nlanes, n, umem_id),
            pollfds: Vec::new(),
            sockets: 0,
        })
        .collect()
}

/// A bound socket's rings: TX, RX, and fill + completion (the first socket
/// of a UMEM on a device gets them).
type Bound = (
    TxQueue,
    xsk_rs::RxQueue,
    Option<(xsk_rs::FillQueue, CompQueue)>,
);

/// Binds a socket to (`name`, `queue`) on `umem`. A socket that a process
/// just closed on this queue is torn down by the kernel a moment later;
/// until then binding answers EBUSY: waits for it (bounded: 2 s), as a user
/// re-running a command would.
fn bind(cfg: SocketConfig, umem: &Umem, name: &str, queue: u32) -> Result<Bound, XskError> {
    let iface: Interface = name
        .parse()
        .map_err(|_| XskError::BadName(name.to_string()))?;
    let mut attempt = 0;
    loop {
        // SAFETY: each (interface, queue) pair is bound once, so libxdp loads its
        // default program for it and the INHIBIT_PROG_LOAD rule of `Socket::new` does
        // not apply; every socket holds a handle on the UMEM, which therefore outlives
        // it.
        match unsafe { Socket::new(cfg, umem, &iface, queue) } {
            Ok(r) => return Ok(r),
            Err(e) if attempt < 40 && is_busy(&e) => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(source) => {
                return Err(XskError::Socket {
                    iface: name.to_string(),
                    queue,
                    source,
                })
            }
        }
    }
}

/// Whether socket creation failed with EBUSY (the queue's previous socket is
/// still being torn down).
fn is_busy(e: &xsk_rs::socket::SocketCreateError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error)
        == Some(16)
}

/// Pre-fills every lane's fill rings (a frame the program steers to a socket
/// with an empty fill ring is dropped: the first frames of a run were) and
/// records the sockets each lane waits on.
fn prefill(lanes: &mut [Lane], ring_size: u32) {
    let mut scratch = Vec::new();
    for lane in lanes {
        lane.pollfds = lane
            .ports
            .iter()
            .filter_map(|p| p.rx.as_ref())
            .map(|(rx, _)| nix::libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(rx.fd()),
                events: nix::libc::POLLIN,
                revents: 0,
            })
            .collect();
        lane.sockets = lane.pollfds.len();
        let receiving = lane.ports.iter().filter(|p| p.receives()).count();
        let fill = (ring_size as usize).min(lane.total_frames() / (receiving + 1));
        for i in 0..lane.ports.len() {
            lane.refill(i, fill, &mut scratch);
        }
    }
}

impl Xsk {
    /// Creates the UMEM and binds one socket per (interface, queue), all
    /// driven by one lane.
    pub fn open(ifaces: &[String], p: &XskParams) -> Result<Self, XskError> {
        Self::open_lanes(ifaces, p, &OneLane)
    }

    /// Creates the UMEM, binds one socket per (interface, queue) and splits
    /// frames and ring halves into lanes as `plan` says; every lane's fill
    /// rings are filled before the programs attach.
    pub fn open_lanes(
        ifaces: &[String],
        p: &XskParams,
        plan: &dyn LanePlan,
    ) -> Result<Self, XskError> {
        let nlanes = plan.lanes().max(1);
        let (umem, descs, ring) = make_umem(p, nlanes)?;
        // Our own program (fail-open), not libxdp's default one.
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            .bind_flags(
                BindFlags::XDP_USE_NEED_WAKEUP
                    | match p.bind {
                        BindMode::Auto => BindFlags::empty(),
                        BindMode::Copy => BindFlags::XDP_COPY,
                        BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
                    },
            )
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .build();
        // By ioctl, not /sys: correct in the calling thread's network namespace
        // (xdpgen enters one per port with setns).
        let indexes = ifaces
            .iter()
            .map(|n| {
                nix::net::if_::if_nametoindex(n.as_str()).map_err(|_| XskError::BadName(n.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut programs = load_programs(ifaces, &indexes, p.no_socket)?;
        if p.queues == 0 || p.queues > MAX_QUEUES {
            return Err(cfg_err("queues", p.queues, "must be 1..=64"));
        }
        let n = descs.len();
        let mut lanes = make_lanes(&umem, &descs, p, nlanes);
        let mut idle = Vec::new();
        for (side, name) in ifaces.iter().enumerate() {
            for queue in 0..p.queues {
                let (tx, rx, fq_cq) = bind(sock_cfg, &umem, name, queue).map_err(|e| match e {
                    XskError::Socket {
                        iface,
                        queue,
                        source,
                    } if p.bind == BindMode::ZeroCopy => XskError::NoZeroCopy {
                        iface,
                        queue,
                        source,
                    },
                    e => e,
                })?;
                let zero_copy = crate::kernel::is_zero_copy(rx.fd()).unwrap_or(false);
                let Some((fq, cq)) = fq_cq else {
                    return Err(cfg_err(
                        "interface",
                        0,
                        "bound twice (no fill/completion rings returned)",
                    ));
                };
                // Steer the queue's frames to this socket (our program fails open without it).
                programs[side]
                    .bind_socket(queue, std::os::fd::AsRawFd::as_raw_fd(rx.fd()))
                    .map_err(|source| XskError::Program {
                        iface: name.clone(),
                        source,
                    })?;
                let port = |rx, tx| Port {
                    name: name.clone(),
                    side,
                    queue,
                    in_flight: 0,
                    zero_copy,
                    rx,
                    tx,
                };
                // The ring split: RX + fill to the receiving lane, TX + completion to
                // the transmitting one.
                let rl = plan.rx_lane(side, queue).min(nlanes - 1);
                match plan.tx_lane(side, queue).map(|l| l.min(nlanes - 1)) {
                    Some(tl) if tl == rl => {
                        lanes[rl].ports.push(port(Some((rx, fq)), Some((tx, cq))))
                    }
                    Some(tl) => {
                        lanes[rl].ports.push(port(Some((rx, fq)), None));
                        lanes[tl].ports.push(port(None, Some((tx, cq))));
                    }
                    None => {
                        lanes[rl].ports.push(port(Some((rx, fq)), None));
                        idle.push((tx, cq));
                    }
                }
            }
        }
        prefill(&mut lanes, p.ring_size);
        // Sockets are in their maps: only now may frames meet the programs.
        for (prog, name) in programs.iter_mut().zip(ifaces) {
            prog.attach(p.mode).map_err(|source| XskError::Program {
                iface: name.clone(),
                source,
            })?;
        }
        Ok(Self {
            programs,
            lanes,
            _idle: idle,
            frames: n,
        })
    }

    /// Per port (in the order given to `open`): how its XDP program is
    /// attached ("native" or "skb") and whether every socket on it runs in
    /// zero-copy mode.
    pub fn port_modes(&self) -> Vec<(&'static str, bool)> {
        self.programs
            .iter()
            .enumerate()
            .map(|(side, prog)| {
                let zc = self
                    .lanes
                    .iter()
                    .flat_map(|l| &l.ports)
                    .filter(|p| p.side == side && p.receives())
                    .all(|p| p.zero_copy);
                (prog.attached_mode(), zc)
            })
            .collect()
    }

    /// Frames in the UMEM.
    pub fn total_frames(&self) -> usize {
        self.frames
    }

    /// Per port: frames our XDP program sent (to the socket, failed open).
    pub fn program_counters(&self) -> Vec<(u64, u64)> {
        self.programs.iter().map(XdpProgram::counters).collect()
    }

    /// Takes the sockets out of every port's program (see
    /// [`XdpProgram::unbind_sockets`]): the first step of a stop that loses
    /// no frame in the kernel.
    pub fn unbind_sockets(&self) -> Result<(), std::io::Error> {
        for p in &self.programs {
            p.unbind_sockets()?;
        }
        Ok(())
    }
}
