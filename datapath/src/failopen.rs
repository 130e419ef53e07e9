//! What the ports do when xdpsched is not there to serve them (killed, or
//! crashed): `--fail-open`, the choice users of bypass hardware know.
//!
//! - `bridge` (a bridge's default): at start xdpsched makes a kernel bridge
//!   of its two ports, `xsbr<ifindex of A>`, with no addresses of its own
//!   (IPv6 off) and STP off. While xdpsched runs its XDP program steers every
//!   frame to the AF_XDP sockets, so the kernel bridge sees nothing; when the
//!   sockets are gone the program passes frames to the kernel, and the bridge
//!   forwards them. Works on any pair of ports, veth whose peers have the
//!   kernel's defaults included. Removed on a clean exit and by `cleanup`.
//!   Link-local control frames (STP, LACP, LLDP: 01:80:c2:00:00:0x) are not
//!   forwarded by a Linux bridge.
//! - `redirect`: the program sends frames straight to the other port
//!   (DEVMAP). No kernel stack on the way, but into a veth it works only if
//!   the veth's peer has NAPI (GRO on, or an XDP program attached):
//!   otherwise the kernel drops the frames. xdpsched cannot see a peer in
//!   another namespace, so it warns on veth ports.
//! - `stack` (reflect mode's default): frames go to the kernel stack of the
//!   port, as if no program were attached.
//! - `closed`: frames are dropped (fail closed), counted by the program.

use anyhow::{bail, Context};
use std::process::Command;
use xsk::NoSocket;

/// `--fail-open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOpen {
    /// A kernel bridge of the two ports forwards.
    Bridge,
    /// The XDP program redirects port to port.
    Redirect,
    /// The kernel stack of the port takes the frames.
    Stack,
    /// Dropped.
    Closed,
}

impl FailOpen {
    /// Parses `--fail-open` for a bridge (`bridge` true) or a reflector;
    /// `auto` is `bridge` for a bridge and `stack` for a reflector.
    pub fn parse(s: &str, bridge: bool) -> anyhow::Result<FailOpen> {
        Ok(match (s, bridge) {
            ("auto", true) | ("bridge", true) => FailOpen::Bridge,
            ("auto", false) | ("stack", false) => FailOpen::Stack,
            ("redirect", true) => FailOpen::Redirect,
            ("closed", _) => FailOpen::Closed,
            ("bridge" | "redirect", false) => {
                bail!("--fail-open {s}: reflect mode (no --out) has one port; use stack or closed")
            }
            ("stack", true) => {
                bail!("--fail-open stack: a bridge's ports have no stack to pass to; use bridge, redirect or closed")
            }
            _ => bail!("--fail-open {s:?}: expected auto, bridge, redirect, stack or closed"),
        })
    }

    /// What the XDP program does with a frame that finds no socket.
    pub fn no_socket(self) -> NoSocket {
        match self {
            FailOpen::Bridge | FailOpen::Stack => NoSocket::Pass,
            FailOpen::Redirect => NoSocket::Peer,
            FailOpen::Closed => NoSocket::Drop,
        }
    }

    /// The name users give it.
    pub fn name(self) -> &'static str {
        match self {
            FailOpen::Bridge => "bridge",
            FailOpen::Redirect => "redirect",
            FailOpen::Stack => "stack",
            FailOpen::Closed => "closed",
        }
    }
}

/// The kernel bridge of `--fail-open bridge`; deleted on drop (a clean exit).
#[derive(Debug)]
pub struct KernelBridge {
    name: String,
}

/// Prefix of the bridges xdpsched makes (`cleanup` deletes only these).
pub const BRIDGE_PREFIX: &str = "xsbr";

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2) to set up the fail-open bridge")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The master device of `port` (a bridge it is in), if any.
pub fn master_of(port: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/class/net/{port}/master")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// Deletes bridge `name` if it is one of ours (`xsbr...`); true if it did.
pub fn remove_bridge(name: &str) -> anyhow::Result<bool> {
    if !name.starts_with(BRIDGE_PREFIX) {
        return Ok(false);
    }
    ip(&["link", "del", "dev", name])?;
    Ok(true)
}

/// Takes `ports` out of a fail-open bridge a killed xdpsched left (with
/// another mode, frames would still cross it unscheduled).
pub fn remove_leftover(ports: &[&str]) -> anyhow::Result<()> {
    for port in ports {
        if let Some(m) = master_of(port) {
            if remove_bridge(&m)? {
                tracing::info!("removed {m}, the fail-open bridge of an earlier run, from {port}");
            }
        }
    }
    Ok(())
}

/// True if `port` is a veth (by its driver, as `ethtool -i` reports it;
/// false when ethtool is missing).
pub fn is_veth(port: &str) -> bool {
    Command::new("ethtool")
        .args(["-i", port])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == "driver: veth")
        })
}

impl KernelBridge {
    /// Puts ports `a` and `b` into a new bridge named after `a`'s ifindex.
    /// A bridge of ours left by a killed xdpsched is replaced; a port that is
    /// in someone else's bridge is an error.
    pub fn create(a: &str, b: &str) -> anyhow::Result<KernelBridge> {
        let idx = std::fs::read_to_string(format!("/sys/class/net/{a}/ifindex"))
            .with_context(|| format!("ifindex of {a}"))?;
        let name = format!("{BRIDGE_PREFIX}{}", idx.trim());
        for port in [a, b] {
            if let Some(m) = master_of(port) {
                if !m.starts_with(BRIDGE_PREFIX) {
                    bail!("{port} is a port of {m}: --fail-open bridge puts {a} and {b} into a bridge of xdpsched's own (take {port} out of {m}, or choose --fail-open redirect or closed)");
                }
                // Ours, left by a killed run: start afresh.
                remove_bridge(&m)?;
            }
        }
        if std::path::Path::new(&format!("/sys/class/net/{name}")).exists() {
            remove_bridge(&name)?;
        }
        ip(&[
            "link",
            "add",
            "name",
            &name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
            "mcast_snooping",
            "0",
        ])?;
        let br = KernelBridge { name };
        // No addresses of its own: it must not send anything (DAD, router
        // solicitations) out of the ports.
        ip(&["link", "set", "dev", &br.name, "addrgenmode", "none"])?;
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", br.name),
            "1",
        );
        for port in [a, b] {
            ip(&["link", "set", "dev", port, "master", &br.name])?;
        }
        ip(&["link", "set", "dev", &br.name, "up"])?;
        Ok(br)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for KernelBridge {
    fn drop(&mut self) {
        if let Err(e) = remove_bridge(&self.name) {
            tracing::error!(
                "could not remove the fail-open bridge {}: {e:#} (xdpsched cleanup removes it)",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_per_port_count() {
        assert_eq!(FailOpen::parse("auto", true).ok(), Some(FailOpen::Bridge));
        assert_eq!(FailOpen::parse("auto", false).ok(), Some(FailOpen::Stack));
        assert_eq!(
            FailOpen::parse("closed", false).ok(),
            Some(FailOpen::Closed)
        );
        assert_eq!(
            FailOpen::parse("redirect", true)
                .map(FailOpen::no_socket)
                .ok(),
            Some(NoSocket::Peer)
        );
        for (s, bridge, needle) in [
            ("bridge", false, "one port"),
            ("stack", true, "no stack"),
            ("open", true, "expected auto"),
        ] {
            let e = FailOpen::parse(s, bridge).expect_err(s).to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
