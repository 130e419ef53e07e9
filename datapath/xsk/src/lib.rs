//! The AF_XDP layer of xdpsched and xdpgen — the project's only code with
//! `unsafe` (every block carries a `// SAFETY:` comment); both programs
//! forbid it.
//!
//! One UMEM is shared by the sockets of every port (two for a bridge, one
//! for reflect), so a frame received on one port is transmitted on another
//! without a copy (checked to work on veth here, see shared/TESTBED-NOTES).
//!
//! **Frame ownership.** Every UMEM frame is, at any time, in exactly one
//! place: the free list, a fill ring (kernel), the RX ring (kernel → us),
//! the scheduler (a queued descriptor), a TX ring or a completion ring
//! (kernel). [`Ledger`] counts the frames handed to and taken back from the
//! kernel; `free + away + fill + tx + queued == total` (summed over lanes)
//! is checked after traffic.
//! The rules that make the `unsafe` calls sound follow from that: a frame is
//! given to the kernel (fill/TX) only when we own it (it came from the free
//! list, the RX ring or the scheduler), and touched only between being taken
//! back (RX/completion) and being given again.
//!
//! A [`Lane`] enforces those rules itself rather than trusting its caller:
//! it keeps each frame's spot (on its free list, held by the caller, waiting
//! to go home, or out: with the kernel or another lane), and every method
//! that reads, writes, frees or submits a frame asserts the spot it expects
//! and moves it (an `assert!`: a violation is a bug in the program, not bad
//! input, and the alternative is a data race with the kernel or another
//! thread). So a frame cannot be released twice, submitted twice (even
//! listed twice in one batch), or submitted from the free list.
//! Frames move between lanes only as [`Handoff`] and [`Homeward`] tokens,
//! which only a lane can make, cannot be copied, and clear the sender's mark.

pub mod netns;

use std::num::NonZeroU32;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, RxQueue, Socket, TxQueue, Umem};
/// A frame's descriptor (address and lengths), as the rings carry it.
pub use xsk_rs::FrameDesc;

/// Errors setting up AF_XDP.
#[derive(Debug, thiserror::Error)]
pub enum XskError {
    /// A size is not acceptable to the kernel.
    #[error("{what} = {value}: {why}")]
    Config {
        /// The parameter.
        what: &'static str,
        /// Its value.
        value: u32,
        /// Why not.
        why: &'static str,
    },
    /// The UMEM could not be created.
    #[error("creating the UMEM ({frames} frames of {frame_size} B) failed: {source}")]
    Umem {
        /// Frames requested.
        frames: u32,
        /// Frame size.
        frame_size: u32,
        /// The library's error.
        source: xsk_rs::umem::UmemCreateError,
    },
    /// Loading or attaching our XDP program failed.
    #[error("attaching the XDP program to {iface} failed: {source}")]
    Program {
        /// Interface.
        iface: String,
        /// The error.
        source: std::io::Error,
    },
    /// Binding the socket failed (missing interface, no privileges, XDP mode
    /// not supported, ...).
    #[error("binding an AF_XDP socket to {iface} queue {queue} failed: {source}")]
    Socket {
        /// Interface.
        iface: String,
        /// RX queue.
        queue: u32,
        /// The library's error.
        source: xsk_rs::socket::SocketCreateError,
    },
    /// The interface name is not valid.
    #[error("interface name {0:?} is not valid")]
    BadName(String),
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    Auto,
    /// Driver (native) mode.
    Native,
    /// Generic (skb) mode.
    Skb,
}

/// Sizes of the UMEM and rings.
#[derive(Debug, Clone, Copy)]
pub struct XskParams {
    /// Bytes per UMEM frame (power of two, 2048 or 4096).
    pub frame_size: u32,
    /// Frames in the UMEM (shared by all ports).
    pub frames: u32,
    /// Entries per ring (power of two).
    pub ring_size: u32,
    /// XDP attach mode.
    pub mode: XdpMode,
    /// RX queues served per interface (0..queues), one socket each.
    pub queues: u32,
    /// What the XDP program does with a frame that finds no socket (the
    /// program outlived its process, or the queue is not served).
    pub no_socket: NoSocket,
}

/// The XDP program's action for frames that find no AF_XDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSocket {
    /// Redirect to the other port when there are two (DEVMAP; into a veth
    /// only if its peer has NAPI: GRO on or an XDP program), else pass to
    /// the kernel stack.
    Peer,
    /// Pass to the kernel stack (where a kernel bridge may forward it).
    Pass,
    /// Drop (fail closed).
    Drop,
}

/// Size of every AF_XDP ring for a UMEM of `frames` frames: a quarter of
/// them, as a power of two in 64..=4096.
pub fn ring_size_for(frames: u32) -> u32 {
    (frames / 4).next_power_of_two().clamp(64, 4096)
}

