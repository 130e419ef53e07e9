//! CoDel — Controlled Delay.
//!
//! K. Nichols, V. Jacobson, A. McGregor, J. Iyengar, "Controlled Delay
//! Active Queue Management", RFC 8289, 2018; the state machine as Linux
//! `include/net/codel_impl.h` runs it (which `sch_codel` and `sch_fq_codel`
//! share).
//!
//! CoDel looks at each packet's *sojourn time* (now − its enqueue time)
//! when it leaves the queue. While the sojourn stays below `target`, or
//! less than one `mtu` is queued, nothing happens. Once it has stayed above
//! `target` for a whole `interval`, CoDel enters the dropping state and
//! drops (or, for an ECN-capable packet with `ecn` on, marks) one packet,
//! then one more each time the control law says: the next at
//! `drop_next = previous + interval / sqrt(count)`, `count` the packets
//! dropped or marked since it entered. It leaves the state as soon as a
//! packet's sojourn falls below `target` (or the queue empties). Re-entry
//! rule: entering again within `16 · interval` of the last scheduled drop
//! restarts from the previous period's drop rate (`count = count −
//! lastcount` when that is more than 1), not from 1.
//!
//! **Differences from Linux, on purpose.** The control law is computed
//! exactly (`interval · 2^32 / isqrt(count · 2^64)`, error below 1 ns)
//! instead of with Linux's 16-bit Newton step for `1/sqrt(count)`, which
//! spaces the early drops up to ~30 % off `interval/sqrt(count)` (count 2:
//! 0.50 instead of 0.71 of `interval`). An emptied queue resets the state
//! at once (RFC 8289's `dodequeue`), where Linux waits for its next
//! dequeue of the empty queue to notice. Everything else — the strict
//! `now > first_above_time`, the `backlog <= mtu` exemption measured after
//! the packet left, the mark-then-stop in the dropping loop, the re-entry
//! rule with its signed comparison — follows Linux.
//!
//! **One packet per call.** Linux's `codel_dequeue` drops in a loop,
//! dequeuing the next packet itself; here the engine takes packets off the
//! queue and asks about each ([`Codel::on_dequeue`]), so the loop's
//! "evaluate the next packet after a drop" steps are kept in `pending`.
//! The answers, packet by packet, are the same.
//!
//! Time is the caller's `now_ns`; nothing wraps in `u64` nanoseconds.

use super::Decision;
use crate::types::ConfigError;

/// RFC 8289's `target` default: 5 ms.
pub const DEFAULT_TARGET_NS: u64 = 5_000_000;
/// RFC 8289's `interval` default: 100 ms.
pub const DEFAULT_INTERVAL_NS: u64 = 100_000_000;
/// Linux's `mtu` default (`psched_mtu` of a 1500-byte Ethernet device):
/// with at most this many bytes queued CoDel never drops.
pub const DEFAULT_MTU: u32 = 1514;

/// CoDel's parameters, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodelParams {
    target_ns: u64,
    interval_ns: u64,
    mtu: u32,
    ecn: bool,
    ce_threshold_ns: u64,
}

impl Default for CodelParams {
    /// RFC 8289 / `tc qdisc add ... fq_codel`: target 5 ms, interval 100 ms,
    /// ECN on (fq_codel's default), no CE threshold.
    fn default() -> Self {
        Self {
            target_ns: DEFAULT_TARGET_NS,
            interval_ns: DEFAULT_INTERVAL_NS,
            mtu: DEFAULT_MTU,
            ecn: true,
            ce_threshold_ns: u64::MAX,
        }
    }
}

impl CodelParams {
    /// Smallest `target` and `interval`: 1 µs.
    pub const MIN_NS: u64 = 1_000;
    /// Largest `interval`: 100 s (Linux keeps them in a u32 of µs, ~71 min;
    /// a longer one is a unit mistake).
    pub const MAX_INTERVAL_NS: u64 = 100_000_000_000;

    /// Validates `target` (1 µs..=interval) and `interval` (1 µs..=100 s);
    /// `ce_threshold`, if any, marks every ECN-capable packet whose sojourn
    /// exceeds it (fq_codel's `ce_threshold`, for DCTCP-style senders).
    pub fn new(
        target_ns: u64,
        interval_ns: u64,
        ecn: bool,
        ce_threshold_ns: Option<u64>,
    ) -> Result<Self, ConfigError> {
        if !(Self::MIN_NS..=Self::MAX_INTERVAL_NS).contains(&interval_ns) {
            return Err(ConfigError::OutOfRange {
                what: "interval (ns)",
                value: interval_ns,
                min: Self::MIN_NS,
                max: Self::MAX_INTERVAL_NS,
            });
        }
        if !(Self::MIN_NS..=interval_ns).contains(&target_ns) {
            return Err(ConfigError::OutOfRange {
                what: "target (ns, at most the interval)",
                value: target_ns,
                min: Self::MIN_NS,
                max: interval_ns,
            });
        }
        Ok(Self {
            target_ns,
            interval_ns,
            mtu: DEFAULT_MTU,
            ecn,
            ce_threshold_ns: ce_threshold_ns.unwrap_or(u64::MAX),
        })
    }

