//! HTB — a hierarchy of token-bucket classes with borrowing (Linux
//! `sch_htb`, Martin Devera's "feed tree" design), as a plug-in around any
//! flow scheduler: each leaf class has its own instance of the inner
//! algorithm (DRR, QFQ, FQ-CoDel, PRIO) over the flows of the flowsets that
//! feed it.
//!
//! # The model and its guarantees
//! Each class has a guaranteed `rate`, a `ceil` (≥ rate) and two buckets:
//! `tokens` (filled at `rate`, at most `burst` bytes' worth) and `ctokens`
//! (at `ceil`, at most `cburst`). Sending `L` bytes takes `L` from the
//! ctokens of the leaf and of every ancestor, and from the tokens of the
//! classes from the leaf up to the one it was *lent* by (see below); the
//! classes below the lender borrowed and pay only ctokens. A class is
//! - **can send** when its tokens and ctokens are ≥ 0,
//! - **may borrow** when its ctokens are ≥ 0 but its tokens are not,
//! - **can't send** when its ctokens are < 0.
//!
//! A backlogged leaf that can send is served by itself; one that may borrow
//! asks its parent, which lends if it can send, or asks its own parent if
//! it may borrow itself, and so on up to a root. Service goes level by
//! level from the leaves up (a class lends before its ancestors), at each
//! level by priority (`prio` of the leaves, 0 first), and among equals by
//! deficit round robin with each leaf's `quantum` (by default `rate / 10`
//! bytes per second, within 1000..=200000, as `tc`'s r2q = 10). Hence,
//! with the children's rates adding up to at most their parent's:
//! - a class never sends faster than its `ceil` over any interval longer
//!   than its `cburst` allows (ctokens never go below zero when it sends);
//! - a backlogged class gets at least its `rate` (its own tokens let it
//!   send at level 0, before any borrowing);
//! - what is left over goes to the borrowers by priority, then in
//!   proportion to their quanta, each up to its ceil.
//!
//! This is the algorithm of `net/sched/sch_htb.c` (read, not copied): the
//! same modes, the same charging (`htb_charge_class`), the same levels (a
//! root at level 7, each inner class one below its parent, leaves at 0),
//! the same lookup of a leaf through each class's per-priority feed with
//! its round-robin pointer (`htb_lookup_leaf`), the same wait queue of
//! classes whose mode changes later (`htb_do_events`), no mode hysteresis
//! (Linux's default since 2019). Differences: a class's siblings are kept
//! in activation order rather than by class id (only the order within a
//! round changes); tokens are kept in picoseconds (Linux: nanoseconds), so
//! rates are exact to 1 ps per packet; time comes from the caller.
//!
//! Cost per packet: O(depth) to charge and to find the leaf, O(log n) to
//! move a class in the wait queue, whatever the number of classes.

use super::plugin::{Algorithm, Flow};
use super::timeheap::TimeHeap;
use crate::types::{ConfigError, FlowConfig, SchedConfig};

/// Levels of the tree (Linux's `TC_HTB_MAXDEPTH`): a root at level 7,
/// leaves at 0, so at most 7 levels of inner classes.
pub const LEVELS: usize = 8;
/// Priorities of leaves, 0 (first) to 7.
pub const PRIOS: usize = 8;
/// Longest time a bucket fills for without being looked at (Linux's
/// `mbuffer`, 60 s), ps.
const MBUFFER_PS: i64 = 60_000_000_000_000;
/// tc's `r2q`: a leaf's default quantum is its rate in bytes/s over this.
pub const R2Q: u64 = 10;
/// Bounds tc puts on a computed quantum, bytes.
pub const QUANTUM_MIN: u32 = 1000;
/// See [`QUANTUM_MIN`].
pub const QUANTUM_MAX: u32 = 200_000;
/// tc's default for `burst`/`cburst` on this kernel: `rate / hz + mtu`
/// with hz = 10^9 (`/proc/net/psched` of a high-resolution kernel), so one
/// MTU of 1600 bytes plus a byte per Gbit/s.
pub fn default_burst(rate_bps: u64) -> u32 {
    (1600 + rate_bps / 8 / 1_000_000_000).min(u64::from(u32::MAX)) as u32
}