/// Most `sendto` kicks per [`Lane::kick`] (copy mode sends 32 frames per kick).
const MAX_KICKS: usize = 8;

/// Most RX queues served per interface (the XSKMAP's size).
pub const MAX_QUEUES: u32 = 64;

/// One port: an AF_XDP socket bound to (interface, queue), or the halves of
/// it that one [`Lane`] uses: the receive half (RX and fill rings) and the
/// transmit half (TX and completion rings) can belong to different lanes,
/// since each ring has one producer and one consumer.
pub struct Port {
    /// Interface name.
    pub name: String,
    /// Which interface of those given to [`Xsk::open`] (0: the first).
    pub side: usize,
    /// RX queue.
    pub queue: u32,
    /// Frames in this port's TX ring or awaiting completion.
    pub in_flight: u64,
    rx: Option<(RxQueue, FillQueue)>,
    tx: Option<(TxQueue, CompQueue)>,
}

impl Port {
    /// Whether this lane receives on the port.
    pub fn receives(&self) -> bool {
        self.rx.is_some()
    }

    /// Whether this lane transmits on the port.
    pub fn transmits(&self) -> bool {
        self.tx.is_some()
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("rx", &self.rx.is_some())
            .field("tx", &self.tx.is_some())
            .finish()
    }
}

/// Frames handed to and taken back from the kernel, per lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Frames in fill rings (given, not yet received).
    pub in_fill: u64,
    /// Frames in TX rings or awaiting completion.
    pub in_tx: u64,
    /// Frames received.
    pub rx: u64,
    /// Frames transmitted (completed).
    pub tx_done: u64,
}

/// A frame (holding a packet) on its way from the lane that received it to
/// the lane that transmits it. Made only by [`Lane::hand_over`], taken only
/// by [`Lane::adopt`]; not `Clone`, so a frame has one holder at a time.
#[derive(Debug)]
pub struct Handoff {
    umem: u64,
    desc: FrameDesc,
}

/// A frame going back to the lane it belongs to: made only by
/// [`Lane::send_away`], taken only by [`Lane::take_back`].
#[derive(Debug)]
pub struct Homeward {
    umem: u64,
    frame: u32,
}

/// Where a frame is, as one lane sees it. Every method that moves a frame
/// asserts the spot it expects and sets the new one, so a frame cannot be
/// released twice, sent while free, or given to the kernel twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spot {
    /// With the kernel (fill, RX, TX or completion ring) or another lane.
    Out,
    /// On this lane's free list.
    Free,
    /// Held by this lane's caller: holding a packet, or taken off the free
    /// list to build one.
    Held,
    /// Another lane's frame, waiting in `away` to go home.
    Away,
}

