//! netem's and dummynet's per-packet impairments beyond loss, delay and
//! jitter: duplication, corruption, slotted transmission (netem `slot`) and
//! dummynet's delay profiles (`profile FILE`).
//!
//! Each draws from its own seeded generator, in netem's fixed point where
//! netem has one, so a run replays exactly from its seed:
//!
//! - **Duplication** (`duplicate P [CORR]`): at the pipe's entrance, before
//!   the loss model, as netem; a duplicated packet that the loss model then
//!   loses still goes through once (netem's count of copies goes 2 → 1). The
//!   copy is the caller's to make (a new buffer: see
//!   [`super::Host::duplicate`]); it enters the same flowset as a new packet
//!   that is not duplicated again.
//! - **Corruption** (`corrupt P [CORR]`): one bit flipped at a random offset
//!   past the link-layer header, checksums left as they become (the caller
//!   writes the flip: [`super::Host::corrupt`]).
//! - **Slots** (`slot MIN MAX [packets N] [bytes B]`, or `slot distribution
//!   D delay X jitter Y`): the link sends only while a slot is open. A slot
//!   opens at a drawn instant and lets up to `N` packets / `B` bytes that
//!   wait by then onto the link; a packet that arrives after the open slot
//!   opened waits for the next one, drawn from its arrival (netem's
//!   `get_slot_next` when the head's time comes). So packets leave in
//!   bursts, as over Wi-Fi, DOCSIS or LTE MACs. Unlike netem, which gates
//!   the head of its delay queue, the slots gate the link ahead of the
//!   delay: packets waiting for a slot wait in the queue, whose limits
//!   apply (netem's own `limit` bounds its whole queue). With a constant
//!   delay the departures are the same, shifted by it.
//! - **Profiles** (dummynet `profile FILE`): each packet's transmission takes
//!   extra air time drawn from an empirical distribution (the file's
//!   `(probability, delay)` points interpolated into `samples` values,
//!   whole milliseconds, exactly as `ipfw`'s `load_extra_delays` does); a
//!   packet whose sample index is at or above `loss-level × samples` uses
//!   its air time and is then dropped.

use super::jitter::{threshold32, CorrRandom, DIST_SCALE};
use crate::rng::Rng;
use std::sync::Arc;

/// netem's correlated coin: `p != 0 && p >= get_crandom()`.
#[derive(Debug, Clone)]
pub struct Chance {
    p: u32,
    rnd: CorrRandom,
}

impl Chance {
    /// Probability 0..=1, correlation 0..=1, seeded.
    pub fn new(p: f64, correlation: f64, seed: u64) -> Self {
        Self {
            p: threshold32(p),
            rnd: CorrRandom::new(correlation, seed),
        }
    }

    /// The next draw.
    #[inline]
    pub fn hit(&mut self) -> bool {
        self.p != 0 && self.p >= self.rnd.draw()
    }
}

/// Where a corruption flips its bit: the offset is `at % (length past the
/// link-layer header)`, the bit `bit` (0..8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flip {
    /// A random 32-bit number; the caller reduces it to the packet's length.
    pub at: u32,
    /// The bit within that byte, 0..8.
    pub bit: u8,
}

impl Flip {
    /// The byte offset in a frame of `len` bytes whose network header starts
    /// at `l3`; `None` if nothing follows the link-layer header.
    pub fn offset(&self, len: usize, l3: usize) -> Option<usize> {
        let past = len.checked_sub(l3).filter(|&n| n > 0)?;
        Some(l3 + self.at as usize % past)
    }
}

/// netem's `corrupt P [CORR]`.
#[derive(Debug, Clone)]
pub struct Corrupt {
    chance: Chance,
    rng: Rng,
}

impl Corrupt {
    /// Probability, correlation, seed.
    pub fn new(p: f64, correlation: f64, seed: u64) -> Self {
        Self {
            chance: Chance::new(p, correlation, seed),
            rng: Rng::new(seed ^ 0x3c6e_f372_fe94_f82b),
        }
    }

