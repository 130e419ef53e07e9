//! Trace-driven links, as Mahimahi's `mm-link` runs them.
//!
//! A trace is a list of delivery opportunities, one per line, each the
//! millisecond (from the link's start) at which the link may deliver 1504
//! bytes; several lines with the same millisecond are several
//! opportunities. The trace repeats with the period of its last line.
//! Packets leave in order; a packet uses as many opportunities as its bytes
//! need (a packet larger than what is left of one goes on in the next), an
//! opportunity's bytes left over after a packet go to the next packet if it
//! was already waiting, and are lost otherwise; an opportunity at the very
//! millisecond a packet arrives is gone before it (Mahimahi burns the
//! opportunities up to "now" before it enqueues). A packet leaves the link
//! at the opportunity that carries its last byte.
//!
//! Bytes are the packet's from its network header on (Mahimahi sees IP
//! packets on a TUN device; the frame's link-layer header is not charged).
//!
//! Cost per packet is O(1) amortised while the link is busy; after an idle
//! spell the first opportunity past the arrival is found by skipping whole
//! periods and a binary search (O(log n) in the trace length), unless the
//! packet log is on, which records every opportunity as Mahimahi does.
//!
//! The packet log ([`LogLine`]) is Mahimahi's: `+` arrivals, `#`
//! opportunities, `-` departures with their delay on the link, `d` drops,
//! times in ms on the caller's clock (xdpsched's starts at 0 with it, so a
//! log runs on across reloads; after an idle spell of more than a period,
//! the opportunities of the whole periods skipped are counted as lost lines
//! rather than written one by one); the caller writes it
//! ([`LogLine::write`]) after a header ([`log_header`]) so that
//! `mm-throughput-graph` and `mm-delay-graph` read it.

use std::sync::Arc;

/// Bytes one delivery opportunity carries (Mahimahi's `PACKET_SIZE`).
pub const OPPORTUNITY_BYTES: u32 = 1504;
/// Most opportunities a trace may list.
pub const MAX_TRACE_LINES: usize = 10_000_000;
/// Log lines a link keeps until the caller drains them; beyond, lines are
/// counted as lost.
pub const LOG_CAPACITY: usize = 1 << 16;
/// Latest opportunity a trace may list: 1 000 000 000 ms (11.6 days).
pub const MAX_TRACE_MS: u64 = 1_000_000_000;

/// A parsed trace: opportunity times in ms, non-decreasing, the last > 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Opportunity times, ms from the start.
    pub ms: Vec<u64>,
}

impl Trace {
    /// Parses Mahimahi's format: one non-negative integer per line (ms),
    /// non-decreasing; blank lines and `#` comments are skipped. Errors
    /// name the line.
    pub fn parse(text: &str) -> Result<Trace, String> {
        let mut ms = Vec::new();
        let mut last = 0u64;
        for (n, line) in text.lines().enumerate() {
            let w = line.split('#').next().unwrap_or("").trim();
            if w.is_empty() {
                continue;
            }
            let t: u64 = w
                .parse()
                .map_err(|_| format!("line {}: {w:?} is not a whole number of ms", n + 1))?;
            if t > MAX_TRACE_MS {
                return Err(format!(
                    "line {}: {t} ms is past the longest trace ({MAX_TRACE_MS} ms)",
                    n + 1
                ));
            }
            if t < last {
                return Err(format!(
                    "line {}: {t} ms comes before the line above ({last} ms); a trace is in time order",
                    n + 1
                ));
            }
            if ms.len() >= MAX_TRACE_LINES {
                return Err(format!("more than {MAX_TRACE_LINES} lines"));
            }
            last = t;
            ms.push(t);
        }
        match ms.last() {
            None => Err("no opportunities".to_owned()),
            Some(0) => Err(
                "the last opportunity is at 0 ms: the trace needs a length (its last line) above 0"
                    .to_owned(),
            ),
            Some(_) => Ok(Trace { ms }),
        }
    }

    /// The period: the last line, ms.
    pub fn period_ms(&self) -> u64 {
        self.ms.last().copied().unwrap_or(1)
    }