/// Numbers UMEMs, so that a token is never taken by a lane of another one.
static UMEM_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What one thread owns: a share of the UMEM's frames and the ring halves it
/// drives. A frame always returns to the lane it came from (its *origin*,
/// fixed by its number): frames this lane takes back that belong to another
/// lane wait until [`Lane::send_away`] hands them over.
pub struct Lane {
    /// The lane's number.
    pub id: usize,
    umem: Umem,
    frame_size: u32,
    ring_size: u32,
    /// Frames per lane (the last lane also owns the remainder).
    span: u32,
    lanes: usize,
    own: u32,
    /// The ports this lane has a half of.
    pub ports: Vec<Port>,
    /// Which UMEM (for tokens).
    umem_id: u64,
    /// Descriptor of every UMEM frame, indexed by frame number; meaningful
    /// for the frames this lane holds (kept with the lengths of the packet).
    descs: Vec<FrameDesc>,
    /// Per UMEM frame: where it is as far as this lane knows.
    spot: Vec<Spot>,
    /// Frames of this lane that it holds and that hold no packet.
    free: Vec<u32>,
    /// Frames of other lanes taken back here (completed or dropped), to be
    /// returned to their origin.
    away: Vec<u32>,
    /// Kernel accounting of this lane's rings.
    pub ledger: Ledger,
    /// The sockets this lane receives on (the first `sockets`), then the
    /// descriptors it was asked to [`Lane::watch`], for idle waits.
    pollfds: Vec<nix::libc::pollfd>,
    sockets: usize,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("id", &self.id)
            .field("ports", &self.ports)
            .field("frames", &self.own)
            .field("free", &self.free.len())
            .field("ledger", &self.ledger)
            .finish()
    }
}

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
        let cfg_err = |what, value, why| XskError::Config { what, value, why };
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
        let nlanes = plan.lanes().max(1);
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
        let (umem, descs) =
            Umem::new(umem_cfg, frames, false).map_err(|source| XskError::Umem {
                frames: p.frames,
                frame_size: p.frame_size,
                source,
            })?;
        // Our own program (fail-open), not libxdp's default one.
        let sock_cfg = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .build();
        // By ioctl, not /sys: correct in the calling thread's network namespace
        // (xdpgen enters one per port with setns).
        let ifindex = |name: &str| -> Result<u32, XskError> {
            nix::net::if_::if_nametoindex(name).map_err(|_| XskError::BadName(name.to_string()))
        };
        let indexes = ifaces
            .iter()
            .map(|n| ifindex(n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut programs = Vec::with_capacity(ifaces.len());
        for (i, name) in ifaces.iter().enumerate() {
            // Two ports with NoSocket::Peer: each fails open to the other;
            // otherwise to the stack, or dropped.
            let peer =
                (indexes.len() == 2 && p.no_socket == NoSocket::Peer).then(|| indexes[1 - i]);
            let closed = p.no_socket == NoSocket::Drop;
            let prog =
                XdpProgram::load(indexes[i], peer, closed).map_err(|source| XskError::Program {
                    iface: name.clone(),
                    source,
                })?;
            programs.push(prog);
        }
        if p.queues == 0 || p.queues > MAX_QUEUES {
            return Err(cfg_err("queues", p.queues, "must be 1..=64"));
        }
        let n = descs.len() as u32;
        let span = n / nlanes as u32;
        let umem_id = UMEM_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut lanes: Vec<Lane> = (0..nlanes)
            .map(|id| {
                let lo = id as u32 * span;
                let hi = if id + 1 == nlanes { n } else { lo + span };
                Lane {
                    id,
                    umem: umem.clone(),
                    frame_size: p.frame_size,
                    ring_size: p.ring_size,
                    span,
                    lanes: nlanes,
                    own: hi - lo,
                    ports: Vec::new(),
                    umem_id,
                    descs: descs.clone(),
                    spot: (0..n)
                        .map(|f| {
                            if (lo..hi).contains(&f) {
                                Spot::Free
                            } else {
                                Spot::Out
                            }
                        })
                        .collect(),
                    free: (lo..hi).rev().collect(),
                    away: Vec::new(),
                    ledger: Ledger::default(),
                    pollfds: Vec::new(),
                    sockets: 0,
                }
            })
            .collect();
        let mut idle = Vec::new();
        for (side, name) in ifaces.iter().enumerate() {
            for queue in 0..p.queues {
                let iface: Interface = name.parse().map_err(|_| XskError::BadName(name.clone()))?;
                // A socket that a process just closed on this queue is torn down by the
                // kernel a moment later; until then binding answers EBUSY. Wait for it
                // (bounded: 2 s), as a user re-running a command would.
                let mut attempt = 0;
                let (tx, rx, fq_cq) = loop {
                    // SAFETY: each (interface, queue) pair is bound once, so libxdp loads its
                    // default program for it and the INHIBIT_PROG_LOAD rule of `Socket::new`
                    // does not apply; every socket holds a handle on the UMEM, which
                    // therefore outlives it.
                    match unsafe { Socket::new(sock_cfg, &umem, &iface, queue) } {
                        Ok(r) => break r,
                        Err(e) if attempt < 40 && is_busy(&e) => {
                            attempt += 1;
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                        Err(source) => {
                            return Err(XskError::Socket {
                                iface: name.clone(),
                                queue,
                                source,
                            })
                        }
                    }
                };
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
                    rx,
                    tx,
                };
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
        // Fill rings first: a frame the program steers to a socket with an empty
        // fill ring is dropped (the first frames of a run were).
        let mut scratch = Vec::new();
        for lane in &mut lanes {
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
            let fill = (p.ring_size as usize).min(lane.own as usize / (receiving + 1));
            for i in 0..lane.ports.len() {
                lane.refill(i, fill, &mut scratch);
            }
        }
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
            frames: n as usize,
        })
    }

    /// Frames in the UMEM.
    pub fn total_frames(&self) -> usize {
        self.frames
    }

    /// Per port: frames our XDP program sent (to the socket, failed open).
    pub fn program_counters(&self) -> Vec<(u64, u64)> {
        self.programs.iter().map(XdpProgram::counters).collect()
    }
}

/// Moves frame `i` of lane `lane` from spot `from` to `to`; panics if it is
/// elsewhere (a free function so that it borrows only the spots).
#[inline]
fn shift(spot: &mut [Spot], lane: usize, i: usize, from: Spot, to: Spot) {
    match spot.get_mut(i) {
        Some(s) if *s == from => *s = to,
        at => panic!("lane {lane}: frame {i} is {at:?}, not {from:?}"),
    }
}

