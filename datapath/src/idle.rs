//! How an idle worker waits: how late its sleeps end on this machine
//! (learned from its own sleeps), so that it wakes early enough before a
//! departure and spins only the rest; and how long arrivals may wait in the
//! RX rings before the ring could fill.

/// Width of a lateness bucket.
const BUCKET_NS: u64 = 2_000;
/// Buckets: lateness up to 128 µs is told apart, beyond counts as 128 µs.
const BUCKETS: usize = 64;
/// The margin until enough sleeps were seen (what a VM's timers need).
const DEFAULT_MARGIN_NS: u64 = 30_000;
/// Sleeps seen before the learned margin is used.
const WARM_UP: u32 = 32;
/// After this many sleeps the counts are halved (older sleeps fade).
const WINDOW: u32 = 1024;
/// The share of sleeps whose lateness the margin covers.
const COVER: f64 = 0.95;
/// Added to the covering lateness.
const SLACK_NS: u64 = 2_000;
/// Bounds of the margin.
const MIN_MARGIN_NS: u64 = 4_000;
/// Spins (departures without a sleep) before a sleep is tried anyway.
const PROBE_EVERY: u32 = 256;
/// Lateness beyond the last bucket counts as the last bucket.
const MAX_MARGIN_NS: u64 = BUCKETS as u64 * BUCKET_NS + SLACK_NS;

/// The share of sleeps that end later than the low end of the lateness.
const LOW: f64 = 0.05;
/// The share of pairs of sleeps whose difference in lateness the jitter
/// covers (the spacing error of two departures that each slept).
const JITTER_COVER: f64 = 0.95;
/// Sleeps recorded between recomputations of the jitter.
const JITTER_EVERY: u32 = 16;

/// The spin margin: a worker sleeps until `margin` before a departure is
/// due, then spins; `margin` covers the lateness of 95 % of recent sleeps.
/// Where the spread of the lateness is small beside the gap between
/// departures, spinning buys no precision worth its CPU: the worker then
/// aims its sleep at the low end of the lateness (95 % of sleeps end at or
/// after it) and does not spin ([`SpinMargin::for_gap`]).
#[derive(Debug, Clone)]
pub(crate) struct SpinMargin {
    hist: [u32; BUCKETS],
    seen: u32,
    margin: u64,
    /// The lateness that 95 % of recent sleeps exceed.
    low: u64,
    /// The difference in lateness between two sleeps that 95 % of pairs of
    /// recent sleeps stay within: how far apart two departures that each
    /// slept without spinning land from their gap.
    jitter: u64,
    /// Sleeps recorded since the jitter was computed.
    since_jitter: u32,
    /// Departures spun through since the last sleep that taught the margin.
    spins: u32,
    /// The departure last spun towards.
    spun_for: u64,
}

impl SpinMargin {
    pub fn new() -> Self {
        SpinMargin {
            hist: [0; BUCKETS],
            seen: 0,
            margin: DEFAULT_MARGIN_NS,
            low: 0,
            jitter: u64::MAX,
            since_jitter: 0,
            spins: 0,
            spun_for: 0,
        }
    }

    /// The margin now (what the worker spins through to be on time).
    #[cfg(test)]
    pub fn get(&self) -> u64 {
        self.margin
    }

    /// The margin before a departure that comes `gap` ns after the one
    /// before it, for departures to be spaced within `tolerance` (a share of
    /// the gap, 0: always spin): the full margin if the jitter (how far
    /// apart in lateness 95 % of pairs of sleeps end) exceeds
    /// `tolerance × gap`; else the low end of the lateness — the sleep then
    /// ends on time or late by about as much as the one before it, and
    /// spinning would buy nothing the tolerance asks for.
    pub fn for_gap(&self, gap: u64, tolerance: f64) -> u64 {
        if self.seen < WARM_UP || tolerance <= 0.0 {
            return self.margin;
        }
        if (self.jitter as f64) <= tolerance * gap as f64 {
            self.low
        } else {
            self.margin
        }
    }