const NIL: u32 = u32::MAX;

/// One class as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassSpec {
    /// The parent's index in the tree (`None`: a root).
    pub parent: Option<u32>,
    /// Guaranteed rate, bit/s (≥ 1).
    pub rate_bps: u64,
    /// Most it may reach by borrowing, bit/s (≥ rate).
    pub ceil_bps: u64,
    /// Bytes it may send at once beyond its rate.
    pub burst_bytes: u32,
    /// Bytes it may send at once beyond its ceil.
    pub cburst_bytes: u32,
    /// A leaf's priority for spare bandwidth, 0 (first) to 7.
    pub prio: u8,
    /// A leaf's round-robin quantum, bytes (≥ 1).
    pub quantum: u32,
}

impl ClassSpec {
    /// A class at `rate_bps` with tc's defaults: ceil = rate, burst and
    /// cburst from [`default_burst`], prio 0, quantum rate / r2q.
    pub fn at_rate(parent: Option<u32>, rate_bps: u64) -> Self {
        Self {
            parent,
            rate_bps,
            ceil_bps: rate_bps,
            burst_bytes: default_burst(rate_bps),
            cburst_bytes: default_burst(rate_bps),
            prio: 0,
            quantum: default_quantum(rate_bps),
        }
    }
}

/// tc's quantum for a leaf of `rate_bps`: rate in bytes/s / r2q, within
/// [`QUANTUM_MIN`]..=[`QUANTUM_MAX`].
pub fn default_quantum(rate_bps: u64) -> u32 {
    (rate_bps / 8 / R2Q).clamp(u64::from(QUANTUM_MIN), u64::from(QUANTUM_MAX)) as u32
}

/// A validated class tree: parents listed before their children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    classes: Vec<ClassSpec>,
    /// Per class: whether another names it as parent.
    inner: Vec<bool>,
}

impl Tree {
    /// Checks the tree: every parent listed before its children, rates ≥ 1
    /// and ceil ≥ rate, prio 0..=7, quantum ≥ 1, at most 7 levels of inner
    /// classes, at least one class, fewer than 2^24.
    pub fn new(classes: Vec<ClassSpec>) -> Result<Self, ConfigError> {
        if classes.is_empty() {
            return Err(ConfigError::Unsupported("a class tree needs a class"));
        }
        if classes.len() >= 1 << 24 {
            return Err(ConfigError::OutOfRange {
                what: "classes",
                value: classes.len() as u64,
                min: 1,
                max: (1 << 24) - 1,
            });
        }
        let mut depth = vec![0usize; classes.len()];
        for (i, c) in classes.iter().enumerate() {
            if let Some(p) = c.parent {
                if p as usize >= i {
                    return Err(ConfigError::Unsupported(
                        "a class's parent must come before it",
                    ));
                }
                depth[i] = depth[p as usize] + 1;
                // A parent at depth d is an inner class at level 7 − d ≥ 1.
                if depth[p as usize] + 1 >= LEVELS {
                    return Err(ConfigError::OutOfRange {
                        what: "class tree depth",
                        value: depth[i] as u64 + 1,
                        min: 1,
                        max: LEVELS as u64,
                    });
                }
            }
            if c.rate_bps == 0 {
                return Err(ConfigError::OutOfRange {
                    what: "rate",
                    value: 0,
                    min: 1,
                    max: u64::MAX,
                });
            }
            if c.ceil_bps < c.rate_bps {
                return Err(ConfigError::Unsupported("a class's ceil is below its rate"));
            }
            if c.prio as usize >= PRIOS {
                return Err(ConfigError::OutOfRange {
                    what: "prio",
                    value: u64::from(c.prio),
                    min: 0,
                    max: PRIOS as u64 - 1,
                });
            }
            if c.quantum == 0 {
                return Err(ConfigError::OutOfRange {
                    what: "quantum",
                    value: 0,
                    min: 1,
                    max: u64::from(u32::MAX),
                });
            }
        }
        let mut inner = vec![false; classes.len()];
        for c in &classes {
            if let Some(p) = c.parent {
                inner[p as usize] = true;
            }
        }
        Ok(Self { classes, inner })
    }