    /// Whether the next packet is corrupted, and where.
    #[inline]
    pub fn draw(&mut self) -> Option<Flip> {
        if !self.chance.hit() {
            return None;
        }
        self.flip()
    }

    #[cold]
    fn flip(&mut self) -> Option<Flip> {
        let r = self.rng.next_u64();
        Some(Flip {
            at: r as u32,
            bit: ((r >> 32) % 8) as u8,
        })
    }
}

/// How slot lengths are drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotDelay {
    /// Uniform in `[min, max)` ns (netem's `slot MIN MAX`).
    Uniform {
        /// Shortest gap, ns.
        min_ns: u64,
        /// Longest gap, ns.
        max_ns: u64,
    },
    /// From a distribution table (netem's `slot distribution D delay X
    /// jitter Y`).
    Table {
        /// Mean, ns.
        delay_ns: u64,
        /// Spread, ns.
        jitter_ns: u64,
        /// iproute2's table (see [`super::jitter`]).
        table: Arc<[i16]>,
    },
}

/// netem's `slot` on a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotParams {
    /// The gap between slots.
    pub delay: SlotDelay,
    /// Packets per slot; 0: no limit.
    pub packets: u32,
    /// Bytes per slot; 0: no limit.
    pub bytes: u64,
}

/// A pipe's slots (see the module docs).
#[derive(Debug, Clone)]
pub struct Slots {
    params: SlotParams,
    rng: Rng,
    /// When the current (or next) slot opens.
    next: u64,
    packets_left: i64,
    bytes_left: i64,
}

impl Slots {
    /// Slots from `params`, the first open at `start_ns`.
    pub fn new(params: SlotParams, seed: u64, start_ns: u64) -> Self {
        let mut s = Self {
            params,
            rng: Rng::new(seed),
            next: start_ns,
            packets_left: 0,
            bytes_left: 0,
        };
        s.refill();
        s
    }

    fn refill(&mut self) {
        let lim = |n: u64| if n == 0 { i64::MAX } else { n as i64 };
        self.packets_left = lim(u64::from(self.params.packets));
        self.bytes_left = lim(self.params.bytes);
    }

    /// The gap to the next slot.
    fn gap(&mut self) -> u64 {
        match &self.params.delay {
            SlotDelay::Uniform { min_ns, max_ns } => {
                let r = u128::from(self.rng.next_u64() >> 32);
                min_ns + ((r * u128::from(max_ns - min_ns)) >> 32) as u64
            }
            SlotDelay::Table {
                delay_ns,
                jitter_ns,
                table,
            } => {
                let r = (self.rng.next_u64() >> 32) as usize;
                let e = i64::from(table[r % table.len()]);
                let (mu, sigma) = (*delay_ns as i64, *jitter_ns as i64);
                let mut x = (sigma % DIST_SCALE) * e;
                x += if x >= 0 {
                    DIST_SCALE / 2
                } else {
                    -DIST_SCALE / 2
                };
                (x / DIST_SCALE + (sigma / DIST_SCALE) * e + mu).max(0) as u64
            }
        }
    }

    /// Opens the next slot a gap after `at`.
    #[cold]
    fn next_slot(&mut self, at: u64) {
        self.next = at.saturating_add(self.gap());
        self.refill();
    }

    /// The instant a packet due at `due` may leave: when a slot is open for
    /// it (a packet due after the open slot opened gets a new slot, drawn
    /// from `due`).
    #[inline]
    pub fn gate(&mut self, due: u64) -> u64 {
        if self.next < due {
            self.next_slot(due);
        }
        self.next
    }

    /// When the next slot opens (for wake-ups; a packet due later than it
    /// makes [`Slots::gate`] draw another).
    pub fn opens(&self) -> u64 {
        self.next
    }