/// The lane of frame `i` when each of `lanes` lanes owns `span` frames (the
/// last one also the remainder).
#[inline]
fn origin_of(i: u32, span: u32, lanes: usize) -> usize {
    ((i / span) as usize).min(lanes - 1)
}

impl Lane {
    /// Frames this lane owns.
    pub fn total_frames(&self) -> usize {
        self.own as usize
    }

    /// The lane frame `i` belongs to.
    #[inline]
    pub fn origin(&self, i: u32) -> usize {
        origin_of(i, self.span, self.lanes)
    }

    /// Panics unless this lane's caller holds frame `i` (see the module's notes).
    #[inline]
    fn check(&self, i: u32) {
        let at = self.spot.get(i as usize).copied();
        assert!(
            at == Some(Spot::Held),
            "lane {}: frame {i} is {at:?}, not held",
            self.id
        );
    }

    /// Moves frame `i` from spot `from` to `to`; panics if it is elsewhere.
    #[inline]
    fn shift(&mut self, i: usize, from: Spot, to: Spot) {
        shift(&mut self.spot, self.id, i, from, to);
    }

    /// Takes frame `i` back as no longer holding a packet: onto the free list
    /// if it is this lane's, else among the frames to send home.
    #[inline]
    pub fn release(&mut self, i: u32) {
        if self.origin(i) == self.id {
            self.shift(i as usize, Spot::Held, Spot::Free);
            self.free.push(i);
        } else {
            self.shift(i as usize, Spot::Held, Spot::Away);
            self.away.push(i);
        }
    }

    /// Sends the other lanes' frames home: `home(origin, token)` for each;
    /// the lane `origin` takes it with [`Lane::take_back`].
    pub fn send_away(&mut self, mut home: impl FnMut(usize, Homeward)) {
        let (span, lanes) = (self.span, self.lanes);
        for f in std::mem::take(&mut self.away) {
            self.shift(f as usize, Spot::Away, Spot::Out);
            let t = Homeward {
                umem: self.umem_id,
                frame: f,
            };
            home(origin_of(f, span, lanes), t);
        }
    }

    /// Takes back one of its frames from another lane (onto the free list).
    #[inline]
    pub fn take_back(&mut self, t: Homeward) {
        assert_eq!(t.umem, self.umem_id, "a frame of another UMEM");
        self.shift(t.frame as usize, Spot::Out, Spot::Held);
        self.release(t.frame);
    }

    /// Gives frame `i` (holding a packet) to another lane.
    #[inline]
    pub fn hand_over(&mut self, i: u32) -> Handoff {
        self.shift(i as usize, Spot::Held, Spot::Out);
        Handoff {
            umem: self.umem_id,
            desc: self.descs[i as usize],
        }
    }

    /// Takes over a frame (holding a packet) another lane received and
    /// handed over: records its descriptor and returns its number.
    #[inline]
    pub fn adopt(&mut self, t: Handoff) -> u32 {
        assert_eq!(t.umem, self.umem_id, "a frame of another UMEM");
        let i = t.desc.addr() / self.frame_size as usize;
        self.shift(i, Spot::Out, Spot::Held);
        self.descs[i] = t.desc;
        i as u32
    }

    /// A free frame of this lane (to build a packet in), if any.
    #[inline]
    pub fn pop_free(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        self.shift(i as usize, Spot::Free, Spot::Held);
        Some(i)
    }

    /// Free frames on hand.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// The packet length of frame `i` (held by this lane).
    #[inline]
    pub fn frame_len(&self, i: u32) -> u32 {
        self.check(i);
        self.descs[i as usize].lengths().data() as u32
    }

    /// Gives up to `max` free frames to port `p`'s fill ring (if this lane
    /// receives on it).
    pub fn refill(&mut self, p: usize, max: usize, scratch: &mut Vec<FrameDesc>) {
        let Some((_, fq)) = self.ports[p].rx.as_mut() else {
            return;
        };
        let want = (fq.nb_free(max as u32) as usize)
            .min(max)
            .min(self.free.len());
        if want == 0 {
            return;
        }
        scratch.clear();
        let start = self.free.len() - want;
        scratch.extend(self.free[start..].iter().map(|&i| self.descs[i as usize]));
        for &i in &self.free[start..] {
            // A frame is on the free list once (release and take-back check it).
            debug_assert_eq!(self.spot[i as usize], Spot::Free);
        }
        // SAFETY: these frames came off our free list, so neither the kernel nor another
        // lane has them (a frame gets onto the free list only from `Held`, once, and
        // leaves it only here or through `pop_free`); they belong to this UMEM.
        let n = unsafe { fq.produce(scratch) };
        for i in self.free.drain(start..start + n) {
            self.spot[i as usize] = Spot::Out;
        }
        self.ledger.in_fill += n as u64;
    }