    /// The classes, in order.
    pub fn classes(&self) -> &[ClassSpec] {
        &self.classes
    }

    /// Whether class `i` has no children.
    pub fn is_leaf(&self, i: usize) -> bool {
        !self.inner.get(i).copied().unwrap_or(false)
    }
}

/// A class's mode (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// ctokens < 0: sends nothing.
    CantSend,
    /// tokens < 0 ≤ ctokens: sends what an ancestor lends.
    MayBorrow,
    /// tokens ≥ 0 and ctokens ≥ 0: sends on its own.
    CanSend,
}

/// A list of classes (doubly linked through each class's `links[prio]`)
/// with a round-robin pointer: `ptr` is the class served next; `NIL` means
/// the end was passed (the next lookup rewinds to the head). `hint`: the
/// class `ptr` was at when it left the list (a mode change); if it is back
/// by the next lookup, its turn goes on (Linux's `last_ptr_id`), so that
/// classes flipping between lending and borrowing keep their quanta.
#[derive(Debug, Clone, Copy)]
struct Feed {
    head: u32,
    tail: u32,
    ptr: u32,
    hint: u32,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
            ptr: NIL,
            hint: NIL,
        }
    }
}

/// One class's state.
#[derive(Debug, Clone)]
struct Class {
    parent: u32,
    level: u8,
    prio: u8,
    /// Index of its inner scheduler (`NIL`: an inner class).
    leaf: u32,
    rate_bps: u64,
    ceil_bps: u64,
    /// Bucket depths and contents, ps of transmission at rate / ceil.
    buffer: i64,
    cbuffer: i64,
    tokens: i64,
    ctokens: i64,
    /// When the buckets were last brought up to date, ns.
    t_c: u64,
    mode: Mode,
    /// Priorities at which it has backlogged descendants (a leaf: its own).
    prio_activity: u8,
    /// (prev, next) in the row or the parent's feed, per priority.
    links: [(u32, u32); PRIOS],
    quantum: i64,
    /// Deficit round robin per level it is served at (a leaf).
    deficit: [i64; LEVELS],
    /// Backlogged flows (a leaf).
    active_flows: u32,
    stats: ClassStats,
}

/// What a class did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Packets and bytes sent through it.
    pub packets: u64,
    /// See `packets`.
    pub bytes: u64,
    /// Packets it sent with its own tokens as the lender (its level).
    pub lends: u64,
    /// Packets it sent borrowing (an ancestor lent).
    pub borrows: u64,
}

/// A class's state for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassView {
    /// Its mode as of the last look.
    pub mode: Mode,
    /// Tokens and ctokens, ps of transmission at rate / ceil.
    pub tokens_ps: i64,
    /// See `tokens_ps`.
    pub ctokens_ps: i64,
    /// Counters.
    pub stats: ClassStats,
}

/// Transmission time of `bytes` at `bps`, ps.
#[inline]
fn cost_ps(bytes: u32, bps: u64) -> i64 {
    (u128::from(bytes) * 8_000_000_000_000 / u128::from(bps.max(1))).min(i64::MAX as u128) as i64
}

