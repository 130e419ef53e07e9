//! A lane: what one thread owns — a share of the UMEM's frames, kept in its
//! [`Book`], and the ring halves it drives. Ring I/O is here (the `unsafe`
//! calls into xsk-rs, each relying on what the book asserts); waiting and
//! busy polling are in `poll`.

use crate::frames::{Book, Handoff, Homeward, Ledger};
use crate::kernel::SocketStats;
use crate::params::MAX_KICKS;
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

/// One port: an AF_XDP socket bound to (interface, queue), or the halves of
/// it that one [`Lane`] uses: the receive half (RX and fill rings) and the
/// transmit half (TX and completion rings) can belong to different lanes,
/// since each ring has one producer and one consumer.
pub struct Port {
    /// Interface name.
    pub name: String,
    /// Which interface of those given to [`crate::Xsk::open`] (0: the first).
    pub side: usize,
    /// RX queue.
    pub queue: u32,
    /// Frames in this port's TX ring or awaiting completion.
    pub in_flight: u64,
    /// Whether its socket runs in zero-copy mode (the kernel's answer).
    pub zero_copy: bool,
    pub(crate) rx: Option<(RxQueue, FillQueue)>,
    pub(crate) tx: Option<(TxQueue, CompQueue)>,
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

/// What a [`Lane::kick`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kick {
    /// The kernel took frames from the TX ring.
    pub took: bool,
    /// System calls made (0: nothing was waiting in the TX ring).
    pub calls: u32,
}

/// What one thread owns: a share of the UMEM's frames and the ring halves it
/// drives. A frame always returns to the lane it came from (its *origin*,
/// fixed by its number): frames this lane takes back that belong to another
/// lane wait until [`Lane::send_away`] hands them over.
pub struct Lane {
    /// The lane's number.
    pub id: usize,
    pub(crate) umem: Umem,
    pub(crate) frame_size: u32,
    pub(crate) ring_size: u32,
    /// The ports this lane has a half of.
    pub ports: Vec<Port>,
    /// Descriptor of every UMEM frame, indexed by frame number; meaningful
    /// for the frames this lane holds (kept with the lengths of the packet).
    pub(crate) descs: Vec<FrameDesc>,
    /// Where every frame is, as this lane sees it.
    pub(crate) book: Book,
    /// The sockets this lane receives on (the first `sockets`), then the
    /// descriptors it was asked to [`Lane::watch`], for idle waits.
    pub(crate) pollfds: Vec<nix::libc::pollfd>,
    pub(crate) sockets: usize,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("id", &self.id)
            .field("ports", &self.ports)
            .field("frames", &self.book.own())
            .field("free", &self.book.free_frames())
            .field("ledger", &self.book.ledger)
            .finish()
    }
}

impl Lane {
    /// Descriptors each ring holds.
    pub fn ring_size(&self) -> u32 {
        self.ring_size
    }

    /// Frames this lane owns.
    pub fn total_frames(&self) -> usize {
        self.book.own() as usize
    }

    /// What this lane's rings hold and have passed.
    pub fn ledger(&self) -> &Ledger {
        &self.book.ledger
    }

    /// The lane frame `i` belongs to.
    #[inline]
    pub fn origin(&self, i: u32) -> usize {
        self.book.origin(i)
    }

    /// Takes frame `i` back as no longer holding a packet: onto the free list
    /// if it is this lane's, else among the frames to send home.
    #[inline]
    pub fn release(&mut self, i: u32) {
        self.book.release(i);
    }

    /// Sends the other lanes' frames home: `home(origin, token)` for each;
    /// the lane `origin` takes it with [`Lane::take_back`].
    pub fn send_away(&mut self, home: impl FnMut(usize, Homeward)) {
        self.book.send_away(home);
    }

    /// Takes back one of its frames from another lane (onto the free list).
    #[inline]
    pub fn take_back(&mut self, t: Homeward) {
        self.book.take_back(t);
    }

    /// Gives frame `i` (holding a packet) to another lane.
    #[inline]
    pub fn hand_over(&mut self, i: u32) -> Handoff<FrameDesc> {
        let d = self.descs[i as usize];
        self.book.hand_over(i, d)
    }

    /// Takes over a frame (holding a packet) another lane received and
    /// handed over: records its descriptor and returns its number.
    #[inline]
    pub fn adopt(&mut self, t: Handoff<FrameDesc>) -> u32 {
        let (i, d) = self.book.adopt(t);
        self.descs[i as usize] = d;
        i
    }

    /// A free frame of this lane (to build a packet in), if any.
    #[inline]
    pub fn pop_free(&mut self) -> Option<u32> {
        self.book.pop_free()
    }

