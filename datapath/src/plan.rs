//! Which worker does what: the sockets each worker receives on, the egress
//! port each one owns, and how many UMEM frames the traffic of a side can
//! hold (the split `xsk::Xsk::open_lanes` makes).

use crate::config::RunConfig;
use sched::config::Direction;
use xsk::LanePlan;

/// Which thread does what. Sockets are per (side, queue), numbered side
/// first; socket `i` is received on by lane `i % lanes`, shifted by one on
/// side B when that would put both sides' queue 0 on one lane, so that the
/// two directions of a bridge run on two threads whenever there are two.
/// Each egress port transmits on its queue-0 socket, driven by the lane that
/// receives the traffic for it on queue 0 (run to completion); other lanes
/// hand their frames over.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub lanes: usize,
    pub queues: usize,
    pub bridge: bool,
}

impl Plan {
    /// The egress side of traffic received on `side`.
    pub fn egress(&self, side: usize) -> usize {
        if self.bridge {
            1 - side
        } else {
            0
        }
    }

    /// The lane that owns (transmits on, schedules for) egress side `e`.
    pub fn owner(&self, e: usize) -> usize {
        self.rx_lane(self.egress(e), 0)
    }
}

impl LanePlan for Plan {
    fn lanes(&self) -> usize {
        self.lanes
    }
    fn rx_lane(&self, side: usize, queue: u32) -> usize {
        let shift = side * usize::from(self.queues % self.lanes == 0);
        (side * self.queues + queue as usize + shift) % self.lanes
    }
    fn tx_lane(&self, side: usize, queue: u32) -> Option<usize> {
        (queue == 0).then(|| self.owner(side))
    }
}

/// The side whose traffic direction `d` is (A→B: received on side 0).
pub(crate) fn ingress(d: Direction) -> usize {
    match d {
        Direction::AToB => 0,
        Direction::BToA => 1,
    }
}

/// The lanes that receive the traffic of `sides`.
pub(crate) fn rx_lanes(plan: &Plan, sides: &[usize]) -> Vec<bool> {
    let lanes = plan.lanes.max(1);
    let mut mine = vec![false; lanes];
    for &side in sides {
        for q in 0..plan.queues as u32 {
            mine[plan.rx_lane(side, q) % lanes] = true;
        }
    }
    mine
}

/// About how many UMEM frames can wait in the queues and links of the
/// traffic received on `sides`: the frames of the lanes that receive it,
/// less what their fill rings hold to keep receiving (the split of
/// `Xsk::open_lanes`).
pub(crate) fn frames_for(cfg: &RunConfig, plan: &Plan, sides: &[usize]) -> u64 {
    let all = if plan.bridge { 2 } else { 1 };
    let lanes = plan.lanes.max(1);
    let span = u64::from(cfg.xsk.frames) / lanes as u64;
    let mut receiving = vec![0u64; lanes];
    for s in 0..all {
        for q in 0..plan.queues as u32 {
            receiving[plan.rx_lane(s, q) % lanes] += 1;
        }
    }
    let mine = rx_lanes(plan, sides);
    (0..lanes)
        .filter(|&l| mine[l])
        .map(|l| {
            let fill = u64::from(cfg.xsk.ring_size).min(span / (receiving[l] + 1));
            span.saturating_sub(fill * receiving[l])
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rx lane of every socket, side first; owner of egress A, B).
    fn layout(lanes: usize, queues: usize, bridge: bool) -> (Vec<usize>, Vec<usize>) {
        let p = Plan {
            lanes,
            queues,
            bridge,
        };
        let sides = if bridge { 2 } else { 1 };
        let rx = (0..sides)
            .flat_map(|s| (0..queues).map(move |q| (s, q as u32)))
            .map(|(s, q)| p.rx_lane(s, q))
            .collect();
        (rx, (0..sides).map(|e| p.owner(e)).collect())
    }

    #[test]
    fn the_two_directions_of_a_bridge_get_two_threads() {
        // One queue, two lanes: A on 0, B on 1; B's egress (A→B) on lane 0.
        assert_eq!(layout(2, 1, true), (vec![0, 1], vec![1, 0]));
        // Two queues, two lanes: each lane one queue of each side, owners differ.
        assert_eq!(layout(2, 2, true), (vec![0, 1, 1, 0], vec![1, 0]));
        // One lane per socket.
        assert_eq!(layout(4, 2, true), (vec![0, 1, 2, 3], vec![2, 0]));
        assert_eq!(layout(3, 3, true), (vec![0, 1, 2, 1, 2, 0], vec![1, 0]));
        // One lane does everything.
        assert_eq!(layout(1, 2, true), (vec![0, 0, 0, 0], vec![0, 0]));
        // Reflect: every queue on its lane, egress on queue 0's.
        assert_eq!(layout(2, 2, false), (vec![0, 1], vec![0]));
    }

    #[test]
    fn each_egress_transmits_on_queue_zero_only() {
        let p = Plan {
            lanes: 2,
            queues: 2,
            bridge: true,
        };
        assert_eq!(p.tx_lane(0, 0), Some(p.owner(0)));
        assert_eq!(p.tx_lane(1, 0), Some(p.owner(1)));
        assert_eq!(p.tx_lane(0, 1), None);
        assert_eq!(p.tx_lane(1, 1), None);
    }
}