/// HTB around the inner algorithm `A` (see the module docs).
#[derive(Debug, Clone)]
pub struct Htb<A: Algorithm> {
    classes: Vec<Class>,
    /// Each class's feeds, per priority (used by inner classes).
    feeds: Vec<[Feed; PRIOS]>,
    /// Classes that can send, per level and priority.
    rows: [[Feed; PRIOS]; LEVELS],
    row_mask: [u8; LEVELS],
    /// Classes that are not `CanSend`, at the instant their mode changes.
    wait: TimeHeap,
    /// The inner schedulers, one per leaf.
    inner: Vec<A>,
    /// Flow id → its leaf class.
    leaf_of: Vec<u32>,
    /// The leaf `select` chose and the level it was lent at (`served`
    /// charges it); `draining`: chosen at `u64::MAX`, limits ignored.
    picked: (u32, u8),
    draining: bool,
    now: u64,
}

impl<A: Algorithm> Htb<A> {
    /// HTB over `tree`, each leaf with an inner `A` built from `cfg`
    /// (`max_flows` sizes the flow → leaf table).
    pub fn with_tree(cfg: &SchedConfig, tree: &Tree) -> Self {
        let specs = tree.classes();
        let n = specs.len();
        let leaf_flags: Vec<bool> = (0..n).map(|i| tree.is_leaf(i)).collect();
        let mut depth = vec![0usize; n];
        for (i, c) in specs.iter().enumerate() {
            if let Some(p) = c.parent {
                depth[i] = depth[p as usize] + 1;
            }
        }
        let mut inner = Vec::new();
        let classes = specs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let leaf = if leaf_flags[i] {
                    inner.push(A::new(cfg));
                    (inner.len() - 1) as u32
                } else {
                    NIL
                };
                let buffer = cost_ps(c.burst_bytes, c.rate_bps);
                let cbuffer = cost_ps(c.cburst_bytes, c.ceil_bps);
                Class {
                    parent: c.parent.unwrap_or(NIL),
                    level: if leaf_flags[i] {
                        0
                    } else {
                        (LEVELS - 1 - depth[i]) as u8
                    },
                    prio: c.prio,
                    leaf,
                    rate_bps: c.rate_bps,
                    ceil_bps: c.ceil_bps,
                    buffer,
                    cbuffer,
                    tokens: buffer,
                    ctokens: cbuffer,
                    t_c: 0,
                    mode: Mode::CanSend,
                    prio_activity: 0,
                    links: [(NIL, NIL); PRIOS],
                    quantum: i64::from(c.quantum),
                    deficit: [0; LEVELS],
                    active_flows: 0,
                    stats: ClassStats::default(),
                }
            })
            .collect();
        let first_leaf = leaf_flags.iter().position(|&l| l).unwrap_or(0) as u32;
        Self {
            classes,
            feeds: vec![[Feed::default(); PRIOS]; n],
            rows: [[Feed::default(); PRIOS]; LEVELS],
            row_mask: [0; LEVELS],
            wait: TimeHeap::new(n),
            inner,
            leaf_of: vec![first_leaf; cfg.max_flows as usize],
            picked: (NIL, 0),
            draining: false,
            now: 0,
        }
    }

    /// Classes in the tree.
    pub fn classes(&self) -> usize {
        self.classes.len()
    }

    /// Class `i`'s state and counters.
    pub fn class(&self, i: usize) -> Option<ClassView> {
        self.classes.get(i).map(|c| ClassView {
            mode: c.mode,
            tokens_ps: c.tokens,
            ctokens_ps: c.ctokens,
            stats: c.stats,
        })
    }

    /// The leaf class flow `id` belongs to.
    pub fn class_of(&self, id: usize) -> Option<u32> {
        self.leaf_of.get(id).copied()
    }

    /// The feed a class's lookup walks: the row (`owner` NIL) or an inner
    /// class's.
    #[inline]
    fn feed_mut(&mut self, owner: u32, level: usize, prio: usize) -> &mut Feed {
        if owner == NIL {
            &mut self.rows[level][prio]
        } else {
            &mut self.feeds[owner as usize][prio]
        }
    }

    /// Whether class `c` is in the feed of `owner` (NIL: the row at
    /// `level`) at `prio`: a row holds classes that can send, a feed the
    /// children that may borrow, each at the priorities of its activity.
    #[inline]
    fn in_feed(&self, c: u32, owner: u32, level: usize, prio: usize) -> bool {
        let cl = &self.classes[c as usize];
        let active = cl.prio_activity & (1 << prio) != 0;
        if owner == NIL {
            active && cl.mode == Mode::CanSend && cl.level as usize == level
        } else {
            active && cl.mode == Mode::MayBorrow && cl.parent == owner
        }
    }

    /// Appends `c` to a feed (or row) at `prio`.
    fn push(&mut self, owner: u32, level: usize, prio: usize, c: u32) {
        let tail = self.feed_mut(owner, level, prio).tail;
        self.classes[c as usize].links[prio] = (tail, NIL);
        if tail == NIL {
            self.feed_mut(owner, level, prio).head = c;
        } else {
            self.classes[tail as usize].links[prio].1 = c;
        }
        self.feed_mut(owner, level, prio).tail = c;
    }

    /// Takes `c` out of a feed (or row) at `prio`; a pointer at it moves to
    /// the next one. Returns whether the feed is now empty.
    fn unlink(&mut self, owner: u32, level: usize, prio: usize, c: u32) -> bool {
        let (prev, next) = self.classes[c as usize].links[prio];
        self.classes[c as usize].links[prio] = (NIL, NIL);
        if prev != NIL {
            self.classes[prev as usize].links[prio].1 = next;
        }
        if next != NIL {
            self.classes[next as usize].links[prio].0 = prev;
        }
        let f = self.feed_mut(owner, level, prio);
        if f.ptr == c {
            // The pointer moves on; the first class whose turn was cut
            // short is remembered until the next lookup.
            f.ptr = next;
            if f.hint == NIL {
                f.hint = c;
            }
        }
        if prev == NIL {
            f.head = next;
        }
        if next == NIL {
            f.tail = prev;
        }
        f.head == NIL
    }

    fn add_to_row(&mut self, c: u32, mask: u8) {
        let level = self.classes[c as usize].level as usize;
        self.row_mask[level] |= mask;
        let mut m = mask;
        while m != 0 {
            let prio = m.trailing_zeros() as usize;
            m &= m - 1;
            self.push(NIL, level, prio, c);
        }
    }

    fn remove_from_row(&mut self, c: u32, mask: u8) {
        let level = self.classes[c as usize].level as usize;
        let mut emptied = 0u8;
        let mut m = mask;
        while m != 0 {
            let prio = m.trailing_zeros() as usize;
            m &= m - 1;
            if self.unlink(NIL, level, prio, c) {
                emptied |= 1 << prio;
            }
        }
        self.row_mask[level] &= !emptied;
    }

    /// Connects class `c` (its mode and `prio_activity` set) to its
    /// ancestors' feeds and the rows (`htb_activate_prios`).
    fn activate_prios(&mut self, mut c: u32) {
        let mut p = self.classes[c as usize].parent;
        let mut mask = self.classes[c as usize].prio_activity;
        while self.classes[c as usize].mode == Mode::MayBorrow && p != NIL && mask != 0 {
            let mut m = mask;
            while m != 0 {
                let prio = m.trailing_zeros() as usize;
                m &= m - 1;
                if self.feeds[p as usize][prio].head != NIL {
                    // The parent is active at this priority already.
                    mask &= !(1 << prio);
                }
                self.push(p, 0, prio, c);
            }
            self.classes[p as usize].prio_activity |= mask;
            c = p;
            p = self.classes[c as usize].parent;
        }
        if self.classes[c as usize].mode == Mode::CanSend && mask != 0 {
            self.add_to_row(c, mask);
        }
    }

    /// Disconnects class `c` (its mode still the old one) from the feeds
    /// and rows (`htb_deactivate_prios`).
    fn deactivate_prios(&mut self, mut c: u32) {
        let mut p = self.classes[c as usize].parent;
        let mut mask = self.classes[c as usize].prio_activity;
        while self.classes[c as usize].mode == Mode::MayBorrow && p != NIL && mask != 0 {
            let m0 = mask;
            mask = 0;
            let mut m = m0;
            while m != 0 {
                let prio = m.trailing_zeros() as usize;
                m &= m - 1;
                if self.unlink(p, 0, prio, c) {
                    mask |= 1 << prio;
                }
            }
            self.classes[p as usize].prio_activity &= !mask;
            c = p;
            p = self.classes[c as usize].parent;
        }
        if self.classes[c as usize].mode == Mode::CanSend && mask != 0 {
            self.remove_from_row(c, mask);
        }
    }

    /// The mode class `c` has `diff` ps after its last update; `diff`
    /// becomes the time until that mode ends, ps (`htb_class_mode`).
    #[inline]
    fn class_mode(&self, c: u32, diff: &mut i64) -> Mode {
        let cl = &self.classes[c as usize];
        let toks = cl.ctokens.saturating_add(*diff);
        if toks < 0 {
            *diff = -toks;
            return Mode::CantSend;
        }
        let toks = cl.tokens.saturating_add(*diff);
        if toks >= 0 {
            return Mode::CanSend;
        }
        *diff = -toks;
        Mode::MayBorrow
    }

    /// `htb_change_class_mode`.
    fn change_mode(&mut self, c: u32, diff: &mut i64) {
        let new = self.class_mode(c, diff);
        let old = self.classes[c as usize].mode;
        if new == old {
            return;
        }
        if self.classes[c as usize].prio_activity != 0 {
            if old != Mode::CantSend {
                self.deactivate_prios(c);
            }
            self.classes[c as usize].mode = new;
            if new != Mode::CantSend {
                self.activate_prios(c);
            }
        } else {
            self.classes[c as usize].mode = new;
        }
    }

    /// Time since class `c`'s last update, ps, at most [`MBUFFER_PS`].
    #[inline]
    fn elapsed_ps(&self, c: u32, now: u64) -> i64 {
        let ns = now.saturating_sub(self.classes[c as usize].t_c);
        (ns.min(MBUFFER_PS as u64 / 1000) * 1000) as i64
    }

    /// Puts class `c` in the wait queue, due `delay_ps` from now.
    #[inline]
    fn wait_for(&mut self, c: u32, delay_ps: i64) {
        let ns = (delay_ps.max(0) as u64).div_ceil(1000).max(1);
        self.wait.set(c, self.now.saturating_add(ns));
    }

    /// Applies the mode changes due by now (`htb_do_events`).
    fn do_events(&mut self) {
        while let Some((_, c)) = self.wait.pop_due(self.now) {
            let mut diff = self.elapsed_ps(c, self.now);
            self.change_mode(c, &mut diff);
            if self.classes[c as usize].mode != Mode::CanSend {
                self.wait_for(c, diff);
            }
        }
    }

    /// The leaf to serve next at `level`, `prio` (`htb_lookup_leaf`).
    fn lookup_leaf(&mut self, level: usize, prio: usize) -> Option<u32> {
        // The feeds walked so far: NIL for the row, else the inner class.
        let mut stack = [NIL; LEVELS + 1];
        let mut sp = 0usize;
        // Bounded: each step moves down a level or a pointer forward.
        for _ in 0..(4 * self.classes.len() + 16) {
            let owner = stack[sp];
            let mut f = *self.feed_mut(owner, level, prio);
            if f.hint != NIL {
                // The class whose turn it was left and may be back.
                if self.in_feed(f.hint, owner, level, prio) {
                    f.ptr = f.hint;
                }
                f.hint = NIL;
                *self.feed_mut(owner, level, prio) = f;
            }
            if f.ptr == NIL {
                // Past the end: rewind, and move the parent's pointer on.
                if f.head == NIL {
                    return None;
                }
                self.feed_mut(owner, level, prio).ptr = f.head;
                if sp > 0 {
                    sp -= 1;
                    let up = stack[sp];
                    let ptr = self.feed_mut(up, level, prio).ptr;
                    if ptr == NIL {
                        return None;
                    }
                    let next = self.classes[ptr as usize].links[prio].1;
                    self.feed_mut(up, level, prio).ptr = next;
                }
            } else {
                let c = f.ptr;
                if self.classes[c as usize].level == 0 {
                    return Some(c);
                }
                if sp + 1 >= stack.len() {
                    return None;
                }
                sp += 1;
                stack[sp] = c;
            }
        }
        None
    }

    /// Charges `bytes` sent from leaf `c`, lent at `level`
    /// (`htb_charge_class`).
    fn charge(&mut self, mut c: u32, level: u8, bytes: u32) {
        let now = self.now;
        while c != NIL {
            let diff = self.elapsed_ps(c, now);
            let cl = &mut self.classes[c as usize];
            if cl.level >= level {
                if cl.level == level {
                    cl.stats.lends += 1;
                }
                let toks =
                    (cl.tokens.saturating_add(diff)).min(cl.buffer) - cost_ps(bytes, cl.rate_bps);
                cl.tokens = toks.max(1 - MBUFFER_PS);
            } else {
                cl.stats.borrows += 1;
                cl.tokens = cl.tokens.saturating_add(diff);
            }
            let ctoks =
                (cl.ctokens.saturating_add(diff)).min(cl.cbuffer) - cost_ps(bytes, cl.ceil_bps);
            cl.ctokens = ctoks.max(1 - MBUFFER_PS);
            cl.t_c = now;
            cl.stats.packets += 1;
            cl.stats.bytes += u64::from(bytes);
            let old = cl.mode;
            let mut d = 0;
            self.change_mode(c, &mut d);
            let new = self.classes[c as usize].mode;
            if old != new {
                if old != Mode::CanSend {
                    self.wait.remove(c);
                }
                if new != Mode::CanSend {
                    self.wait_for(c, d);
                }
            }
            c = self.classes[c as usize].parent;
        }
    }

    /// A leaf with backlog, ignoring every limit (a drain at `u64::MAX`).
    #[cold]
    fn any_backlogged_leaf(&self) -> Option<u32> {
        self.classes
            .iter()
            .position(|c| c.leaf != NIL && c.active_flows > 0)
            .map(|i| i as u32)
    }

    #[inline]
    fn inner_of(&mut self, c: u32) -> &mut A {
        let leaf = self.classes[c as usize].leaf as usize;
        &mut self.inner[leaf]
    }
}