    /// Copies the packet in frame `i` (held by this lane) into a free frame
    /// of this lane, for duplication: the copy's number, or `None` when no
    /// frame is free (nothing changes then).
    pub fn copy_frame(&mut self, i: u32) -> Option<u32> {
        const MAX: usize = 4096;
        if self.book.free_frames() == 0 {
            return None;
        }
        let mut buf = [0u8; MAX];
        let src = self.data(i);
        let n = src.len().min(MAX);
        buf[..n].copy_from_slice(&src[..n]);
        let j = self.pop_free()?;
        self.with_frame_mut(j, n, |b| {
            let m = b.len().min(n);
            b[..m].copy_from_slice(&buf[..m]);
        });
        Some(j)
    }

    /// Free frames on hand.
    pub fn free_frames(&self) -> usize {
        self.book.free_frames()
    }

    /// The packet length of frame `i` (held by this lane).
    #[inline]
    pub fn frame_len(&self, i: u32) -> u32 {
        self.book.check_held(i);
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
            .min(self.book.free_frames());
        if want == 0 {
            return;
        }
        scratch.clear();
        scratch.extend(
            self.book
                .to_fill(want)
                .iter()
                .map(|&i| self.descs[i as usize]),
        );
        // SAFETY: these frames are on this lane's free list (the book's `to_fill`), so
        // neither the kernel nor another lane has them (a frame gets onto the free list
        // only from `Held`, once, and leaves it only through `filled` or `pop_free`);
        // they belong to this UMEM.
        let n = unsafe { fq.produce(scratch) };
        self.book.filled(want, n);
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
            self.book.received(i as u32);
            out.push(i as u32);
        }
        if n == 0 && fq.needs_wakeup() {
            let fd = rx.fd_mut();
            let _ = fq.wakeup(fd, 0);
        }
        n
    }

    /// The kernel's counters of port `p`'s socket, if this lane receives on
    /// it (each socket has one receiving lane, so summing over lanes counts
    /// every socket once).
    pub fn socket_stats(&self, p: usize) -> Option<std::io::Result<SocketStats>> {
        let (rx, _) = self.ports[p].rx.as_ref()?;
        Some(rx.fd().xdp_statistics().map(SocketStats::from))
    }

    /// The packet bytes of frame `i` (valid until the frame is given back to the kernel).
    pub fn data(&self, i: u32) -> &[u8] {
        self.book.check_held(i);
        // SAFETY: this lane holds frame i (checked: received, adopted or free, not
        // given to the kernel or another lane since); it can be given away only through
        // `&mut self`, so neither the kernel nor another lane writes it while the
        // returned borrow of `self` lives.
        unsafe { self.umem.data(&self.descs[i as usize]) }.contents()
    }

    /// Runs `f` on the packet bytes of frame `i`, writable (for MAC rewriting).
    pub fn with_data_mut<R>(&mut self, i: u32, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.book.check_held(i);
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
        self.book.check_held(i);
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
                self.book.to_tx(i);
                scratch.push(self.descs[i as usize]);
            }
            // SAFETY: this lane's caller held these frames (checked by the book, each
            // once: not in any ring, not with another lane), and they belong to this UMEM.
            let done = unsafe { tx.produce(scratch) };
            debug_assert_eq!(done, n);
            self.book.sent(done, &frames[done..n]);
            port.in_flight += done as u64;
            // `produce` takes all or none; report what it took either way.
            return done;
        }
        0
    }

    /// Kicks port `p`'s TX if frames wait in its TX ring; returns whether
    /// the kernel took any (the caller's loop is busy only then) and how many
    /// system calls that took. In copy
    /// mode one kick sends a bounded batch (32 frames, then EAGAIN), so this
    /// kicks until the ring drains, at most `MAX_KICKS` (8) times, and the loop
    /// must call it every iteration while frames wait, not only when it
    /// submits: otherwise a burst waits for the next arrival and TCP stalls.
    /// A kick the kernel takes nothing from (the device's queue is full: the
    /// receiving side has not caught up) ends the round, so that a worker
    /// does not spin on a busy device while the CPU is needed by whoever
    /// drains it. Frames waiting for the completion ring but no longer in the
    /// TX ring need no kick: the kernel has taken them.
    pub fn kick(&mut self, p: usize) -> Kick {
        let ring = self.ring_size;
        let port = &mut self.ports[p];
        let mut k = Kick::default();
        let Some((tx, _)) = port.tx.as_mut() else {
            return k;
        };
        if port.in_flight == 0 {
            return k;
        }
        let mut free = tx.nb_free_exact();
        for _ in 0..MAX_KICKS {
            if free >= ring {
                break;
            }
            let _ = tx.wakeup();
            k.calls += 1;
            let now = tx.nb_free_exact();
            if now == free {
                break;
            }
            k.took = true;
            free = now;
        }
        k
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
            self.book.completed((d.addr() / fs) as u32);
        }
        n
    }

    /// Frames the lane accounts for: free + away + in its fill rings + in its
    /// TX/completion rings.
    pub fn held(&self) -> u64 {
        self.book.held()
    }

    /// For a lone lane: free + in fill rings + in TX/completion + `queued`
    /// (held by the caller) equals the frames it owns.
    pub fn balanced(&self, queued: usize) -> bool {
        self.book.balanced(queued)
    }
}