    /// Takes up to `scratch.len()` received frames from port `p`: their
    /// frame numbers (descriptor lengths updated in `descs`).
    pub fn receive(&mut self, p: usize, scratch: &mut [FrameDesc], out: &mut Vec<u32>) -> usize {
        let Some((rx, fq)) = self.ports[p].rx.as_mut() else {
            return 0;
        };
        // SAFETY: the descriptors written by `consume` describe frames the kernel hands
        // back to us from this socket's RX ring; we only record them.
        let n = unsafe { rx.consume(scratch) };
        for d in &scratch[..n] {
            let i = d.addr() / self.frame_size as usize;
            self.descs[i] = *d;
            shift(&mut self.spot, self.id, i, Spot::Out, Spot::Held);
            out.push(i as u32);
        }
        self.ledger.in_fill -= n as u64;
        self.ledger.rx += n as u64;
        if n == 0 && fq.needs_wakeup() {
            let fd = rx.fd_mut();
            let _ = fq.wakeup(fd, 0);
        }
        n
    }

    /// The packet bytes of frame `i` (valid until the frame is given back to the kernel).
    pub fn data(&self, i: u32) -> &[u8] {
        self.check(i);
        // SAFETY: this lane holds frame i (checked: received, adopted or free, not
        // given to the kernel or another lane since); it can be given away only through
        // `&mut self`, so neither the kernel nor another lane writes it while the
        // returned borrow of `self` lives.
        unsafe { self.umem.data(&self.descs[i as usize]) }.contents()
    }

    /// Runs `f` on the packet bytes of frame `i`, writable (for MAC rewriting).
    pub fn with_data_mut<R>(&mut self, i: u32, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.check(i);
        let d = &mut self.descs[i as usize];
        // SAFETY: this lane holds frame i (checked: neither the kernel nor another lane
        // has it), and `&mut self` makes this the only reference to the frame while `f`
        // runs.
        let mut data = unsafe { self.umem.data_mut(d) };
        f(data.contents_mut())
    }

    /// Sets frame `i`'s packet length to `len` (capped at what the frame
    /// holds) and runs `f` on its bytes: for building a packet to send.
    pub fn with_frame_mut<R>(&mut self, i: u32, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.check(i);
        let d = &mut self.descs[i as usize];
        // SAFETY: this lane holds frame i (checked: neither the kernel nor another lane
        // has it), and `&mut self` makes this the only reference to the frame while `f`
        // runs.
        let mut data = unsafe { self.umem.data_mut(d) };
        data.cursor().set_pos(len);
        f(data.contents_mut())
    }

    /// Submits frames to port `p`'s TX ring, as many as fit; returns how many
    /// (none if this lane does not transmit on `p`).
    pub fn transmit(&mut self, p: usize, frames: &[u32], scratch: &mut Vec<FrameDesc>) -> usize {
        let port = &mut self.ports[p];
        let Some((tx, _)) = port.tx.as_mut() else {
            return 0;
        };
        let room = tx.nb_free(frames.len() as u32) as usize;
        let n = room.min(frames.len());
        if n > 0 {
            scratch.clear();
            for &i in &frames[..n] {
                // One at a time: a frame listed twice is no longer held the second time.
                shift(&mut self.spot, self.id, i as usize, Spot::Held, Spot::Out);
                scratch.push(self.descs[i as usize]);
            }
            // SAFETY: this lane's caller held these frames (checked, each once: not in any
            // ring, not with another lane), and they belong to this UMEM.
            let done = unsafe { tx.produce(scratch) };
            debug_assert_eq!(done, n);
            for &i in &frames[done..n] {
                self.spot[i as usize] = Spot::Held;
            }
            self.ledger.in_tx += done as u64;
            port.in_flight += done as u64;
            // `produce` takes all or none; report what it took either way.
            return done;
        }
        0
    }

    /// Kicks port `p`'s TX if frames wait in its TX ring; returns whether
    /// the kernel took any (the caller's loop is busy only then). In copy
    /// mode one kick sends a bounded batch (32 frames, then EAGAIN), so this
    /// kicks until the ring drains, at most [`MAX_KICKS`] times, and the loop
    /// must call it every iteration while frames wait, not only when it
    /// submits: otherwise a burst waits for the next arrival and TCP stalls.
    /// A kick the kernel takes nothing from (the device's queue is full: the
    /// receiving side has not caught up) ends the round, so that a worker
    /// does not spin on a busy device while the CPU is needed by whoever
    /// drains it. Frames waiting for the completion ring but no longer in the
    /// TX ring need no kick: the kernel has taken them.
    pub fn kick(&mut self, p: usize) -> bool {
        let ring = self.ring_size;
        let port = &mut self.ports[p];
        let Some((tx, _)) = port.tx.as_mut() else {
            return false;
        };
        if port.in_flight == 0 {
            return false;
        }
        let mut free = tx.nb_free_exact();
        let mut took = false;
        for _ in 0..MAX_KICKS {
            if free >= ring {
                break;
            }
            let _ = tx.wakeup();
            let now = tx.nb_free_exact();
            if now == free {
                break;
            }
            took = true;
            free = now;
        }
        took
    }