    /// A packet of `len` bytes left at `at` (its gate): the slot closes when
    /// its packets or bytes are used up, and the next one is drawn from `at`.
    #[inline]
    pub fn sent(&mut self, len: u32, at: u64) {
        self.packets_left -= 1;
        self.bytes_left -= i64::from(len);
        if self.packets_left <= 0 || self.bytes_left <= 0 {
            self.next_slot(at);
        }
    }
}

/// Most samples a profile may have (dummynet's `ED_MAX_SAMPLES_NO`).
pub const MAX_PROFILE_SAMPLES: usize = 1024;

/// A dummynet delay profile: extra air time per packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The profile's `name`, if any.
    pub name: String,
    /// Its `bw` line, bit/s, if any (the link's bandwidth).
    pub bandwidth_bps: Option<u64>,
    /// The interpolated samples, whole milliseconds.
    pub samples_ms: Vec<u32>,
    /// Samples at this index or above drop the packet after its air time.
    pub loss_level: usize,
}

impl Profile {
    /// Parses a profile as `ipfw`'s `load_extra_delays` does: lines of
    /// `name N`, `bw B`, `loss-level L`, `samples S` (default 100), then a
    /// header `delay prob` or `prob delay` and at least two points (delays
    /// in ms, probabilities 0..=1), `#` comments. The points are sorted by
    /// probability and each segment filled by linear interpolation,
    /// truncated to whole milliseconds; samples past the last point stay 0.
    /// Errors name the line.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let mut samples: Option<usize> = None;
        let mut loss: Option<f64> = None;
        let mut name = String::new();
        let mut bw = None;
        let mut delay_first = None::<bool>;
        let mut points: Vec<(f64, f64)> = Vec::new(); // (prob, delay)
        for (n, line) in text.lines().enumerate() {
            let at = |m: String| format!("line {}: {m}", n + 1);
            let line = line.split('#').next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            let (key, arg) = match words.as_slice() {
                [] => continue,
                [k] => return Err(at(format!("missing argument for {k:?}"))),
                [k, a] => (*k, *a),
                _ => return Err(at("too many arguments".to_owned())),
            };
            let num = |s: &str| -> Result<f64, String> {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| at(format!("{s:?} is not a number")))
            };
            match key.to_ascii_lowercase().as_str() {
                "samples" => {
                    let s: usize = arg
                        .parse()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| at("invalid number of samples".to_owned()))?;
                    if samples.replace(s).is_some() {
                        return Err(at("duplicate samples line".to_owned()));
                    }
                    if s > MAX_PROFILE_SAMPLES {
                        return Err(at(format!(
                            "too many samples, at most {MAX_PROFILE_SAMPLES}"
                        )));
                    }
                }
                "bw" => {
                    bw = Some(
                        crate::units::parse_rate(arg)
                            .map_err(|e| at(format!("bw {arg:?}: {e}")))?,
                    );
                }
                "loss-level" => {
                    let l = num(arg)?;
                    if !(0.0..=1.0).contains(&l) {
                        return Err(at(format!("loss-level {l} is not in 0..=1")));
                    }
                    if loss.replace(l).is_some() {
                        return Err(at("duplicate loss-level line".to_owned()));
                    }
                }
                "name" => name = arg.to_owned(),
                "delay" | "prob" if delay_first.is_none() => {
                    delay_first = Some(key.eq_ignore_ascii_case("delay"));
                }
                _ if delay_first.is_some() => {
                    let (a, b) = (num(key)?, num(arg)?);
                    let (prob, delay) = if delay_first == Some(true) {
                        (b, a)
                    } else {
                        (a, b)
                    };
                    if !(0.0..=1.0).contains(&prob) {
                        return Err(at(format!("probability {prob} is not in 0..=1")));
                    }
                    if delay < 0.0 {
                        return Err(at(format!("delay {delay} ms is negative")));
                    }
                    if points.len() >= MAX_PROFILE_SAMPLES {
                        return Err(at(format!("more than {MAX_PROFILE_SAMPLES} points")));
                    }
                    points.push((prob, delay));
                }
                _ => return Err(at(format!("unrecognised command {key:?}"))),
            }
        }
        let samples = samples.unwrap_or(100);
        if points.len() < 2 {
            return Err(
                "too few points: need at least 2 after a `delay prob` or `prob delay` line"
                    .to_owned(),
            );
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut out = vec![0u32; samples];
        for w in points.windows(2) {
            let (y1, x1) = (w[0].0 * samples as f64, w[0].1);
            let (y2, x2) = (w[1].0 * samples as f64, w[1].1);
            let (from, stop) = (y1 as usize, (y2 as usize).min(samples));
            for (ix, s) in out.iter_mut().enumerate().take(stop).skip(from) {
                *s = if x1 == x2 {
                    x1 as u32
                } else {
                    let m = (y2 - y1) / (x2 - x1);
                    let c = y1 - m * x1;
                    ((ix as f64 - c) / m).max(0.0) as u32
                };
            }
        }
        Ok(Profile {
            name,
            bandwidth_bps: bw,
            samples_ms: out,
            loss_level: (loss.unwrap_or(1.0) * samples as f64) as usize,
        })
    }
}

