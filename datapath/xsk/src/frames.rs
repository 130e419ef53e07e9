//! The frame-ownership book of one lane: where each UMEM frame is, as that
//! lane sees it, and the only moves that change it. Pure and safe (no UMEM,
//! no rings), so every legal and illegal move is unit-tested here; the
//! [`crate::Lane`] that owns a book does the ring I/O around it, and its
//! `unsafe` blocks rely on what the book asserts.
//!
//! **Every frame is in exactly one place.** A lane owns a fixed share of the
//! UMEM (`span` frames; the last lane also the remainder), and each of its
//! frames is, at any time: on its free list ([`Spot::Free`]); held by its
//! caller, holding a packet or being built ([`Spot::Held`]); another lane's
//! frame waiting to go home ([`Spot::Away`]); or out of its hands — with the
//! kernel (fill, RX, TX or completion ring) or another lane ([`Spot::Out`]).
//! Every method asserts the spot it expects and sets the next one (an
//! `assert!`: a violation is a bug in the program, and the alternative is a
//! data race with the kernel or another thread). So a frame cannot be
//! released twice, given to the kernel twice (even listed twice in one
//! batch), or given to the kernel from the free list while also used.
//! Frames cross lanes only as [`Handoff`] and [`Homeward`] tokens, which
//! only a book makes, cannot be copied, and carry their UMEM's number.
//!
//! The [`Ledger`] counts what is with the kernel, so that after traffic
//! `free + away + fill + tx (+ what the caller holds) == own` (summed over
//! lanes: every frame of the UMEM).