    /// Takes back completed TX frames of port `p` (see [`Lane::release`]).
    pub fn complete(&mut self, p: usize, scratch: &mut [FrameDesc]) -> usize {
        let port = &mut self.ports[p];
        let Some((_, cq)) = port.tx.as_mut() else {
            return 0;
        };
        // SAFETY: completion descriptors describe frames the kernel has finished sending
        // and hands back to us.
        let n = unsafe { cq.consume(scratch) };
        port.in_flight -= n as u64;
        let fs = self.frame_size as usize;
        for d in &scratch[..n] {
            let i = d.addr() / fs;
            self.shift(i, Spot::Out, Spot::Held);
            self.release(i as u32);
        }
        self.ledger.in_tx -= n as u64;
        self.ledger.tx_done += n as u64;
        n
    }

    /// Sleeps until a frame arrives on one of the sockets this lane receives
    /// on, a watched descriptor becomes readable, or `timeout` passes (the
    /// kernel wakes AF_XDP pollers when it puts frames in an RX ring). A lane
    /// that waits on nothing just sleeps. Returns whether a watched
    /// descriptor was readable.
    pub fn wait_rx(&mut self, timeout: std::time::Duration) -> bool {
        for p in &mut self.pollfds {
            p.revents = 0;
        }
        let ts = nix::libc::timespec {
            tv_sec: timeout.as_secs().min(3600) as nix::libc::time_t,
            tv_nsec: timeout.subsec_nanos() as nix::libc::c_long,
        };
        // SAFETY: `pollfds` is an array of `len()` initialised entries that lives for the
        // call; ppoll only reads the fds and writes `revents` (a socket of this lane's, or
        // a watched fd: one closed meanwhile is reported POLLNVAL, nothing worse); `ts` is
        // a valid timespec and a null signal mask is allowed. The result (ready count or
        // EINTR) needs no handling: the caller looks at the rings and `revents` anyway.
        unsafe {
            nix::libc::ppoll(
                self.pollfds.as_mut_ptr(),
                self.pollfds.len() as nix::libc::nfds_t,
                &ts,
                std::ptr::null(),
            );
        }
        self.pollfds[self.sockets..]
            .iter()
            .any(|p| p.revents & nix::libc::POLLIN != 0)
    }