impl<A: Algorithm> Algorithm for Htb<A> {
    type Flow = A::Flow;
    const NAME: &'static str = "htb";
    const PUSHOUT: bool = A::PUSHOUT;
    const PACEABLE: bool = A::PACEABLE;
    const CHARGES_DROPS: bool = A::CHARGES_DROPS;
    const RESERVED_BYTES_PER_FLOW: usize = A::RESERVED_BYTES_PER_FLOW + 4;

    /// One root leaf class without a limit (the tree comes with
    /// [`Htb::with_tree`]).
    fn new(cfg: &SchedConfig) -> Self {
        let tree = Tree {
            classes: vec![ClassSpec::at_rate(None, u64::MAX)],
            inner: vec![false],
        };
        Self::with_tree(cfg, &tree)
    }

    fn configure(
        &mut self,
        flows: &mut [Flow<A::Flow>],
        id: usize,
        cfg: &FlowConfig,
        fresh: bool,
    ) -> Result<(), ConfigError> {
        let class = cfg.class as usize;
        let Some(c) = self.classes.get(class) else {
            return Err(ConfigError::OutOfRange {
                what: "class",
                value: class as u64,
                min: 0,
                max: self.classes.len() as u64 - 1,
            });
        };
        if c.leaf == NIL {
            return Err(ConfigError::Unsupported(
                "flows go to leaf classes; this class has children",
            ));
        }
        let Some(&old) = self.leaf_of.get(id) else {
            return Err(ConfigError::TooManyFlows {
                max: self.leaf_of.len() as u32,
            });
        };
        if !fresh && old != class as u32 {
            // An idle flow moving to another leaf leaves the old scheduler.
            self.inner_of(old).remove(flows, id);
            self.inner_of(class as u32)
                .configure(flows, id, cfg, true)?;
        } else {
            self.inner_of(class as u32)
                .configure(flows, id, cfg, fresh)?;
        }
        self.leaf_of[id] = class as u32;
        Ok(())
    }