    /// The mean rate the trace gives, bit/s (1504 bytes per opportunity).
    pub fn mean_bps(&self) -> u64 {
        let bits = self.ms.len() as u128 * u128::from(OPPORTUNITY_BYTES) * 8 * 1000;
        (bits / u128::from(self.period_ms())) as u64
    }
}

/// One line of Mahimahi's packet log (times in ms since the link started).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLine {
    /// `T + BYTES`: a packet arrived.
    Arrival {
        /// ms.
        t: u64,
        /// Its bytes.
        bytes: u32,
    },
    /// `T # 1504`: a delivery opportunity.
    Opportunity {
        /// ms.
        t: u64,
    },
    /// `T - BYTES DELAY`: a packet left the link, `delay` ms after it arrived.
    Departure {
        /// ms.
        t: u64,
        /// Its bytes.
        bytes: u32,
        /// ms on the link (queue and transmission).
        delay: u64,
    },
    /// `T d 1 BYTES`: a packet was dropped at the link's queue.
    Drop {
        /// ms.
        t: u64,
        /// Its bytes.
        bytes: u32,
    },
}

impl LogLine {
    /// Writes the line as Mahimahi does.
    pub fn write(&self, w: &mut impl std::fmt::Write) -> std::fmt::Result {
        match *self {
            LogLine::Arrival { t, bytes } => writeln!(w, "{t} + {bytes}"),
            LogLine::Opportunity { t } => writeln!(w, "{t} # {OPPORTUNITY_BYTES}"),
            LogLine::Departure { t, bytes, delay } => writeln!(w, "{t} - {bytes} {delay}"),
            LogLine::Drop { t, bytes } => writeln!(w, "{t} d 1 {bytes}"),
        }
    }
}

/// The header of a packet log, as `mm-link` writes it: `link` names the
/// pipe, `trace` the file, `init_ms` the wall-clock ms at which the link
/// started (log times are relative to it).
pub fn log_header(link: &str, trace: &str, init_ms: u64) -> String {
    format!(
        "# mahimahi mm-link ({link}) [{trace}] > xdpsched\n# command line: xdpsched\n# queue: the pipe's scheduler\n# init timestamp: {init_ms}\n# base timestamp: 0\n"
    )
}

/// A link replaying a trace (see the module docs).
#[derive(Debug, Clone)]
pub struct TraceLink {
    trace: Arc<Trace>,
    period_ns: u64,
    /// The next opportunity: its index and the start of its period, ns.
    idx: usize,
    base: u64,
    /// The last opportunity a packet used, and its bytes left.
    cur_t: u64,
    cur_left: u32,
    /// The packet log, if kept; lines that did not fit.
    log: Option<Vec<LogLine>>,
    log_lost: u64,
}

impl TraceLink {
    /// A link replaying `trace` from `epoch_ns`, keeping a packet log if `log`.
    pub fn new(trace: Arc<Trace>, epoch_ns: u64, log: bool) -> Self {
        let period_ns = trace.period_ms().saturating_mul(1_000_000);
        Self {
            trace,
            period_ns,
            idx: 0,
            base: epoch_ns,
            cur_t: 0,
            cur_left: 0,
            log: log.then(|| Vec::with_capacity(LOG_CAPACITY)),
            log_lost: 0,
        }
    }

    /// A log time: ms on the caller's clock (xdpsched's starts at 0 when it
    /// starts, so a log goes on across reloads).
    #[inline]
    fn ms(&self, t: u64) -> u64 {
        t / 1_000_000
    }

    #[inline]
    fn record(&mut self, line: LogLine) {
        if let Some(log) = &mut self.log {
            if log.len() < LOG_CAPACITY {
                log.push(line);
            } else {
                self.log_lost += 1;
            }
        }
    }

    /// The time of the next opportunity.
    #[inline]
    fn next_time(&self) -> u64 {
        self.base + self.trace.ms[self.idx] * 1_000_000
    }