    /// Turns on preferred busy polling on the sockets this lane receives on
    /// (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` = `usecs`, `SO_BUSY_POLL_BUDGET`
    /// = `budget`): when the lane polls ([`Lane::busy_poll`]) the kernel runs
    /// the device queue's NAPI in this thread instead of in softirq or a NAPI
    /// thread. For the kernel to leave NAPI to the poller between polls, the
    /// device needs `napi_defer_hard_irqs` and `gro_flush_timeout` set
    /// (sysfs); without them busy polling still works, NAPI just also runs as
    /// usual.
    pub fn enable_busy_poll(&mut self, usecs: u32, budget: u32) -> std::io::Result<()> {
        use nix::libc::{
            c_int, SOL_SOCKET, SO_BUSY_POLL, SO_BUSY_POLL_BUDGET, SO_PREFER_BUSY_POLL,
        };
        let opts = [
            (SO_PREFER_BUSY_POLL, 1),
            (SO_BUSY_POLL, usecs.min(c_int::MAX as u32) as c_int),
            (SO_BUSY_POLL_BUDGET, budget.min(u16::MAX as u32) as c_int),
        ];
        for p in &self.pollfds[..self.sockets] {
            for (opt, val) in opts {
                // SAFETY: `p.fd` is an open socket of this lane's; the option value is a
                // c_int that lives for the call, and its size is passed with it.
                let r = unsafe {
                    nix::libc::setsockopt(
                        p.fd,
                        SOL_SOCKET,
                        opt,
                        (&val as *const c_int).cast(),
                        std::mem::size_of::<c_int>() as nix::libc::socklen_t,
                    )
                };
                if r != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// Busy-polls the device queues behind this lane's receiving sockets
    /// once (a non-blocking `recvfrom` on each: with busy polling enabled the
    /// kernel runs their NAPI here and fills the RX rings).
    pub fn busy_poll(&mut self) {
        for p in &self.pollfds[..self.sockets] {
            // A zero-length receive is what AF_XDP's recvmsg expects (it copies
            // nothing); the result needs no handling: the caller reads the RX ring.
            let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT;
            let _ = nix::sys::socket::recv(p.fd, &mut [], flags);
        }
    }

    /// Adds `fd` to what [`Lane::wait_rx`] waits on (readable): an eventfd
    /// another thread writes to wake this lane. The caller keeps `fd` open
    /// while the lane may wait on it.
    pub fn watch(&mut self, fd: std::os::fd::RawFd) {
        self.pollfds.push(nix::libc::pollfd {
            fd,
            events: nix::libc::POLLIN,
            revents: 0,
        });
    }

    /// Frames the lane accounts for: free + away + in its fill rings + in its
    /// TX/completion rings.
    pub fn held(&self) -> u64 {
        (self.free.len() + self.away.len()) as u64 + self.ledger.in_fill + self.ledger.in_tx
    }

    /// For a lone lane: free + in fill rings + in TX/completion + `queued`
    /// (held by the caller) equals the frames it owns.
    pub fn balanced(&self, queued: usize) -> bool {
        self.held() + queued as u64 == self.own as u64
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

unsafe extern "C" fn quiet_libbpf(
    _level: libbpf_sys::libbpf_print_level,
    _fmt: *const std::os::raw::c_char,
    _ap: *mut libbpf_sys::__va_list_tag,
) -> std::os::raw::c_int {
    0
}

unsafe extern "C" fn quiet_libxdp(
    _level: libxdp_sys::libxdp_print_level,
    _fmt: *const std::os::raw::c_char,
    _ap: *mut libxdp_sys::__va_list_tag,
) -> std::os::raw::c_int {
    0
}

/// Silences libbpf's and libxdp's own logging (ELF section notices, the
/// dispatcher fallback when bpffs is missing): xdpsched reports failures
/// itself, with the errno. `--verbose` leaves the libraries' logging on.
pub fn quiet_library_logs() {
    // SAFETY: both setters store a function pointer in a library global; the
    // functions are `extern "C"`, never unwind and ignore their arguments. Called
    // once at start-up before any socket is created, so no library call is
    // reading the global concurrently.
    unsafe {
        libbpf_sys::libbpf_set_print(Some(quiet_libbpf));
        libxdp_sys::libxdp_set_print(Some(quiet_libxdp));
    }
}

/// Detaches any XDP program (generic and native mode) from the interface with
/// index `ifindex`: what `xdpsched cleanup` does after a crash. Returns the
/// modes that had a program.
pub fn detach_xdp(ifindex: u32) -> Result<Vec<&'static str>, std::io::Error> {
    let mut detached = Vec::new();
    for (flag, mode) in [(2u32, "generic"), (4u32, "native")] {
        let mut id = 0u32;
        // SAFETY: `id` is a valid out-pointer for the call's duration.
        let q = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, flag as i32, &mut id) };
        if q < 0 {
            return Err(std::io::Error::from_raw_os_error(-q));
        }
        if id == 0 {
            continue;
        }
        // SAFETY: a null options pointer is allowed (no expected program id).
        let r = unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, flag, std::ptr::null()) };
        if r < 0 {
            return Err(std::io::Error::from_raw_os_error(-r));
        }
        detached.push(mode);
    }
    Ok(detached)
}

/// The compiled XDP program (datapath/bpf/xdpsched.bpf.c).
static XDP_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdpsched.bpf.o"));

/// Our XDP program attached to one port, with its maps.
#[derive(Debug)]
pub struct XdpProgram {
    obj: std::ptr::NonNull<libbpf_sys::bpf_object>,
    ifindex: u32,
    flags: u32,
    xsks_fd: i32,
    peer_fd: i32,
    counters_fd: i32,
    prog_fd: i32,
}

fn errno(r: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(r.unsigned_abs() as i32)
}