    fn remove(&mut self, flows: &mut [Flow<A::Flow>], id: usize) {
        if let Some(&c) = self.leaf_of.get(id) {
            self.inner_of(c).remove(flows, id);
        }
    }

    #[inline]
    fn arrived(&mut self, flows: &mut [Flow<A::Flow>], id: usize, was_idle: bool, now_ns: u64) {
        let c = self.leaf_of[id];
        self.inner_of(c).arrived(flows, id, was_idle, now_ns);
        if was_idle {
            let cl = &mut self.classes[c as usize];
            cl.active_flows += 1;
            if cl.prio_activity == 0 {
                cl.prio_activity = 1 << cl.prio;
                self.activate_prios(c);
            }
        }
    }

    fn select(&mut self, flows: &mut [Flow<A::Flow>]) -> Option<usize> {
        let now = self.now;
        self.select_at(flows, now)
    }

    #[inline]
    fn select_at(&mut self, flows: &mut [Flow<A::Flow>], now_ns: u64) -> Option<usize> {
        if now_ns == u64::MAX {
            // A drain: whatever is queued, limits ignored.
            let c = self.any_backlogged_leaf()?;
            self.picked = (c, 0);
            self.draining = true;
            return self.inner_of(c).select(flows);
        }
        self.draining = false;
        self.now = now_ns;
        if self.wait.peek().is_some_and(|(t, _)| t <= now_ns) {
            self.do_events();
        }
        for level in 0..LEVELS {
            let mut m = self.row_mask[level];
            while m != 0 {
                let prio = m.trailing_zeros() as usize;
                m &= m - 1;
                if let Some(c) = self.lookup_leaf(level, prio) {
                    self.picked = (c, level as u8);
                    return self.inner_of(c).select(flows);
                }
            }
        }
        None
    }

