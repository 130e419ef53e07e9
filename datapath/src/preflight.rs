//! Checks before binding sockets, so that what users typically get wrong
//! fails with a message that says what to do (rather than an errno from
//! deep inside libxdp).

use anyhow::{bail, Context};
use std::path::Path;

/// Whether `iface` is a virtual device (veth, tap, bridge, ...: no
/// `device` link in sysfs), whose frames can come from a local stack.
pub fn is_virtual(iface: &str) -> bool {
    !Path::new(&format!("/sys/class/net/{iface}/device")).exists()
}

/// XDP reserves this much headroom in every frame (XDP_PACKET_HEADROOM).
const XDP_HEADROOM: u32 = 256;
/// Ethernet header plus two VLAN tags: what a frame adds to the MTU.
const L2_OVERHEAD: u32 = 14 + 8;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Effective capabilities of this process (from /proc/self/status).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Fails unless the process may attach XDP programs and bind AF_XDP sockets.
pub fn check_privileges() -> anyhow::Result<()> {
    let caps = effective_caps();
    let has = |c: u32| caps & (1u64 << c) != 0;
    if !has(CAP_NET_ADMIN) || !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        bail!(
            "xdpsched needs CAP_NET_ADMIN and CAP_BPF (or CAP_SYS_ADMIN) to attach XDP programs \
             and bind AF_XDP sockets: run it as root (sudo) or grant those capabilities"
        );
    }
    Ok(())
}

/// The interface's index, after checking it exists, is up and its MTU fits a frame.
pub fn check_interface(name: &str, frame_size: u32) -> anyhow::Result<u32> {
    let dir = Path::new("/sys/class/net").join(name);
    if name.is_empty() || name.contains('/') || !dir.exists() {
        bail!("interface {name:?} does not exist (in this network namespace); see `ip link`");
    }
    let read = |f: &str| -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(dir.join(f))
            .with_context(|| format!("reading {}", dir.join(f).display()))?
            .trim()
            .to_string())
    };
    let flags = u32::from_str_radix(read("flags")?.trim_start_matches("0x"), 16).unwrap_or(0);
    if flags & 1 == 0 {
        bail!("interface {name:?} is down: bring it up first (ip link set {name} up)");
    }
    let mtu: u32 = read("mtu")?.parse().unwrap_or(0);
    let fits = frame_size
        .saturating_sub(XDP_HEADROOM)
        .saturating_sub(L2_OVERHEAD);
    if mtu > fits {
        bail!(
            "interface {name:?} has MTU {mtu}, but a {frame_size}-byte UMEM frame holds packets of \
             at most {fits} bytes of MTU (after {XDP_HEADROOM} bytes of XDP headroom and the \
             Ethernet/VLAN header): use --frame-size 4096 or lower the MTU (ip link set {name} mtu {fits})"
        );
    }
    read("ifindex")?
        .parse()
        .with_context(|| format!("ifindex of {name:?}"))
}

/// RX queues of interface `name` (from /sys; `None` if unknown).
pub fn rx_queues(name: &str) -> Option<u32> {
    let n = std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    (n > 0).then_some(n as u32)
}

/// A note (not an error) when no BPF filesystem is mounted: libxdp then loads
/// its program without the multi-program dispatcher, which works for
/// xdpsched but keeps other XDP programs off the interface.
pub fn bpffs_note() -> Option<String> {
    let mounted = std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(2) == Some("bpf"))
        })
        .unwrap_or(false);
    (!mounted).then(|| {
        "note: no BPF filesystem mounted: libxdp attaches a single XDP program without its \
         dispatcher (fine for xdpsched; to let other XDP programs share the interface, \
         `mount -t bpf bpf /sys/fs/bpf`)"
            .to_string()
    })
}