    /// The same with another `mtu` (64..=65536 bytes).
    pub fn with_mtu(self, mtu: u32) -> Result<Self, ConfigError> {
        if !(64..=65_536).contains(&mtu) {
            return Err(ConfigError::OutOfRange {
                what: "mtu",
                value: mtu as u64,
                min: 64,
                max: 65_536,
            });
        }
        Ok(Self { mtu, ..self })
    }

    /// Acceptable standing delay, ns.
    pub fn target_ns(&self) -> u64 {
        self.target_ns
    }
    /// How long the delay must stay above target before CoDel acts, ns.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }
    /// Whether ECN-capable packets are marked instead of dropped.
    pub fn ecn(&self) -> bool {
        self.ecn
    }
    /// The CE-marking threshold, if any, ns.
    pub fn ce_threshold_ns(&self) -> Option<u64> {
        (self.ce_threshold_ns != u64::MAX).then_some(self.ce_threshold_ns)
    }
    /// Bytes below which the queue is never dropped from.
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// The control law: when the drop after one at `t` is due, `count`
    /// drops into the dropping state: `t + interval / sqrt(count)`.
    pub fn control_law(&self, t: u64, count: u32) -> u64 {
        // isqrt(count · 2^64) = floor(sqrt(count) · 2^32): the quotient is
        // interval / sqrt(count) to well under 1 ns.
        let root = (u128::from(count.max(1)) << 64).isqrt();
        let step = (u128::from(self.interval_ns) << 32) / root;
        t.saturating_add(step as u64)
    }
}

/// After a packet was dropped, how the next one is looked at (the rest of
/// Linux's loop, see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Pending {
    #[default]
    Nothing,
    /// The drop that entered the dropping state: the next packet is
    /// measured and delivered.
    Entered,
    /// A drop in the dropping state: the next packet, if still above
    /// target, schedules the next drop and may be dropped at once.
    Dropped,
}

/// One queue's CoDel state (Linux's `codel_vars`).
#[derive(Debug, Clone, Default)]
pub struct Codel {
    /// Drops (and marks) since entering the dropping state.
    count: u32,
    /// `count` when the dropping state was last entered.
    lastcount: u32,
    dropping: bool,
    pending: Pending,
    /// When the sojourn time will have stayed above target for an
    /// interval; `None` while it is below.
    first_above: Option<u64>,
    /// When the next drop is due (in the dropping state), or was (after).
    drop_next: u64,
    /// Sojourn time of the last packet looked at, ns.
    ldelay: u64,
}

impl Codel {
    /// Drops and marks since the dropping state was entered (the count the
    /// control law uses; kept after it is left, for the re-entry rule).
    pub fn count(&self) -> u32 {
        self.count
    }
    /// Whether the queue is in the dropping state.
    pub fn dropping(&self) -> bool {
        self.dropping
    }
    /// When the next drop is due, ns (meaningful while dropping).
    pub fn drop_next(&self) -> u64 {
        self.drop_next
    }
    /// Sojourn time of the last packet looked at, ns.
    pub fn last_delay(&self) -> u64 {
        self.ldelay
    }

    /// Linux's `codel_should_drop`: whether this packet's sojourn has been
    /// above target for an interval.
    fn should_drop(&mut self, p: &CodelParams, now: u64, sojourn: u64, backlog: u64) -> bool {
        self.ldelay = sojourn;
        if sojourn < p.target_ns || backlog <= u64::from(p.mtu) {
            self.first_above = None;
            return false;
        }
        match self.first_above {
            None => {
                self.first_above = Some(now.saturating_add(p.interval_ns));
                false
            }
            Some(t) => now > t,
        }
    }