    /// The departure due at `due` is spun towards without a sleep; true
    /// once every `PROBE_EVERY` such departures: time for a sleep that
    /// teaches.
    pub fn spun(&mut self, due: u64) -> bool {
        if due != self.spun_for {
            self.spun_for = due;
            self.spins += 1;
        }
        self.spins >= PROBE_EVERY
    }

    /// A sleep of `asked` ns ended after `slept` ns (woken by its timeout,
    /// not by an event: `slept >= asked`).
    pub fn record(&mut self, asked: u64, slept: u64) {
        self.spins = 0;
        let late = slept.saturating_sub(asked);
        let b = ((late / BUCKET_NS) as usize).min(BUCKETS - 1);
        self.hist[b] += 1;
        self.seen += 1;
        if self.seen >= WINDOW {
            for h in &mut self.hist {
                *h /= 2;
            }
            self.seen = self.hist.iter().sum();
        }
        if self.seen >= WARM_UP {
            let b = self.bucket_at(COVER);
            self.margin =
                ((b as u64 + 1) * BUCKET_NS + SLACK_NS).clamp(MIN_MARGIN_NS, MAX_MARGIN_NS);
            // The low end of the bucket where the 5 % earliest sleeps end.
            self.low = self.bucket_at(LOW) as u64 * BUCKET_NS;
            self.since_jitter += 1;
            if self.since_jitter >= JITTER_EVERY || self.jitter == u64::MAX {
                self.since_jitter = 0;
                self.jitter = self.pair_spread(JITTER_COVER);
            }
        }
    }

    /// The difference in lateness that `share` of all pairs of recorded
    /// sleeps stay within (bucket resolution; 64 × 64 products).
    fn pair_spread(&self, share: f64) -> u64 {
        let mut by_diff = [0u64; BUCKETS];
        for (i, &a) in self.hist.iter().enumerate() {
            if a == 0 {
                continue;
            }
            for (j, &b) in self.hist.iter().enumerate() {
                by_diff[i.abs_diff(j)] += u64::from(a) * u64::from(b);
            }
        }
        let total: u64 = by_diff.iter().sum();
        let need = (total as f64 * share).ceil() as u64;
        let mut acc = 0;
        for (d, &n) in by_diff.iter().enumerate() {
            acc += n;
            if acc >= need {
                return d as u64 * BUCKET_NS;
            }
        }
        BUCKETS as u64 * BUCKET_NS
    }

    /// The bucket holding the `share` quantile of the recorded lateness.
    fn bucket_at(&self, share: f64) -> usize {
        let need = ((f64::from(self.seen) * share).ceil() as u32).max(1);
        let mut acc = 0;
        for (i, &h) in self.hist.iter().enumerate() {
            acc += h;
            if acc >= need {
                return i;
            }
        }
        BUCKETS - 1
    }
}

/// How fast frames arrive at a worker, to bound how long they may wait
/// unread: a quarter of an RX ring at the recent arrival rate.
#[derive(Debug, Clone)]
pub(crate) struct ArrivalRate {
    window_start: u64,
    frames: u64,
    /// Frames per second over the last full window.
    per_s: u64,
}

/// The arrival rate is measured over windows this long.
const RATE_WINDOW_NS: u64 = 10_000_000;
/// Longest that arrivals may wait unread whatever the rate.
const MAX_DEFER_NS: u64 = 2_000_000;

impl ArrivalRate {
    pub fn new() -> Self {
        ArrivalRate {
            window_start: 0,
            frames: 0,
            per_s: 0,
        }
    }

    /// `n` frames received at `now`.
    pub fn add(&mut self, now: u64, n: usize) {
        self.frames += n as u64;
        let span = now.saturating_sub(self.window_start);
        if span >= RATE_WINDOW_NS {
            self.per_s = self.frames * 1_000_000_000 / span;
            self.frames = 0;
            self.window_start = now;
        }
    }

