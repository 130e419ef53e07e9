//! What the AF_XDP setup is made of and how it fails: sizes, modes, what
//! a frame that finds no socket does, and the errors.

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
    /// Zero copy was asked for and the driver does not offer it.
    #[error("zero copy asked for (--bind zerocopy), but {iface} queue {queue} does not offer it ({source}); --bind auto uses zero copy where the driver offers it and copy mode elsewhere")]
    NoZeroCopy {
        /// Interface.
        iface: String,
        /// RX queue.
        queue: u32,
        /// The library's error.
        source: xsk_rs::socket::SocketCreateError,
    },
}

/// How the AF_XDP sockets share frames with the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Zero copy where the driver offers it, else copy (the kernel's choice).
    #[default]
    Auto,
    /// Copy mode: the kernel copies every frame (works on any device).
    Copy,
    /// Zero copy: the driver DMAs into the UMEM; an error where it cannot.
    ZeroCopy,
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
    /// Copy or zero copy.
    pub bind: BindMode,
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

/// Most `sendto` kicks per [`crate::Lane::kick`] (copy mode sends 32 frames per kick).
pub(crate) const MAX_KICKS: usize = 8;

/// Most RX queues served per interface (the XSKMAP's size).
pub const MAX_QUEUES: u32 = 64;
