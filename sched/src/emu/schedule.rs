//! A pipe's schedule: its bandwidth, delay and loss rate changed at given
//! instants (`[[pipe.schedule]] at = "10s" bandwidth = "5Mbit/s"`),
//! stepping once through the list or repeating it with a period.
//!
//! Instants are from the pipe's start (the emulator's epoch). A step
//! applies exactly at its instant: a bandwidth change splits a transmission
//! under way (the bits before the instant at the old rate, the rest at the
//! new one); a delay change applies to packets whose transmission ends at
//! or after it (a shorter delay never lets a packet pass the one before
//! it); a loss change applies to packets arriving at or after it.

/// One step: what changes at `at_ns`; `None` keeps the current value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// From the pipe's start, ns.
    pub at_ns: u64,
    /// New bandwidth, bit/s (`Some(0)`: unlimited).
    pub bandwidth_bps: Option<u64>,
    /// New constant delay, ns.
    pub delay_ns: Option<u64>,
    /// New uniform loss rate, 0..=1.
    pub plr: Option<f64>,
}

/// A pipe's schedule as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    /// The steps, by `at_ns` (strictly increasing).
    pub steps: Vec<Step>,
    /// Restart the list every this many ns (`None`: step through once, the
    /// last step holds).
    pub repeat_ns: Option<u64>,
}

/// Where a pipe is in its schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: std::sync::Arc<ScheduleSpec>,
    /// The start of the current round, ns.
    base: u64,
    next: usize,
    /// The instant of the next step (kept: the packet path compares it).
    at: u64,
}

impl Schedule {
    /// Starts at `epoch_ns`.
    pub fn new(spec: std::sync::Arc<ScheduleSpec>, epoch_ns: u64) -> Self {
        let mut s = Self {
            spec,
            base: epoch_ns,
            next: 0,
            at: 0,
        };
        s.at = s.compute_at();
        s
    }

    /// The instant of the next step (`u64::MAX`: none).
    #[inline]
    pub fn next_at(&self) -> u64 {
        self.at
    }

    fn compute_at(&self) -> u64 {
        match self.spec.steps.get(self.next) {
            Some(s) => self.base.saturating_add(s.at_ns),
            None => match self.spec.repeat_ns {
                // The next round's first step.
                Some(r) => self
                    .base
                    .saturating_add(r)
                    .saturating_add(self.spec.steps.first().map_or(0, |s| s.at_ns)),
                None => u64::MAX,
            },
        }
    }

    /// The next step if it is due by `t`: (its instant, the step), moving on.
    pub fn pop_due(&mut self, t: u64) -> Option<(u64, Step)> {
        let at = self.next_at();
        if at > t {
            return None;
        }
        if self.next >= self.spec.steps.len() {
            // A new round (only when repeating: else next_at is MAX). After
            // an idle spell, whole rounds are skipped: from the round
            // before the one `t` falls in, whose steps set what holds when
            // it starts (at most two rounds replayed, not every one missed).
            let repeat = self.spec.repeat_ns.unwrap_or(0).max(1);
            let next_base = self.base.saturating_add(repeat);
            let behind = t.saturating_sub(next_base) / repeat;
            self.base = next_base.saturating_add(behind.saturating_sub(1).saturating_mul(repeat));
            self.next = 0;
            self.at = self.compute_at();
            if self.at > t {
                return None;
            }
        }
        let at = self.at;
        let s = *self.spec.steps.get(self.next)?;
        self.next += 1;
        self.at = self.compute_at();
        Some((at, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn step(at_ns: u64, bw: u64) -> Step {
        Step {
            at_ns,
            bandwidth_bps: Some(bw),
            delay_ns: None,
            plr: None,
        }
    }

    #[test]
    fn steps_come_due_at_their_instants_and_repeat() {
        let spec = Arc::new(ScheduleSpec {
            steps: vec![step(0, 1), step(10, 2), step(25, 3)],
            repeat_ns: Some(40),
        });
        let mut s = Schedule::new(spec, 100);
        let mut seen = Vec::new();
        while let Some((at, st)) = s.pop_due(200) {
            seen.push((at, st.bandwidth_bps.unwrap_or(0)));
        }
        assert_eq!(
            seen,
            vec![
                (100, 1),
                (110, 2),
                (125, 3),
                (140, 1),
                (150, 2),
                (165, 3),
                (180, 1),
                (190, 2)
            ]
        );
        assert_eq!(s.next_at(), 205);
        let once = Arc::new(ScheduleSpec {
            steps: vec![step(5, 1)],
            repeat_ns: None,
        });
        let mut s = Schedule::new(once, 0);
        assert_eq!(s.pop_due(4), None);
        assert_eq!(s.pop_due(5).map(|x| x.0), Some(5));
        assert_eq!(s.next_at(), u64::MAX);
        assert_eq!(s.pop_due(u64::MAX - 1), None);
    }

    /// After a long idle spell a repeating schedule replays at most two
    /// rounds, and ends in the state a step-by-step replay would give.
    #[test]
    fn an_idle_spell_is_caught_up_in_two_rounds_at_most() {
        let spec = Arc::new(ScheduleSpec {
            steps: vec![step(0, 1), step(300_000, 2), step(700_000, 3)],
            repeat_ns: Some(1_000_000),
        });
        let mut s = Schedule::new(spec.clone(), 0);
        // The first round, then a day later.
        let mut n = 0;
        let mut last = 0;
        while let Some((_, st)) = s.pop_due(800_000) {
            last = st.bandwidth_bps.unwrap_or(0);
            n += 1;
        }
        assert_eq!((n, last), (3, 3));
        let day = 86_400_000_000_000u64 + 400_000;
        let mut caught = Vec::new();
        while let Some((at, st)) = s.pop_due(day) {
            assert!(at <= day);
            caught.push(st.bandwidth_bps.unwrap_or(0));
        }
        assert!(caught.len() <= 6, "{} steps replayed", caught.len());
        // At day + 0.4 ms of a round: its first two steps have come, so 2 holds.
        assert_eq!(caught.last(), Some(&2));
        assert_eq!(s.next_at(), day - 400_000 + 700_000);
    }
}