impl XdpProgram {
    /// Loads the program for `ifindex` (not attached yet: bind the sockets with
    /// [`XdpProgram::bind_socket`] first, then [`XdpProgram::attach`], so that no
    /// frame meets the program before its socket is in place); frames of a queue
    /// without a socket will be dropped if `closed`, else go to `peer`
    /// (another ifindex) or the stack.
    pub fn load(ifindex: u32, peer: Option<u32>, closed: bool) -> Result<Self, std::io::Error> {
        let name = c"xdpsched";
        // SAFETY: the options struct is zeroed then sized as libbpf requires; the object
        // bytes are a static that outlives the object (libbpf copies them anyway).
        let obj = unsafe {
            let mut opts: libbpf_sys::bpf_object_open_opts = std::mem::zeroed();
            opts.sz = std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _;
            opts.object_name = name.as_ptr();
            libbpf_sys::bpf_object__open_mem(XDP_OBJ.as_ptr().cast(), XDP_OBJ.len() as _, &opts)
        };
        let obj = std::ptr::NonNull::new(obj).ok_or_else(std::io::Error::last_os_error)?;
        let mut prog = Self {
            obj,
            ifindex,
            flags: 0,
            xsks_fd: -1,
            peer_fd: -1,
            counters_fd: -1,
            prog_fd: -1,
        };
        // SAFETY: `obj` is a valid object just opened; the names are NUL-terminated; the
        // map updates read a live u32 key and value for the duration of each call.
        unsafe {
            let r = libbpf_sys::bpf_object__load(obj.as_ptr());
            if r < 0 {
                return Err(errno(r));
            }
            let p = libbpf_sys::bpf_object__find_program_by_name(
                obj.as_ptr(),
                c"xdpsched_redirect".as_ptr(),
            );
            if p.is_null() {
                return Err(std::io::Error::other(
                    "xdpsched_redirect not found in the XDP object",
                ));
            }
            prog.prog_fd = libbpf_sys::bpf_program__fd(p);
            prog.xsks_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"xsks_map".as_ptr());
            prog.peer_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"peer_map".as_ptr());
            prog.counters_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"counters".as_ptr());
            let mode_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"fail_mode".as_ptr());
            if prog.xsks_fd < 0 || prog.peer_fd < 0 || prog.counters_fd < 0 || mode_fd < 0 {
                return Err(std::io::Error::other("maps missing from the XDP object"));
            }
            // FAIL_CLOSED in the program.
            let (key, mode) = (0u32, u32::from(closed));
            let r = libbpf_sys::bpf_map_update_elem(
                mode_fd,
                (&key as *const u32).cast(),
                (&mode as *const u32).cast(),
                0,
            );
            if r < 0 {
                return Err(errno(r));
            }
            if let Some(peer) = peer {
                let key = 0u32;
                let r = libbpf_sys::bpf_map_update_elem(
                    prog.peer_fd,
                    (&key as *const u32).cast(),
                    (&peer as *const u32).cast(),
                    0,
                );
                if r < 0 {
                    return Err(errno(r));
                }
            }
        }
        Ok(prog)
    }

    /// Attaches the loaded program to its interface in `mode`.
    pub fn attach(&mut self, mode: XdpMode) -> Result<(), std::io::Error> {
        let modes: &[u32] = match mode {
            XdpMode::Native => &[4],
            XdpMode::Skb => &[2],
            XdpMode::Auto => &[4, 2],
        };
        let mut last = 0;
        for &m in modes {
            // SAFETY: plain syscall wrapper on our program fd; null options are allowed.
            last = unsafe {
                libbpf_sys::bpf_xdp_attach(self.ifindex as i32, self.prog_fd, m, std::ptr::null())
            };
            if last == 0 {
                self.flags = m;
                return Ok(());
            }
        }
        Err(errno(last))
    }

    /// Steers queue `queue`'s frames to the AF_XDP socket `fd`.
    pub fn bind_socket(&self, queue: u32, fd: i32) -> Result<(), std::io::Error> {
        // SAFETY: key and value point to live u32/i32 for the call; the map fd is ours.
        let r = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.xsks_fd,
                (&queue as *const u32).cast(),
                (&fd as *const i32).cast(),
                0,
            )
        };
        if r < 0 {
            return Err(errno(r));
        }
        Ok(())
    }

    /// Frames the program sent (to the socket, failed open), summed over CPUs.
    pub fn counters(&self) -> (u64, u64) {
        let cpus = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(1);
        let mut out = [0u64; 2];
        for (i, o) in out.iter_mut().enumerate() {
            let key = i as u32;
            // One value per possible CPU; generous room in case of offline CPUs.
            let mut vals = vec![0u64; cpus.max(256)];
            // SAFETY: `vals` has room for one u64 per possible CPU, as a per-CPU map
            // lookup writes; key points to a live u32.
            let r = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    self.counters_fd,
                    (&key as *const u32).cast(),
                    vals.as_mut_ptr().cast(),
                )
            };
            if r == 0 {
                *o = vals.iter().sum();
            }
        }
        (out[0], out[1])
    }

    /// Detaches the program (a clean exit; after a crash the program stays and fails open).
    pub fn detach(&mut self) {
        if self.flags != 0 {
            // SAFETY: plain syscall wrapper; null options are allowed.
            unsafe {
                libbpf_sys::bpf_xdp_detach(self.ifindex as i32, self.flags, std::ptr::null())
            };
            self.flags = 0;
        }
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.detach();
        // SAFETY: the object was opened by us and is closed exactly once.
        unsafe { libbpf_sys::bpf_object__close(self.obj.as_ptr()) };
    }
}