    /// The packet at the head left the queue at `now` after `sojourn` ns;
    /// `backlog` bytes remain queued. What to do with it.
    pub fn on_dequeue(
        &mut self,
        p: &CodelParams,
        now: u64,
        sojourn: u64,
        backlog: u64,
        ecn_capable: bool,
    ) -> Decision {
        let drop = self.should_drop(p, now, sojourn, backlog);
        let d = match std::mem::take(&mut self.pending) {
            // Linux measured this packet after the entering drop and sent it.
            Pending::Entered => Decision::Deliver,
            Pending::Dropped => {
                if drop {
                    self.drop_next = p.control_law(self.drop_next, self.count);
                    self.drop_due(p, now, ecn_capable)
                } else {
                    self.dropping = false;
                    Decision::Deliver
                }
            }
            Pending::Nothing if self.dropping => {
                if drop {
                    self.drop_due(p, now, ecn_capable)
                } else {
                    // Sojourn below target: leave the dropping state.
                    self.dropping = false;
                    Decision::Deliver
                }
            }
            Pending::Nothing if drop => self.enter(p, now, ecn_capable),
            Pending::Nothing => Decision::Deliver,
        };
        if d == Decision::Deliver && ecn_capable && sojourn > p.ce_threshold_ns {
            return Decision::Mark;
        }
        d
    }

    /// In the dropping state with this packet above target: drop or mark
    /// it if the next drop is due.
    fn drop_due(&mut self, p: &CodelParams, now: u64, ecn_capable: bool) -> Decision {
        if now < self.drop_next {
            return Decision::Deliver;
        }
        self.count = self.count.saturating_add(1);
        if p.ecn && ecn_capable {
            // A mark ends Linux's loop: the next one is scheduled now.
            self.drop_next = p.control_law(self.drop_next, self.count);
            Decision::Mark
        } else {
            self.pending = Pending::Dropped;
            Decision::Drop
        }
    }

    /// Enters the dropping state with this packet.
    fn enter(&mut self, p: &CodelParams, now: u64, ecn_capable: bool) -> Decision {
        let d = if p.ecn && ecn_capable {
            Decision::Mark
        } else {
            self.pending = Pending::Entered;
            Decision::Drop
        };
        self.dropping = true;
        // If the delay went above target soon after the last dropping
        // period, its drop rate is a good start (signed: drop_next may be
        // ahead of now).
        let delta = self.count.wrapping_sub(self.lastcount);
        let since = now as i128 - self.drop_next as i128;
        self.count = if delta > 1 && since < 16 * i128::from(p.interval_ns) {
            delta
        } else {
            1
        };
        self.lastcount = self.count;
        self.drop_next = p.control_law(now, self.count);
        d
    }

    /// The queue is empty: no standing queue (RFC 8289 `dodequeue`).
    pub fn on_empty(&mut self) {
        self.first_above = None;
        self.dropping = false;
        self.pending = Pending::Nothing;
    }