    /// Uses the next opportunity.
    #[inline]
    fn advance(&mut self) {
        if self.log.is_some() {
            let t = self.ms(self.next_time());
            self.record(LogLine::Opportunity { t });
        }
        self.idx += 1;
        if self.idx == self.trace.ms.len() {
            self.idx = 0;
            self.base += self.period_ns;
        }
    }

    /// Burns the opportunities at or before `t` (unused: their bytes are
    /// lost).
    #[inline]
    fn skip_to(&mut self, t: u64) {
        if t >= self.base + self.period_ns {
            self.skip_periods(t);
        }
        while self.next_time() <= t {
            self.advance();
        }
    }

    /// After an idle spell of a period or more: whole periods at once, then
    /// a binary search in the last (one by one when logging: every
    /// opportunity is in the log).
    #[cold]
    fn skip_periods(&mut self, t: u64) {
        if self.log.is_some() {
            // Logging: the opportunities of the last period are walked and
            // logged; those of the whole periods before it are counted as
            // lost log lines (bounded work after any idle spell).
            let periods = (t - self.base) / self.period_ns;
            if periods > 1 {
                let n = (periods - 1) * self.trace.ms.len() as u64;
                self.log_lost = self.log_lost.saturating_add(n);
                self.base += (periods - 1) * self.period_ns;
            }
            return;
        }
        {
            // Whole periods at once, then a binary search in the last.
            let periods = (t - self.base) / self.period_ns;
            self.base += periods * self.period_ns;
            let within = (t - self.base) / 1_000_000;
            self.idx = self.trace.ms.partition_point(|&m| m <= within);
            // An opportunity at `within` ms but after `t`'s ns? ms are
            // whole: m ≤ within ⇔ base + m·1e6 ≤ t.
            if self.idx == self.trace.ms.len() {
                self.idx = 0;
                self.base += self.period_ns;
            }
        }
    }

    /// A packet of `bytes` arrived at `at` (for the log).
    #[inline]
    pub fn arrived(&mut self, at: u64, bytes: u32) {
        if self.log.is_some() {
            let t = self.ms(at);
            self.record(LogLine::Arrival { t, bytes });
        }
    }

    /// A packet of `bytes` was dropped at `at` before the link (for the log).
    #[inline]
    pub fn dropped(&mut self, at: u64, bytes: u32) {
        if self.log.is_some() {
            let t = self.ms(at);
            self.record(LogLine::Drop { t, bytes });
        }
    }

    /// The packet at the head of the queue, `bytes` long, that arrived at
    /// `arrival`: the instant its last byte leaves.
    #[inline]
    pub fn depart(&mut self, arrival: u64, bytes: u32) -> u64 {
        let mut r = bytes.max(1);
        let mut done = None;
        if self.cur_left > 0 && self.cur_t > arrival {
            // What the opportunity in use has left, if it was waiting then.
            let take = r.min(self.cur_left);
            r -= take;
            self.cur_left -= take;
            if r == 0 {
                done = Some(self.cur_t);
            }
        }
        let t = match done {
            Some(t) => t,
            None => {
                self.cur_left = 0;
                self.skip_to(arrival);
                loop {
                    let t = self.next_time();
                    self.advance();
                    let take = r.min(OPPORTUNITY_BYTES);
                    r -= take;
                    if r == 0 {
                        self.cur_t = t;
                        self.cur_left = OPPORTUNITY_BYTES - take;
                        break t;
                    }
                }
            }
        };
        if self.log.is_some() {
            let (at, delay) = (self.ms(t), self.ms(t).saturating_sub(self.ms(arrival)));
            self.record(LogLine::Departure {
                t: at,
                bytes,
                delay,
            });
        }
        t
    }

    /// Hands the log lines kept so far to `f`; returns (and resets) how many
    /// did not fit since the last call.
    pub fn drain_log(&mut self, f: &mut impl FnMut(&LogLine)) -> u64 {
        if let Some(log) = &mut self.log {
            for l in log.drain(..) {
                f(&l);
            }
        }
        std::mem::take(&mut self.log_lost)
    }