    #[inline]
    fn served(
        &mut self,
        flows: &mut [Flow<A::Flow>],
        id: usize,
        len: u32,
        now_empty: bool,
        now_ns: u64,
    ) {
        let c = self.leaf_of[id];
        self.inner_of(c).served(flows, id, len, now_empty, now_ns);
        let (picked, level) = self.picked;
        let lvl = level as usize;
        if !self.draining && picked == c {
            let cl = &mut self.classes[c as usize];
            cl.deficit[lvl] -= i64::from(len);
            if cl.deficit[lvl] < 0 {
                cl.deficit[lvl] += cl.quantum;
                // The round moves on (in the parent's feed, or the row).
                let (parent, prio) = (cl.parent, cl.prio as usize);
                let owner = if lvl > 0 { parent } else { NIL };
                let ptr = self.feed_mut(owner, lvl, prio).ptr;
                if ptr != NIL {
                    let next = self.classes[ptr as usize].links[prio].1;
                    self.feed_mut(owner, lvl, prio).ptr = next;
                }
            }
        }
        if now_empty {
            let cl = &mut self.classes[c as usize];
            cl.active_flows = cl.active_flows.saturating_sub(1);
            if cl.active_flows == 0 && cl.prio_activity != 0 {
                self.deactivate_prios(c);
                self.classes[c as usize].prio_activity = 0;
            }
        }
        if !self.draining && picked == c {
            self.charge(c, level, len);
        } else {
            let cl = &mut self.classes[c as usize];
            cl.stats.packets += 1;
            cl.stats.bytes += u64::from(len);
        }
    }

    fn next_ready(&self) -> Option<u64> {
        if self.row_mask.iter().any(|&m| m != 0) {
            return None;
        }
        self.wait.peek().map(|(t, _)| t)
    }
}