/// Numbers UMEMs, so that a token is never taken by a lane of another one.
static UMEM_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh UMEM number for the books of one UMEM.
pub fn new_umem_id() -> u64 {
    UMEM_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Where a frame is, as one lane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spot {
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

/// A frame (holding a packet, described by `D`) on its way from the lane
/// that received it to the lane that transmits it. Made only by
/// [`Book::hand_over`], taken only by [`Book::adopt`]; not `Clone`, so a
/// frame has one holder at a time.
#[derive(Debug)]
pub struct Handoff<D> {
    umem: u64,
    frame: u32,
    desc: D,
}

/// A frame going back to the lane it belongs to: made only by
/// [`Book::send_away`], taken only by [`Book::take_back`].
#[derive(Debug)]
pub struct Homeward {
    umem: u64,
    frame: u32,
}

/// The lane of frame `i` when each of `lanes` lanes owns `span` frames (the
/// last one also the remainder).
#[inline]
pub fn origin_of(i: u32, span: u32, lanes: usize) -> usize {
    ((i / span) as usize).min(lanes - 1)
}

/// One lane's book: the spot of every UMEM frame, its free list, the frames
/// of other lanes waiting to go home, and the kernel ledger.
#[derive(Debug)]
pub struct Book {
    /// The lane's number.
    id: usize,
    /// Frames per lane (the last lane also owns the remainder).
    span: u32,
    lanes: usize,
    /// Frames this lane owns.
    own: u32,
    /// Which UMEM (for tokens).
    umem: u64,
    /// Per UMEM frame: where it is as far as this lane knows.
    spot: Vec<Spot>,
    /// Frames of this lane that it holds and that hold no packet.
    free: Vec<u32>,
    /// Frames of other lanes taken back here (completed or dropped), to be
    /// returned to their origin.
    away: Vec<u32>,
    /// What is with the kernel.
    pub ledger: Ledger,
}

impl Book {
    /// The book of lane `id` of `lanes`, over a UMEM of `total` frames
    /// numbered `umem`: its share (`total / lanes` frames; the last lane
    /// also the remainder) all free, every other frame out.
    pub fn new(id: usize, lanes: usize, total: u32, umem: u64) -> Book {
        let lanes = lanes.max(1);
        let span = (total / lanes as u32).max(1);
        let lo = (id as u32 * span).min(total);
        let hi = if id + 1 == lanes {
            total
        } else {
            (lo + span).min(total)
        };
        Book {
            id,
            span,
            lanes,
            own: hi - lo,
            umem,
            spot: (0..total)
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
        }
    }

    /// The lane's number.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Frames this lane owns.
    pub fn own(&self) -> u32 {
        self.own
    }

    /// The lane frame `i` belongs to.
    #[inline]
    pub fn origin(&self, i: u32) -> usize {
        origin_of(i, self.span, self.lanes)
    }

    /// Where frame `i` is (`None`: not a frame of this UMEM).
    pub fn spot(&self, i: u32) -> Option<Spot> {
        self.spot.get(i as usize).copied()
    }

    /// Panics unless this lane's caller holds frame `i`.
    #[inline]
    pub fn check_held(&self, i: u32) {
        let at = self.spot.get(i as usize).copied();
        assert!(
            at == Some(Spot::Held),
            "lane {}: frame {i} is {at:?}, not held",
            self.id
        );
    }

    /// Moves frame `i` from spot `from` to `to`; panics if it is elsewhere.
    #[inline]
    fn shift(&mut self, i: u32, from: Spot, to: Spot) {
        match self.spot.get_mut(i as usize) {
            Some(s) if *s == from => *s = to,
            at => panic!("lane {}: frame {i} is {at:?}, not {from:?}", self.id),
        }
    }

    /// Takes frame `i` back as no longer holding a packet: onto the free list
    /// if it is this lane's, else among the frames to send home.
    #[inline]
    pub fn release(&mut self, i: u32) {
        if self.origin(i) == self.id {
            self.shift(i, Spot::Held, Spot::Free);
            self.free.push(i);
        } else {
            self.shift(i, Spot::Held, Spot::Away);
            self.away.push(i);
        }
    }

    /// Sends the other lanes' frames home: `home(origin, token)` for each;
    /// the lane `origin` takes it with [`Book::take_back`].
    pub fn send_away(&mut self, mut home: impl FnMut(usize, Homeward)) {
        for f in std::mem::take(&mut self.away) {
            self.shift(f, Spot::Away, Spot::Out);
            let t = Homeward {
                umem: self.umem,
                frame: f,
            };
            home(origin_of(f, self.span, self.lanes), t);
        }
    }

    /// Takes back one of its frames from another lane (onto the free list).
    #[inline]
    pub fn take_back(&mut self, t: Homeward) {
        assert_eq!(t.umem, self.umem, "a frame of another UMEM");
        self.shift(t.frame, Spot::Out, Spot::Held);
        self.release(t.frame);
    }

    /// Gives frame `i` (holding a packet described by `desc`) to another lane.
    #[inline]
    pub fn hand_over<D>(&mut self, i: u32, desc: D) -> Handoff<D> {
        self.shift(i, Spot::Held, Spot::Out);
        Handoff {
            umem: self.umem,
            frame: i,
            desc,
        }
    }

    /// Takes over a frame another lane handed over: (its number, its descriptor).
    #[inline]
    pub fn adopt<D>(&mut self, t: Handoff<D>) -> (u32, D) {
        assert_eq!(t.umem, self.umem, "a frame of another UMEM");
        self.shift(t.frame, Spot::Out, Spot::Held);
        (t.frame, t.desc)
    }

    /// A free frame of this lane (to build a packet in), if any.
    #[inline]
    pub fn pop_free(&mut self) -> Option<u32> {
        let i = self.free.pop()?;
        self.shift(i, Spot::Free, Spot::Held);
        Some(i)
    }

    /// Free frames on hand.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// The (up to) `want` free frames [`Book::filled`] would give the kernel,
    /// for the caller to describe to the fill ring.
    #[inline]
    pub fn to_fill(&self, want: usize) -> &[u32] {
        let start = self.free.len() - want.min(self.free.len());
        &self.free[start..]
    }

    /// The kernel took the first `n` of the frames [`Book::to_fill`]`(want)`
    /// named: they are out, in a fill ring.
    #[inline]
    pub fn filled(&mut self, want: usize, n: usize) {
        let start = self.free.len() - want.min(self.free.len());
        let end = start + n.min(self.free.len() - start);
        for i in start..end {
            let f = self.free[i];
            // A frame is on the free list once (release and take-back check it).
            debug_assert_eq!(self.spot[f as usize], Spot::Free);
            self.spot[f as usize] = Spot::Out;
        }
        self.free.drain(start..end);
        self.ledger.in_fill += (end - start) as u64;
    }

    /// Frame `i` came back from the kernel's RX ring: held (with a packet).
    #[inline]
    pub fn received(&mut self, i: u32) {
        self.shift(i, Spot::Out, Spot::Held);
        self.ledger.in_fill -= 1;
        self.ledger.rx += 1;
    }

    /// Frame `i` (held) is about to go to a TX ring: out. One call per frame,
    /// so a frame listed twice in a batch is refused the second time.
    #[inline]
    pub fn to_tx(&mut self, i: u32) {
        self.shift(i, Spot::Held, Spot::Out);
    }

    /// Of frames given [`Book::to_tx`], the kernel took `done`; `rest` did
    /// not fit and are held again.
    #[inline]
    pub fn sent(&mut self, done: usize, rest: &[u32]) {
        for &i in rest {
            self.shift(i, Spot::Out, Spot::Held);
        }
        self.ledger.in_tx += done as u64;
    }

    /// Frame `i` came back from the completion ring: released (free, or away
    /// to its own lane).
    #[inline]
    pub fn completed(&mut self, i: u32) {
        self.shift(i, Spot::Out, Spot::Held);
        self.release(i);
        self.ledger.in_tx -= 1;
        self.ledger.tx_done += 1;
    }

    /// Frames the lane accounts for: free + away + in its fill rings + in its
    /// TX/completion rings.
    pub fn held(&self) -> u64 {
        (self.free.len() + self.away.len()) as u64 + self.ledger.in_fill + self.ledger.in_tx
    }

    /// For a lone lane: free + in fill rings + in TX/completion + `queued`
    /// (held by the caller) equals the frames it owns.
    pub fn balanced(&self, queued: usize) -> bool {
        self.held() + queued as u64 == u64::from(self.own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two lanes over 8 frames: lane 0 owns 0..4, lane 1 owns 4..8.
    fn two() -> (Book, Book) {
        let u = new_umem_id();
        (Book::new(0, 2, 8, u), Book::new(1, 2, 8, u))
    }

    #[test]
    fn a_book_owns_its_share_and_nothing_else() {
        let (a, b) = two();
        assert_eq!((a.own(), b.own()), (4, 4));
        assert!((0..4).all(|i| a.spot(i) == Some(Spot::Free) && b.spot(i) == Some(Spot::Out)));
        assert!((4..8).all(|i| a.spot(i) == Some(Spot::Out) && b.spot(i) == Some(Spot::Free)));
        assert_eq!((a.origin(3), a.origin(4)), (0, 1));
        // The last lane also owns the remainder.
        let c = Book::new(2, 3, 10, new_umem_id());
        assert_eq!(c.own(), 4);
        assert_eq!(c.spot(9), Some(Spot::Free));
        assert!(a.balanced(0) && b.balanced(0));
    }

    #[test]
    fn every_legal_move_keeps_the_balance() {
        let (mut a, mut b) = two();
        // Fill: 3 frames offered, the kernel takes 2.
        let offered: Vec<u32> = a.to_fill(3).to_vec();
        assert_eq!(offered.len(), 3);
        a.filled(3, 2);
        assert_eq!(a.ledger.in_fill, 2);
        assert_eq!(a.free_frames(), 2);
        assert!(a.balanced(0));
        // Receive one, hand it over to lane 1, which transmits it.
        let got = offered[0];
        assert_eq!(a.spot(got), Some(Spot::Out));
        a.received(got);
        assert!(a.balanced(1));
        let t = a.hand_over(got, 60u32);
        assert!(a.balanced(1), "out with another lane, still a's");
        let (f, desc) = b.adopt(t);
        assert_eq!((f, desc), (got, 60));
        b.to_tx(f);
        b.sent(1, &[]);
        assert_eq!(b.ledger.in_tx, 1);
        // Completion on lane 1: the frame is a's, so it waits to go home.
        b.completed(f);
        assert_eq!(b.spot(f), Some(Spot::Away));
        let mut home = Vec::new();
        b.send_away(|o, t| home.push((o, t)));
        assert_eq!(home.len(), 1);
        assert_eq!(home[0].0, 0);
        a.take_back(home.pop().expect("token").1);
        assert_eq!(a.spot(f), Some(Spot::Free));
        assert!(a.balanced(0) && b.balanced(0));
        // Build a packet in a free frame, release it unsent.
        let p = a.pop_free().expect("free frame");
        assert_eq!(a.spot(p), Some(Spot::Held));
        a.check_held(p);
        a.release(p);
        assert!(a.balanced(0));
    }

    #[test]
    fn a_batch_that_does_not_fit_is_held_again() {
        let (mut a, _) = two();
        let f: Vec<u32> = (0..3).filter_map(|_| a.pop_free()).collect();
        for &i in &f {
            a.to_tx(i);
        }
        a.sent(1, &f[1..]);
        assert_eq!(a.spot(f[0]), Some(Spot::Out));
        assert_eq!(a.spot(f[1]), Some(Spot::Held));
        assert_eq!(a.ledger.in_tx, 1);
        a.release(f[1]);
        a.release(f[2]);
        assert!(a.balanced(0));
    }

    #[test]
    #[should_panic(expected = "not Held")]
    fn releasing_twice_is_refused() {
        let (mut a, _) = two();
        let f = a.pop_free().expect("free");
        a.release(f);
        a.release(f);
    }

    #[test]
    #[should_panic(expected = "not Held")]
    fn transmitting_a_free_frame_is_refused() {
        let (mut a, _) = two();
        a.to_tx(0);
    }

    #[test]
    #[should_panic(expected = "not Held")]
    fn one_frame_twice_in_a_batch_is_refused() {
        let (mut a, _) = two();
        let f = a.pop_free().expect("free");
        a.to_tx(f);
        a.to_tx(f);
    }

    #[test]
    #[should_panic(expected = "not held")]
    fn reading_a_frame_in_the_fill_ring_is_refused() {
        let (mut a, _) = two();
        let f = a.to_fill(1)[0];
        a.filled(1, 1);
        a.check_held(f);
    }

    #[test]
    #[should_panic(expected = "not held")]
    fn reading_another_lanes_frame_is_refused() {
        let (a, _) = two();
        a.check_held(5);
    }

    #[test]
    #[should_panic(expected = "not Held")]
    fn releasing_another_lanes_frame_is_refused() {
        let (mut a, _) = two();
        a.release(6);
    }

    #[test]
    #[should_panic(expected = "not Out")]
    fn receiving_a_frame_never_given_to_the_kernel_is_refused() {
        let (mut a, _) = two();
        a.ledger.in_fill = 1;
        a.received(0);
    }

    #[test]
    #[should_panic(expected = "another UMEM")]
    fn a_token_of_another_umem_is_refused() {
        let (mut a, _) = two();
        let (_, mut other) = two();
        let f = other.pop_free().expect("free");
        let t = other.hand_over(f, ());
        let _ = a.adopt(t);
    }

    #[test]
    #[should_panic(expected = "not Out")]
    fn adopting_a_frame_the_lane_still_has_is_refused() {
        let (mut a, mut b) = two();
        // Lane b hands over its frame 4 to a; a hands it back by token, and
        // b tries to adopt a token for a frame it never gave away.
        let f = b.pop_free().expect("free");
        let t = b.hand_over(f, ());
        let (g, ()) = a.adopt(t);
        let t2 = a.hand_over(g, ());
        let _ = b.adopt(t2);
        let t3 = Handoff {
            umem: b.umem,
            frame: f,
            desc: (),
        };
        let _ = b.adopt(t3);
    }
}