    /// How long arrivals may wait unread: until a quarter of an RX ring of
    /// `ring` descriptors would fill at the recent rate (at most 2 ms).
    pub fn max_defer(&self, ring: u32) -> u64 {
        if self.per_s == 0 {
            return MAX_DEFER_NS;
        }
        (u64::from(ring / 4) * 1_000_000_000 / self.per_s).min(MAX_DEFER_NS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_covers_95_percent_of_recent_lateness() {
        let mut m = SpinMargin::new();
        assert_eq!(m.get(), DEFAULT_MARGIN_NS, "before the warm-up");
        // Sleeps 10 µs late, one in twenty 40 µs late.
        for i in 0..200 {
            let late = if i % 20 == 0 { 40_000 } else { 10_000 };
            m.record(50_000, 50_000 + late);
        }
        assert_eq!(
            m.get(),
            12_000 + SLACK_NS,
            "the 95th percentile bucket, not the outliers"
        );
        // The machine gets slower: after a window the margin follows.
        for _ in 0..3 * WINDOW {
            m.record(50_000, 50_000 + 60_000);
        }
        assert_eq!(m.get(), 62_000 + SLACK_NS);
        // Precise timers: the floor.
        for _ in 0..3 * WINDOW {
            m.record(50_000, 50_100);
        }
        assert_eq!(m.get(), MIN_MARGIN_NS);
        // Wild lateness is capped.
        for _ in 0..3 * WINDOW {
            m.record(50_000, 5_000_000);
        }
        assert_eq!(m.get(), MAX_MARGIN_NS);
    }

    #[test]
    fn spinning_only_where_the_spread_matters_beside_the_gap() {
        let mut m = SpinMargin::new();
        // Before the warm-up: the default margin whatever the gap.
        assert_eq!(m.for_gap(10_000_000, 0.05), DEFAULT_MARGIN_NS);
        // A VM's timers: 20 µs late, one in ten 40 µs late (pairs of
        // sleeps: 18 % are 20 µs apart, the rest 0).
        for i in 0..500 {
            let late = if i % 10 == 0 { 40_000 } else { 20_000 };
            m.record(50_000, 50_000 + late);
        }
        let full = m.get();
        assert_eq!(full, 42_000 + SLACK_NS);
        // 1500 B at 100 Mbit/s: 120 µs apart, 5 % = 6 µs < 20 µs: spin.
        assert_eq!(m.for_gap(120_000, 0.05), full);
        // At 10 Mbit/s, 1.2 ms apart: 60 µs covers the jitter; sleep until
        // the low end of the lateness, no spin.
        assert_eq!(m.for_gap(1_200_000, 0.05), 20_000);
        // 400 µs apart: 5 % = 20 µs, just covers it.
        assert_eq!(m.for_gap(400_000, 0.05), 20_000);
        assert_eq!(m.for_gap(399_000, 0.05), full);
        // Tolerance 0: always the full margin.
        assert_eq!(m.for_gap(1_200_000, 0.0), full);
        // A long tail that most pairs do not see: one sleep in fifty 100 µs
        // late. The margin covers 95 % of sleeps, the jitter 95 % of pairs.
        let mut m = SpinMargin::new();
        for i in 0..1000 {
            let late = match i % 50 {
                0 => 100_000,
                1..=5 => 30_000,
                _ => 20_000,
            };
            m.record(50_000, 50_000 + late);
        }
        assert_eq!(m.for_gap(200_000, 0.05), 20_000, "10 µs of jitter");
        assert_eq!(m.for_gap(100_000, 0.05), m.get());
    }

    #[test]
    fn arrivals_wait_at_most_a_quarter_ring() {
        let mut r = ArrivalRate::new();
        assert_eq!(r.max_defer(2048), MAX_DEFER_NS, "nothing seen yet");
        // 1 Mpps: 512 frames take 512 µs.
        for t in 0..=10u64 {
            r.add(t * 1_000_000, if t == 0 { 0 } else { 1000 });
        }
        assert_eq!(r.max_defer(2048), 512_000);
        // 10 kpps: 51 ms, capped.
        let mut r = ArrivalRate::new();
        r.add(10_000_000, 100);
        assert_eq!(r.max_defer(2048), MAX_DEFER_NS);
    }
}