    /// A packet was pushed out at the global limit: as fq_codel's
    /// `fq_codel_drop`, raise the count so the next dropping period starts
    /// harder.
    pub fn on_pushed_out(&mut self) {
        self.count = self.count.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn params(ecn: bool) -> CodelParams {
        CodelParams::new(5 * MS, 100 * MS, ecn, None).expect("params")
    }

    #[test]
    fn parameters_are_checked_with_their_ranges() {
        assert!(CodelParams::new(5 * MS, 100 * MS, true, None).is_ok());
        let e = CodelParams::new(200 * MS, 100 * MS, true, None).expect_err("target > interval");
        assert!(e.to_string().contains("target"), "{e}");
        assert!(CodelParams::new(5 * MS, 0, true, None).is_err());
        assert!(CodelParams::new(0, 100 * MS, true, None).is_err());
        assert!(params(true).with_mtu(10).is_err());
    }

    #[test]
    fn control_law_is_interval_over_sqrt_count() {
        let p = params(false);
        for count in [1u32, 2, 3, 4, 9, 100, 12_345, u32::MAX] {
            let want = 100e6 / f64::from(count).sqrt();
            let got = p.control_law(0, count) as f64;
            assert!((got - want).abs() <= 1.0, "count {count}: {got} vs {want}");
        }
    }

    #[test]
    fn a_short_burst_above_target_is_left_alone() {
        let p = params(false);
        let mut c = Codel::default();
        // 99 ms of packets each 10 ms old, 1 ms apart, plenty queued: below an interval.
        for i in 0..100 {
            let now = i * MS;
            assert_eq!(
                c.on_dequeue(&p, now, 10 * MS, 100_000, false),
                Decision::Deliver
            );
        }
        // Then one below target resets the clock.
        assert_eq!(
            c.on_dequeue(&p, 100 * MS, MS, 100_000, false),
            Decision::Deliver
        );
        assert_eq!(
            c.on_dequeue(&p, 150 * MS, 10 * MS, 100_000, false),
            Decision::Deliver
        );
        assert!(!c.dropping());
    }

    #[test]
    fn nothing_is_dropped_with_at_most_an_mtu_queued() {
        let p = params(false);
        let mut c = Codel::default();
        for i in 0..1000 {
            let d = c.on_dequeue(&p, i * MS, 50 * MS, 1514, false);
            assert_eq!(d, Decision::Deliver);
        }
    }

    /// Packets every 10 µs, each 20 ms old: the first drop comes one
    /// interval after the delay went above target, the next one interval
    /// later, then each `interval / sqrt(count)` after the previous one was
    /// due, to the 10 µs grid.
    #[test]
    fn drops_start_after_an_interval_and_follow_the_control_law() {
        const STEP: u64 = 10_000;
        let p = params(false);
        let mut c = Codel::default();
        let mut drops = Vec::new();
        for i in 0..100_000u64 {
            let now = i * STEP;
            if c.on_dequeue(&p, now, 20 * MS, 1_000_000, false) == Decision::Drop {
                drops.push(now);
            }
        }
        assert!(drops.len() > 10, "{drops:?}");
        // first_above = 0 + interval; the first drop is the first packet after it.
        assert_eq!(drops[0], 100 * MS + STEP);
        let mut due = drops[0] as f64;
        for (n, &t) in drops.iter().enumerate().skip(1) {
            due += 100e6 / (n as f64).sqrt();
            assert!(
                t as f64 >= due && (t as f64) < due + STEP as f64,
                "drop {n} at {t}, due {due}"
            );
        }
        assert!(c.dropping());
        assert_eq!(c.count() as usize, drops.len());
    }

    #[test]
    fn ecn_capable_packets_are_marked_instead_and_marks_pace_like_drops() {
        let p = params(true);
        let mut c = Codel::default();
        let mut marks = Vec::new();
        for i in 0..100_000u64 {
            let now = i * 10_000;
            match c.on_dequeue(&p, now, 20 * MS, 1_000_000, true) {
                Decision::Mark => marks.push(now),
                Decision::Drop => panic!("an ECN-capable packet was dropped at {now}"),
                Decision::Deliver => {}
            }
        }
        assert_eq!(marks[0], 100 * MS + 10_000);
        assert_eq!(marks[1], 200 * MS + 10_000);
        // Not ECN-capable: the same queue drops.
        let mut c = Codel::default();
        let dropped = (0..100_000u64)
            .filter(|i| c.on_dequeue(&p, i * 10_000, 20 * MS, 1_000_000, false) == Decision::Drop)
            .count();
        assert!(dropped > 10);
    }

    #[test]
    fn leaving_and_reentering_soon_resumes_the_previous_drop_rate() {
        let p = params(false);
        let mut c = Codel::default();
        let mut now = 0;
        // A long standing queue: many drops.
        while now < 2_000 * MS {
            let _ = c.on_dequeue(&p, now, 20 * MS, 1_000_000, false);
            now += 100_000;
        }
        let before = c.count();
        assert!(before > 20, "count {before}");
        // The delay drops below target briefly, then rises again.
        assert_eq!(
            c.on_dequeue(&p, now, MS, 1_000_000, false),
            Decision::Deliver
        );
        assert!(!c.dropping());
        let mut entered_at = None;
        while entered_at.is_none() {
            now += 100_000;
            if c.on_dequeue(&p, now, 20 * MS, 1_000_000, false) == Decision::Drop {
                entered_at = Some(now);
            }
        }
        // count - lastcount > 1 and within 16 intervals: not back to 1.
        assert!(c.dropping());
        assert!(c.count() > 1, "count restarted at {}", c.count());
        assert_eq!(c.count(), before - 1, "delta = count - lastcount(1)");
    }

    #[test]
    fn an_empty_queue_resets_the_state() {
        let p = params(false);
        let mut c = Codel::default();
        let mut now = 0;
        while !c.dropping() {
            let _ = c.on_dequeue(&p, now, 20 * MS, 1_000_000, false);
            now += MS;
        }
        c.on_empty();
        assert!(!c.dropping());
        // A full interval above target again before any drop.
        let start = now;
        loop {
            now += MS;
            if c.on_dequeue(&p, now, 20 * MS, 1_000_000, false) == Decision::Drop {
                break;
            }
        }
        assert!(
            now - start > 100 * MS,
            "dropped {} ms after refill",
            (now - start) / MS
        );
    }

    #[test]
    fn ce_threshold_marks_every_ecn_capable_packet_above_it() {
        let p = CodelParams::new(5 * MS, 100 * MS, true, Some(MS)).expect("params");
        let mut c = Codel::default();
        assert_eq!(c.on_dequeue(&p, 0, 2 * MS, 100_000, true), Decision::Mark);
        assert_eq!(
            c.on_dequeue(&p, 1, 2 * MS, 100_000, false),
            Decision::Deliver
        );
        assert_eq!(
            c.on_dequeue(&p, 2, MS / 2, 100_000, true),
            Decision::Deliver
        );
    }
}
