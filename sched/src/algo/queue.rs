//! A flow's packet queue: an intrusive FIFO list through the engine's
//! packet pool, with its limits kept as room left. The queue is the common
//! part of every slab slot ([`super::plugin::Flow`]); the engine links and
//! unlinks packets, algorithms read it.

/// End of an intrusive list (a flow id or pool index can never be this:
/// both are bounded by `SchedConfig::MAX_FLOWS` / `MAX_PACKETS`).
pub const NIL: u32 = u32::MAX;

/// The common part of a flow: its packet queue, limits and accounting.
///
/// Limits are kept as *room left* (`room_pkts`, `room_bytes`) rather than as
/// counts next to limits: the fast path then checks each limit with one
/// compare and updates it with one instruction; the counts are derived.
#[derive(Debug, Clone)]
pub struct FlowQueue {
    /// Head node; meaningful only while the queue is not empty.
    pub(super) head: u32,
    /// Tail node, `NIL` exactly when the queue is empty.
    pub(super) tail: u32,
    /// Length of the head packet in bytes, 0 when empty. Cached here so
    /// algorithms never touch the pool.
    pub(super) head_len: u32,
    /// Accept `1..=lmax` bytes; 0 marks an unconfigured slab slot.
    pub(super) lmax: u32,
    /// Packets that may still be queued (`limit_pkts - packets`).
    pub(super) room_pkts: u32,
    /// Bytes that may still be queued (`limit_bytes - bytes`).
    pub(super) room_bytes: u32,
    pub(super) limit_pkts: u32,
    pub(super) limit_bytes: u32,
}

impl Default for FlowQueue {
    fn default() -> Self {
        Self {
            head: NIL,
            tail: NIL,
            head_len: 0,
            lmax: 0,
            room_pkts: 0,
            room_bytes: 0,
            limit_pkts: 0,
            limit_bytes: 0,
        }
    }
}

impl FlowQueue {
    /// Packets queued.
    #[inline]
    pub fn pkts(&self) -> u32 {
        self.limit_pkts - self.room_pkts
    }
    /// Bytes queued.
    #[inline]
    pub fn bytes(&self) -> u32 {
        self.limit_bytes - self.room_bytes
    }
    /// True when nothing is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.tail == NIL
    }
    /// Length of the head packet (0 if the queue is empty).
    #[inline]
    pub fn head_len(&self) -> u32 {
        self.head_len
    }
    /// Longest packet accepted (0 for an unconfigured slot).
    #[inline]
    pub fn lmax(&self) -> u32 {
        self.lmax
    }
    /// Whether this slab slot holds a configured flow.
    #[inline]
    pub fn is_configured(&self) -> bool {
        self.lmax != 0
    }
}

/// A pool slot. `next_len` is the length of the packet behind this one, so
/// popping the head never has to touch the next node (one load and one bounds
/// check fewer per packet, measured with callgrind). The tail node's `next` and
/// `next_len` are stale: a queue knows its tail, so nothing marks the end.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node<P> {
    pub(super) pkt: P,
    /// When the packet was enqueued (`now_ns` of its `enqueue`): its sojourn
    /// time at dequeue is measured from here.
    pub(super) stamp: u64,
    pub(super) next: u32,
    pub(super) next_len: u32,
}

/// Appends node `n` (already holding the packet, `len` bytes) to queue `q`,
/// whose room counters the caller has charged. Returns whether the queue was
/// empty. `tail` is `NIL` exactly when the queue
/// is empty, so one `nodes.get_mut(tail)` both tests that and bounds-checks.
#[inline(always)]
pub(super) fn link<P>(q: &mut FlowQueue, nodes: &mut [Node<P>], n: u32, len: u32) -> bool {
    let was_empty = match nodes.get_mut(q.tail as usize) {
        Some(t) => {
            t.next = n;
            t.next_len = len;
            false
        }
        None => {
            q.head = n;
            q.head_len = len;
            true
        }
    };
    q.tail = n;
    was_empty
}

/// Removes the head packet of the non-empty queue `q`, returning its node to
/// the free list. Returns the packet, its length, its enqueue stamp and
/// whether `q` is now empty
/// (the head was the tail: the node's own `next` is stale, see [`Node`]); if
/// so, the caller must [`mark_empty`] it.
#[inline(always)]
pub(super) fn unlink_head<P: Copy>(
    q: &mut FlowQueue,
    nodes: &mut [Node<P>],
    free: &mut u32,
) -> (P, u32, u64, bool) {
    let n = q.head;
    let slot = &mut nodes[n as usize];
    let node = *slot;
    slot.next = *free;
    *free = n;
    let len = q.head_len;
    q.room_pkts += 1;
    q.room_bytes += len;
    q.head = node.next;
    q.head_len = node.next_len;
    (node.pkt, len, node.stamp, n == q.tail)
}

/// Marks `q` empty after `unlink_head` took its last packet.
#[inline(always)]
pub(super) fn mark_empty(q: &mut FlowQueue) {
    q.tail = NIL;
    q.head = NIL;
    q.head_len = 0;
}