    /// Whether a packet log is kept.
    pub fn logging(&self) -> bool {
        self.log.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(ms: &[u64], log: bool) -> TraceLink {
        TraceLink::new(Arc::new(Trace { ms: ms.to_vec() }), 0, log)
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn parse_takes_mahimahis_format_and_names_bad_lines() {
        let t = Trace::parse("# a comment\n1\n1\n5\n\n12\n").expect("parse");
        assert_eq!(t.ms, vec![1, 1, 5, 12]);
        assert_eq!(t.period_ms(), 12);
        // 4 · 1504 bytes per 12 ms.
        assert_eq!(t.mean_bps(), 4 * 1504 * 8 * 1000 / 12);
        assert!(Trace::parse("3\n2\n")
            .expect_err("out of order")
            .contains("line 2"));
        assert!(Trace::parse("x\n")
            .expect_err("not a number")
            .contains("line 1"));
        assert!(Trace::parse("0\n").is_err());
        assert!(
            Trace::parse("5\n2000000000\n").is_err(),
            "past the longest trace"
        );
        assert!(Trace::parse("\n").is_err());
    }

    /// The delivery schedule by hand, for trace `[2, 2, 5, 10]` (period 10 ms):
    /// opportunities at 2, 2, 5, 10, then 12, 12, 15, 20, 22, 22, ...
    #[test]
    fn departures_follow_mahimahis_semantics_byte_for_byte() {
        let mut l = link(&[2, 2, 5, 10], false);
        // A 1000-byte packet at 0: the first opportunity at 2 ms, 504 left.
        assert_eq!(l.depart(0, 1000), 2 * MS);
        // A 500-byte packet waiting since 1 ms: the 504 left at 2 ms.
        assert_eq!(l.depart(MS, 500), 2 * MS);
        // A 100-byte one: 4 bytes left at 2 ms, the rest in the second 2-ms one.
        assert_eq!(l.depart(MS, 100), 2 * MS);
        // 3000 bytes arriving at 2 ms (not before the 2-ms opportunities:
        // they are gone): 5 ms (1504) and 10 ms (1496), 8 bytes left.
        assert_eq!(l.depart(2 * MS, 3000), 10 * MS);
        // Waiting since 9 ms: the 8 bytes, then 12 ms — the wrap-around.
        assert_eq!(l.depart(9 * MS, 100), 12 * MS);
        // Arriving at 13 ms: the rest of 12 ms is lost; 15 ms.
        assert_eq!(l.depart(13 * MS, 10), 15 * MS);
        // Arriving after an idle spell of many periods: 10 005 ms → the
        // opportunity at 10 010 ms (period 1000's 10 ms line).
        assert_eq!(l.depart(10_005 * MS, 1504), 10_010 * MS);
        // The next at exactly 10 010 ms: 10 012.
        assert_eq!(l.depart(10_010 * MS, 1), 10_012 * MS);
    }

    #[test]
    fn the_long_run_rate_is_the_traces() {
        // 7 opportunities per 10 ms: 7 · 1504 · 8 / 10 ms ≈ 8.42 Mbit/s.
        let tr = [1, 2, 2, 4, 7, 7, 10];
        let mut l = link(&tr, false);
        let mut t = 0;
        let n = 70_000u64;
        for _ in 0..n {
            t = l.depart(0, 1504);
        }
        // n full packets need exactly n opportunities: 10 000 periods.
        assert_eq!(t, 10_000 * 10 * MS);
    }

    #[test]
    fn the_log_has_every_opportunity_arrival_and_departure() {
        let mut l = link(&[2, 5], true);
        l.arrived(0, 100);
        assert_eq!(l.depart(0, 100), 2 * MS);
        l.arrived(6 * MS, 200);
        l.dropped(6 * MS, 300);
        assert_eq!(l.depart(6 * MS, 200), 7 * MS);
        let mut out = String::new();
        let lost = l.drain_log(&mut |line| line.write(&mut out).expect("write"));
        assert_eq!(lost, 0);
        assert_eq!(
            out,
            "0 + 100\n2 # 1504\n2 - 100 2\n6 + 200\n6 d 1 300\n5 # 1504\n7 # 1504\n7 - 200 1\n"
        );
    }
}
