//! Whether the UMEM can hold what the emulated links keep in flight: checked
//! once at start, before any socket is opened.

use crate::config::RunConfig;
use crate::plan::{frames_for, ingress, rx_lanes, Plan};
use sched::config::{Config, Direction};

/// Checks that the UMEM can hold what the scheduled directions `dirs` keep
/// in flight on their links (rate × delay at full-size frames; smaller frames
/// need more; one instance per dynamic pipe): an error naming the `--frames`
/// needed if not even that fits; warnings (returned) if the links plus one
/// full queue per flowset (per instance of a dynamic pipe) do not, for every
/// instance of a dynamic pipe, and
/// for delay on an unlimited link (its arrival rate decides). Directions
/// received by the same worker are checked together.
pub(crate) fn check_frames(
    cfg: &RunConfig,
    plan: &Plan,
    dirs: &[(Direction, &Config)],
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    // Groups of directions whose frames come from the same lanes.
    let mut groups: Vec<Vec<(Direction, &Config)>> = Vec::new();
    for &(d, c) in dirs {
        let mine = rx_lanes(plan, &[ingress(d)]);
        match groups.iter_mut().find(|g| {
            let theirs = rx_lanes(plan, &[ingress(g[0].0)]);
            mine.iter().zip(&theirs).any(|(a, b)| *a && *b)
        }) {
            Some(g) => g.push((d, c)),
            None => groups.push(vec![(d, c)]),
        }
    }
    for group in groups {
        let sides: Vec<usize> = group.iter().map(|&(d, _)| ingress(d)).collect();
        let names: Vec<&str> = group.iter().map(|&(d, _)| d.name()).collect();
        let what = names.join(" and ");
        let have = frames_for(cfg, plan, &sides);
        let (mut in_flight, mut queues) = (0u64, 0u64);
        let mut links = Vec::new();
        for &(_, dcfg) in &group {
            for p in &dcfg.pipes {
                let n = sched::emu::in_flight(
                    p.bandwidth_bps,
                    p.delay_ns,
                    sched::emu::FULL_FRAME,
                    u64::from(p.overhead_bytes),
                );
                if p.bandwidth_bps.is_none() && p.delay_ns > 0 {
                    warnings.push(format!(
                        "pipe {:?} delays {} on an unlimited link: it holds whatever arrives in that time (at 100 000 packets/s, {} frames), out of about {have} UMEM frames for {what}",
                        p.name,
                        sched::units::format_duration(p.delay_ns),
                        p.delay_ns / 10_000
                    ));
                }
                if n == 0 {
                    continue;
                }
                if p.mask.is_some() && p.max_instances > 1 {
                    warnings.push(format!(
                        "dynamic pipe {:?} keeps about {n} full-size frames in flight per instance; {} busy instances would need {}",
                        p.name,
                        p.max_instances,
                        n.saturating_mul(u64::from(p.max_instances))
                    ));
                }
                in_flight = in_flight.saturating_add(n);
                links.push(format!(
                    "pipe {:?} {} x {}: {n}",
                    p.name,
                    sched::units::format_rate(p.bandwidth_bps.unwrap_or(0)),
                    sched::units::format_duration(p.delay_ns)
                ));
            }
            // One full queue per flowset — in every instance of a dynamic pipe.
            queues += dcfg
                .flowsets
                .iter()
                .map(|f| {
                    let one = match f.queue {
                        sched::config::QueueSpec::Packets(n) => u64::from(n),
                        sched::config::QueueSpec::Bytes(b) => b.div_ceil(sched::emu::FULL_FRAME),
                    };
                    let copies = dcfg
                        .pipes
                        .get(f.pipe)
                        .filter(|p| p.mask.is_some())
                        .map_or(1, |p| u64::from(p.max_instances));
                    one.saturating_mul(copies)
                })
                .sum::<u64>();
        }
        // Frames the rest of the program may hold: hand-over and TX batches.
        let spare = 4 * cfg.batch as u64;
        // The smallest --frames (doubling) that gives this group `need`.
        let scale = |need: u64| -> String {
            let mut c = cfg.clone();
            let mut f = u64::from(cfg.xsk.frames);
            while f < 1 << 20 {
                f = (f * 2).min(1 << 20);
                c.xsk.frames = f as u32;
                // The default ring follows --frames; a --ring-size stays.
                if cfg.xsk.ring_size == xsk::ring_size_for(cfg.xsk.frames) {
                    c.xsk.ring_size = xsk::ring_size_for(f as u32);
                }
                if frames_for(&c, plan, &sides) >= need + spare {
                    return format!("use --frames {f} or more");
                }
            }
            "not even --frames 1048576 (the most) is enough: lower rate x delay".to_owned()
        };
        if in_flight + spare > have {
            anyhow::bail!(
                "{what}: the emulated links keep about {in_flight} full-size frames in flight ({}; more with smaller frames), but with --frames {} the workers scheduling it have about {have} for their queues and links: {}",
                links.join(", "),
                cfg.xsk.frames,
                scale(in_flight)
            );
        }
        if in_flight + queues + spare > have {
            warnings.push(format!(
                "{what}: the links keep about {in_flight} full-size frames in flight and one full queue of each flowset holds {queues}, but with --frames {} about {have} frames are there for them: beyond that the kernel drops arrivals before xdpsched sees them ({} to hold both)",
                cfg.xsk.frames,
                scale(in_flight + queues)
            ));
        }
    }
    Ok(warnings)
}
