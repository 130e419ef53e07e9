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
//! the caller (a queued descriptor), a TX ring or a completion ring
//! (kernel). [`Ledger`] counts the frames handed to and taken back from the
//! kernel; `free + away + fill + tx + queued == total` (summed over lanes)
//! is checked after traffic.
//! The rules that make the `unsafe` calls sound follow from that: a frame is
//! given to the kernel (fill/TX) only when we own it (it came from the free
//! list, the RX ring or the scheduler), and touched only between being taken
//! back (RX/completion) and being given again.
//!
//! A [`Lane`] enforces those rules itself rather than trusting its caller:
//! its [`Book`] ([`frames`]) keeps each frame's spot, and every method that
//! reads, writes, frees or submits a frame asserts the spot it expects and
//! moves it. The book is pure and safe, and unit-tested move by move.
//!
//! # Modules
//! [`params`] (sizes, modes, errors), [`frames`] (the ownership book), the
//! lane (book + ring halves: ring I/O) and its waits (`poll`), `open`
//! (UMEM, programs, lanes, binding and ring split, prefill), [`program`]
//! (the XDP program and the libbpf/libxdp calls), [`kernel`] (the kernel's
//! counters of a socket), [`netns`] (per-thread network namespaces),
//! [`clock`] (a run's nanoseconds).

#![warn(missing_docs)]

pub mod clock;
pub mod frames;
pub mod kernel;
mod lane;
pub mod netns;
mod open;
pub mod params;
mod poll;
pub mod program;

pub use clock::Clock;
pub use frames::{Book, Handoff, Homeward, Ledger, Spot};
pub use kernel::SocketStats;
pub use lane::{Kick, Lane, Port};
pub use open::{LanePlan, OneLane, Xsk};
pub use params::{ring_size_for, BindMode, NoSocket, XdpMode, XskError, XskParams, MAX_QUEUES};
pub use program::{detach_xdp, quiet_library_logs, XdpProgram};
/// A frame's descriptor (address and lengths), as the rings carry it.
pub use xsk_rs::FrameDesc;