/// A profile in use on a pipe: draws a sample per packet.
#[derive(Debug, Clone)]
pub struct ProfileDraw {
    profile: Arc<Profile>,
    rng: Rng,
    /// Each sample's extra air time in bits at the link's rate
    /// (dummynet's `extra_bits`: `sample_ms · bps / 1000`).
    bits: Vec<u64>,
}

impl ProfileDraw {
    /// Seeded; [`ProfileDraw::set_rate`] gives it the link's rate.
    pub fn new(profile: Arc<Profile>, seed: u64) -> Self {
        Self {
            profile,
            rng: Rng::new(seed),
            bits: Vec::new(),
        }
    }

    /// The link's rate, bit/s: the samples' air time in bits (at start, and
    /// when a schedule changes the rate).
    pub fn set_rate(&mut self, bps: u64) {
        // Refilled in place: a schedule's rate steps do not allocate.
        self.bits.clear();
        self.bits.extend(
            self.profile
                .samples_ms
                .iter()
                .map(|&ms| (u128::from(ms) * u128::from(bps) / 1000) as u64),
        );
    }

    /// The next packet's extra air time in bits and whether it is dropped
    /// after it. The sample is picked uniformly (dummynet: `random() %
    /// samples`).
    #[inline]
    pub fn draw(&mut self) -> (u64, bool) {
        let n = self.bits.len() as u64;
        let i = (((self.rng.next_u64() >> 32) * n) >> 32) as usize;
        match self.bits.get(i) {
            Some(&b) => (b, i >= self.profile.loss_level),
            None => (0, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chance_hits_at_its_rate_and_never_at_zero() {
        for p in [0.0, 0.01, 0.3] {
            let mut c = Chance::new(p, 0.0, 9);
            let n = 200_000u32;
            let hits = (0..n).filter(|_| c.hit()).count() as f64;
            let mean = f64::from(n) * p;
            let sd = (mean * (1.0 - p)).sqrt();
            assert!((hits - mean).abs() <= 4.0 * sd + 0.5, "p {p}: {hits}");
        }
    }

    #[test]
    fn a_flip_lands_past_the_link_header() {
        let f = Flip { at: 1000, bit: 3 };
        assert_eq!(f.offset(60, 14), Some(14 + 1000 % 46));
        assert_eq!(f.offset(14, 14), None);
        assert_eq!(f.offset(10, 14), None);
    }

    #[test]
    fn slots_open_at_drawn_gaps_and_close_when_used_up() {
        let p = SlotParams {
            delay: SlotDelay::Uniform {
                min_ns: 1_000,
                max_ns: 5_000,
            },
            packets: 2,
            bytes: 0,
        };
        let mut s = Slots::new(p, 3, 0);
        // netem opens the first slot at once; a packet due later draws the
        // next from its due time.
        assert_eq!(s.opens(), 0);
        let first = s.gate(10);
        assert!((1_010..5_010).contains(&first), "{first}");
        // Two packets due before it leave at its opening; the third waits.
        s.sent(100, first);
        assert_eq!(s.gate(20), first);
        s.sent(100, first);
        let second = s.opens();
        assert!((first + 1_000..first + 5_000).contains(&second));
        assert_eq!(s.gate(30), second);
        // A packet due after the slot opened gets a new one, from its due time.
        let late = second + 50_000;
        let third = s.gate(late);
        assert!((late + 1_000..late + 5_000).contains(&third), "{third}");
    }

    #[test]
    fn slot_gaps_of_seconds_stay_in_their_range() {
        let p = SlotParams {
            delay: SlotDelay::Uniform {
                min_ns: 1,
                max_ns: 10_000_000_000,
            },
            packets: 1,
            bytes: 0,
        };
        let mut s = Slots::new(p, 8, 0);
        // The first slot is open at the start; each later one a gap after.
        let mut at = s.gate(0);
        s.sent(100, at);
        for _ in 0..10_000 {
            let open = s.gate(at);
            assert!(
                (at + 1..at + 10_000_000_000).contains(&open),
                "{open} after {at}"
            );
            s.sent(100, open);
            at = open;
        }
    }

    #[test]
    fn a_profile_is_interpolated_as_ipfw_does() {
        let text =
            "name  test\nbw 1Mbit/s\nloss-level 0.9\nsamples 10\nprob delay\n0 0\n0.5 10\n1.0 30\n";
        let p = Profile::parse(text).expect("parse");
        assert_eq!(p.bandwidth_bps, Some(1_000_000));
        assert_eq!(p.loss_level, 9);
        // Segment 1: y = 10·prob, x = delay; y = 0.5·x → sample ix = 2·ix ms
        // for ix in 0..5; segment 2: y = 5 + 0.25·(x − 10) → x = 4·(ix − 5) + 10.
        assert_eq!(p.samples_ms, vec![0, 2, 4, 6, 8, 10, 14, 18, 22, 26]);
        // `delay prob` order, fewer points than samples: the tail stays 0.
        let q = Profile::parse("samples 4\ndelay prob\n5 0\n5 0.5\n").expect("parse");
        assert_eq!(q.samples_ms, vec![5, 5, 0, 0]);
        assert_eq!(q.loss_level, 4, "no loss-level: nothing dropped");
        for bad in [
            "samples 0\nprob delay\n0 0\n1 1\n",
            "prob delay\n0 0\n",
            "prob delay\n0 0\n1.5 2\n",
            "bogus 3\n",
            "prob delay\n0 x\n1 1\n",
        ] {
            assert!(Profile::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn profile_draws_cover_the_samples_and_drop_above_the_loss_level() {
        let p = Arc::new(Profile {
            name: String::new(),
            bandwidth_bps: None,
            samples_ms: (0..10).collect(),
            loss_level: 8,
        });
        let mut d = ProfileDraw::new(p, 5);
        d.set_rate(1_000_000);
        let n = 100_000;
        let (mut dropped, mut bits) = (0u32, 0u64);
        for _ in 0..n {
            let (b, drop) = d.draw();
            // ms · 1 Mbit/s / 1000 = 1000 bits per ms.
            assert_eq!(b % 1000, 0);
            assert_eq!(drop, b >= 8000);
            dropped += u32::from(drop);
            bits += b;
        }
        let rate = f64::from(dropped) / f64::from(n);
        assert!((rate - 0.2).abs() < 0.01, "{rate}");
        let mean_ms = bits as f64 / 1000.0 / f64::from(n);
        assert!((mean_ms - 4.5).abs() < 0.05, "{mean_ms}");
    }
}
