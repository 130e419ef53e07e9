//! `--mode socket`: the same flows over ordinary kernel UDP sockets, sent
//! with sendmmsg(2) and received with recvmmsg(2). No AF_XDP is needed, and
//! the figures (same pacer, stamp, accounting and reports as [`super::xdp`])
//! show what the kernel's socket path does to rate, loss and latency.
//!
//! The kernel builds the headers: a flow's UDP payload is its frame size
//! minus the 42 header bytes, and starts with the [`Stamp`]. The sender has
//! one socket per distinct (sport, DSCP), bound to the source address and
//! sport, IP_TOS set to DSCP << 2, tied to `--iface` (SO_BINDTODEVICE when
//! allowed); the receiver one socket per distinct dport, bound to the
//! destination address. Both run on one clock, as in the AF_XDP engine; the
//! receiver stamps each recvmmsg batch when the call returns (so latency
//! includes the wake-up and the copy to user space).
//!
//! Before the start the sender sends one empty datagram to resolve the
//! destination's neighbour entry; the receiver ignores empty datagrams.

use super::{
    await_ready, pin, wait_until, EngineConfig, FlowTx, IntervalEvent, Outcome, PortSpec, RxResult,
    RxState, Shared, TxResult,
};
use crate::measure::series::Series;
use crate::packet::frame::HEADER_LEN;
use crate::packet::payload::{build_payload, parse_payload, payload_len};
use crate::packet::stamp::{Stamp, STAMP_LEN};
use crate::traffic::pace::Pacer;
use crate::traffic::spec::Flow;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recvmmsg, sendmmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessage, MsgFlags,
    MultiHeaders, SockFlag, SockProtocol, SockType, SockaddrIn,
};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use xsk::netns;

/// Most sockets on either side (one per distinct dport, or per distinct
/// (sport, DSCP)).
pub const MAX_SOCKETS: usize = 1024;

/// Receive buffer per datagram: larger than any payload a flow can have
/// (frames are at most 4096 - 256 bytes).
const RX_BUF: usize = 4096;

/// Receive buffer asked for per socket (the kernel may give less).
const RCVBUF: usize = 8 << 20;

/// The sending sockets: flows grouped by (sport, DSCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxGroups {
    /// (sport, DSCP) of each socket, in order of first use.
    pub keys: Vec<(u16, u8)>,
    /// The socket of each flow (index into `keys`).
    pub of_flow: Vec<usize>,
}

/// Groups `flows` into sending sockets, one per distinct (sport, DSCP).
pub fn tx_groups(flows: &[Flow]) -> anyhow::Result<TxGroups> {
    let mut keys: Vec<(u16, u8)> = Vec::new();
    let mut of_flow = Vec::with_capacity(flows.len());
    let mut index = std::collections::HashMap::new();
    for f in flows {
        let k = (f.sport, f.dscp);
        let i = *index.entry(k).or_insert_with(|| {
            keys.push(k);
            keys.len() - 1
        });
        of_flow.push(i);
    }
    if keys.len() > MAX_SOCKETS {
        anyhow::bail!(
            "--mode socket: the flows have {} distinct (sport, dscp) pairs, one sending socket each; at most {MAX_SOCKETS} (too many sockets)",
            keys.len()
        );
    }
    Ok(TxGroups { keys, of_flow })
}

/// The receiving sockets: the flows' distinct dports, in order of first use.
pub fn rx_ports(flows: &[Flow]) -> anyhow::Result<Vec<u16>> {
    let mut seen = std::collections::HashSet::new();
    let ports: Vec<u16> = flows
        .iter()
        .map(|f| f.dport)
        .filter(|&p| seen.insert(p))
        .collect();
    if ports.len() > MAX_SOCKETS {
        anyhow::bail!(
            "--mode socket: the flows have {} distinct dports, one receiving socket each; at most {MAX_SOCKETS} (too many sockets)",
            ports.len()
        );
    }
    Ok(ports)
}

fn where_(port: &PortSpec) -> String {
    match &port.netns {
        Some(n) => format!(" in network namespace {n:?}"),
        None => String::new(),
    }
}

fn bind_error(e: Errno, addr: SocketAddrV4, port: &PortSpec) -> String {
    let hint = match e {
        Errno::EACCES if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose sport=/dport= of 1024 or more)"
        }
        Errno::EADDRNOTAVAIL => " (the address is not on this namespace's interfaces)",
        Errno::EADDRINUSE => " (another socket uses it)",
        Errno::EMFILE | Errno::ENFILE => " (too many open files: fewer flows or ports, or raise `ulimit -n`)",
        _ => "",
    };
    format!(
        "cannot bind a UDP socket to {addr}{}: {}{hint}",
        where_(port),
        e.desc()
    )
}

fn udp_socket(port: &PortSpec) -> Result<OwnedFd, String> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        SockProtocol::Udp,
    )
    .map_err(|e| {
        let hint = match e {
            Errno::EMFILE | Errno::ENFILE => {
                " (too many open files: fewer flows or ports, or raise `ulimit -n`)"
            }
            _ => "",
        };
        format!(
            "cannot create a UDP socket{}: {}{hint}",
            where_(port),
            e.desc()
        )
    })
}

/// An error naming the port if its interface is not in its namespace
/// (call from inside it).
fn iface_exists(port: &PortSpec) -> Result<(), String> {
    match nix::net::if_::if_nametoindex(port.iface.as_str()) {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "interface {:?} not found{}",
            port.iface,
            where_(port)
        )),
    }
}

/// Opens the sending sockets in `port`'s namespace.
fn open_tx(port: &PortSpec, src: Ipv4Addr, groups: &TxGroups) -> Result<Vec<OwnedFd>, String> {
    netns::within(port.netns.as_deref(), || -> Result<Vec<OwnedFd>, String> {
        iface_exists(port)?;
        let mut v = Vec::with_capacity(groups.keys.len());
        for &(sport, dscp) in &groups.keys {
            let fd = udp_socket(port)?;
            // Flows with one sport and different DSCPs share the address.
            let _ = setsockopt(&fd, sockopt::ReuseAddr, &true);
            setsockopt(&fd, sockopt::Ipv4Tos, &(i32::from(dscp) << 2))
                .map_err(|e| format!("IP_TOS {}: {}", dscp << 2, e.desc()))?;
            // Leave through --iface, as AF_XDP does (needs CAP_NET_RAW; else routing decides).
            let _ = setsockopt(&fd, sockopt::BindToDevice, &OsString::from(&port.iface));
            let addr = SocketAddrV4::new(src, sport);
            bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(|e| bind_error(e, addr, port))?;
            v.push(fd);
        }
        Ok(v)
    })
    .map_err(|e| e.to_string())?
}

/// Opens the receiving sockets in `port`'s namespace.
fn open_rx(port: &PortSpec, dst: Ipv4Addr, dports: &[u16]) -> Result<Vec<OwnedFd>, String> {
    netns::within(port.netns.as_deref(), || -> Result<Vec<OwnedFd>, String> {
        iface_exists(port)?;
        let mut v = Vec::with_capacity(dports.len());
        for &dport in dports {
            let fd = udp_socket(port)?;
            // Beyond net.core.rmem_max needs CAP_NET_ADMIN; either is best effort.
            if setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
                let _ = setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
            }
            let addr = SocketAddrV4::new(dst, dport);
            bind(fd.as_raw_fd(), &SockaddrIn::from(addr)).map_err(|e| bind_error(e, addr, port))?;
            v.push(fd);
        }
        Ok(v)
    })
    .map_err(|e| e.to_string())?
}

/// A frame given by the pacer and not sent yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    flow: u32,
    seq: u64,
    due: u64,
}

/// The sending thread's loop: paces the flows, sends what is due in batches
/// per socket, stamps each batch just before its sendmmsg.
fn sender(
    sh: &Shared,
    cfg: &EngineConfig,
    socks: &[OwnedFd],
    groups: &TxGroups,
    dst: Ipv4Addr,
) -> Result<TxResult, String> {
    let n = cfg.flows.len();
    let batch = cfg.batch.clamp(1, 1024);
    let mut pacer = Pacer::new(&cfg.flows, cfg.run_ns);
    let plen: Vec<usize> = cfg.flows.iter().map(payload_len).collect();
    let max_len = plen.iter().copied().max().unwrap_or(STAMP_LEN);
    let addrs: Vec<SockaddrIn> = cfg
        .flows
        .iter()
        .map(|f| SockaddrIn::from(SocketAddrV4::new(dst, f.dport)))
        .collect();
    let mut queues: Vec<VecDeque<Pending>> = vec![VecDeque::with_capacity(batch); socks.len()];
    let mut queued = 0usize;
    let mut bufs: Vec<Vec<u8>> = vec![vec![0u8; max_len]; batch];
    let mut hdrs = MultiHeaders::<SockaddrIn>::preallocate(batch, None);
    let mut to: Vec<Option<SockaddrIn>> = Vec::with_capacity(batch);
    let no_cmsgs: [ControlMessage; 0] = [];
    let interval = cfg.interval_ns.max(1);
    let mut res = TxResult {
        flows: (0..n).map(|_| FlowTx::new()).collect(),
        series: Series::new(n, interval, 0),
        stalls: 0,
        balanced: true,
        received_other: 0,
        uncompleted: 0,
    };
    let start = sh.wait_go();
    res.series = Series::new(n, interval, start);
    loop {
        if sh.stop.load(Ordering::Relaxed) || sh.aborted() {
            break;
        }
        let rel = sh.now().saturating_sub(start);
        while queued < batch {
            let Some(d) = pacer.pop_due(rel) else { break };
            let s = groups.of_flow.get(d.flow as usize).copied().unwrap_or(0);
            if let Some(q) = queues.get_mut(s) {
                q.push_back(Pending {
                    flow: d.flow,
                    seq: d.seq,
                    due: d.due,
                });
                queued += 1;
            }
        }
        if queued == 0 {
            match pacer.next_due() {
                None => break,
                Some(d) => {
                    wait_until(sh, start + d, 200_000, 30_000);
                    continue;
                }
            }
        }
        let mut blocked = false;
        let mut nobufs = false;
        for (s, q) in queues.iter_mut().enumerate() {
            if q.is_empty() {
                continue;
            }
            let k = q.len().min(batch);
            let t = sh.now();
            to.clear();
            for (i, p) in q.iter().take(k).enumerate() {
                let stamp = Stamp {
                    flow: p.flow as u16,
                    seq: p.seq,
                    tx_ns: t,
                };
                // Cannot fail: the buffers hold the longest payload.
                let _ = build_payload(&mut bufs[i], plen[p.flow as usize], &stamp);
                to.push(Some(addrs[p.flow as usize]));
            }
            let r = {
                let iovs: Vec<[IoSlice; 1]> = q
                    .iter()
                    .take(k)
                    .zip(&bufs)
                    .map(|(p, b)| [IoSlice::new(&b[..plen[p.flow as usize]])])
                    .collect();
                sendmmsg(
                    socks[s].as_raw_fd(),
                    &mut hdrs,
                    &iovs,
                    &to,
                    no_cmsgs,
                    MsgFlags::MSG_DONTWAIT,
                )
                .map(Iterator::count)
            };
            let sent = match r {
                Ok(sent) => sent,
                Err(Errno::EAGAIN) => 0,
                Err(Errno::ENOBUFS | Errno::ENOMEM) => {
                    nobufs = true;
                    0
                }
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    let (sport, dscp) = groups.keys.get(s).copied().unwrap_or_default();
                    return Err(format!(
                        "sendmmsg from {}:{sport} (dscp {dscp}) to {dst}: {}",
                        local_ip(socks, s),
                        e.desc()
                    ));
                }
            };
            if sent < k {
                res.stalls += 1;
                blocked = true;
            }
            for p in q.drain(..sent.min(k)) {
                let fi = p.flow as usize;
                let len = (plen[fi] + HEADER_LEN) as u64;
                let f = &mut res.flows[fi];
                if f.first_ns.is_some() {
                    let _ = f.idt.record(t.saturating_sub(f.last_ns).max(1));
                } else {
                    f.first_ns = Some(t);
                }
                f.last_ns = t;
                f.packets += 1;
                f.bytes += len;
                let _ = f
                    .lateness
                    .record(t.saturating_sub(start).saturating_sub(p.due).max(1));
                res.series.record(fi, len, t);
            }
            queued -= sent.min(k);
        }
        if blocked {
            if nobufs {
                std::thread::sleep(Duration::from_micros(10));
            } else {
                // Wait (briefly) for room in a send buffer.
                let mut fds: Vec<PollFd> = queues
                    .iter()
                    .zip(socks)
                    .filter(|(q, _)| !q.is_empty())
                    .map(|(_, fd)| PollFd::new(fd.as_fd(), PollFlags::POLLOUT))
                    .collect();
                let _ = poll(&mut fds, PollTimeout::from(1u8));
            }
        }
    }
    Ok(res)
}

/// The source address of sending socket `s`, for messages.
fn local_ip(socks: &[OwnedFd], s: usize) -> String {
    socks
        .get(s)
        .and_then(|fd| nix::sys::socket::getsockname::<SockaddrIn>(fd.as_raw_fd()).ok())
        .map_or("?".into(), |a| a.ip().to_string())
}

/// The receiving side's state.
/// Counts one received UDP payload, read at `rx_ns`.
fn record(st: &mut RxState, payload: &[u8], rx_ns: u64) {
    if payload.is_empty() {
        return; // the sender's neighbour warm-up
    }
    let n = st.res.flows.len();
    let Some(s) = parse_payload(payload, n) else {
        st.res.foreign += 1;
        return;
    };
    let len = (payload.len() + HEADER_LEN) as u64;
    st.count(&s, len, rx_ns);
}

/// The receiving thread's loop: polls the sockets, reads with recvmmsg
/// until the run's end plus the drain time.
fn receiver(
    sh: &Shared,
    cfg: &EngineConfig,
    socks: &[OwnedFd],
    st: &mut RxState,
) -> Result<(), String> {
    let n = cfg.flows.len();
    let batch = cfg.batch.clamp(1, 1024);
    let mut bufs: Vec<Vec<u8>> = vec![vec![0u8; RX_BUF]; batch];
    let mut hdrs = MultiHeaders::<SockaddrIn>::preallocate(batch, None);
    let mut lens: Vec<usize> = Vec::with_capacity(batch);
    let mut fds: Vec<PollFd> = socks
        .iter()
        .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
        .collect();
    let interval = cfg.interval_ns.max(1);
    let start = sh.wait_go();
    let end = start + cfg.run_ns;
    let listen_end = end + cfg.drain_ns;
    st.res.series = Series::new(n, interval, start);
    let mut stopping_at: Option<u64> = None;
    loop {
        let now = sh.now();
        if sh.aborted() {
            break;
        }
        if stopping_at.is_none() && sh.stop.load(Ordering::Relaxed) {
            stopping_at = Some(now);
        }
        if now >= listen_end || stopping_at.is_some_and(|s| now >= s + cfg.drain_ns) {
            break;
        }
        let cap = super::interval_cap(cfg.run_ns, start, stopping_at, interval);
        let elapsed = (now.saturating_sub(start) / interval) as usize;
        st.flush(start, interval, now, Some(elapsed.min(cap)));
        match poll(&mut fds, PollTimeout::from(1u8)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(format!("poll: {}", e.desc())),
        }
        for (i, pfd) in fds.iter().enumerate() {
            let ready = pfd
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR));
            if !ready {
                continue;
            }
            let fd = socks[i].as_raw_fd();
            // A few batches per socket, then the others get their turn.
            for _ in 0..8 {
                lens.clear();
                let r = {
                    let mut iovs: Vec<[IoSliceMut; 1]> = bufs
                        .iter_mut()
                        .map(|b| [IoSliceMut::new(b.as_mut_slice())])
                        .collect();
                    recvmmsg(fd, &mut hdrs, &mut iovs, MsgFlags::MSG_DONTWAIT, None)
                        .map(|msgs| lens.extend(msgs.map(|m| m.bytes)))
                };
                let rx_ns = sh.now();
                match r {
                    Ok(()) => {}
                    Err(Errno::EAGAIN | Errno::EINTR) => break,
                    // An ICMP error queued on the socket: not ours to count.
                    Err(Errno::ECONNREFUSED | Errno::EHOSTUNREACH | Errno::ENETUNREACH) => continue,
                    Err(e) => return Err(format!("recvmmsg: {}", e.desc())),
                }
                for (b, &len) in bufs.iter().zip(&lens) {
                    record(st, &b[..len.min(b.len())], rx_ns);
                }
                if lens.len() < batch {
                    break;
                }
            }
        }
    }
    // Interval events cover the run (late arrivals stay in the series).
    let last = super::interval_cap(cfg.run_ns, start, stopping_at, interval);
    st.flush(start, interval, sh.now(), Some(last.max(st.reported)));
    Ok(())
}

/// Runs the flows over kernel UDP sockets from `src` (in `cfg.tx`'s
/// namespace) to `dst` (in `cfg.rx`'s): the socket counterpart of
/// [`super::xdp::run`], with the same results.
pub fn run(
    cfg: &EngineConfig,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<IntervalEvent>,
) -> anyhow::Result<Outcome> {
    let Some(rxp) = cfg.rx.as_ref() else {
        anyhow::bail!("--mode socket needs --rx-iface: kernel sockets cannot reflect");
    };
    let groups = tx_groups(&cfg.flows)?;
    let dports = rx_ports(&cfg.flows)?;
    let n = cfg.flows.len();
    let sh = Shared::new(stop);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    std::thread::scope(|s| -> anyhow::Result<Outcome> {
        let (sh1, ready1, groups1, first_dport) =
            (&sh, ready_tx.clone(), &groups, dports.first().copied());
        let htx = s.spawn(move || -> Result<TxResult, String> {
            let socks = match pin(&cfg.cores, 0).and_then(|_| open_tx(&cfg.tx, src, groups1)) {
                Ok(v) => v,
                Err(e) => {
                    let _ = ready1.send(Err(e.clone()));
                    return Err(e);
                }
            };
            // Resolve the neighbour before the start (an empty datagram).
            if let (Some(fd), Some(dport)) = (socks.first(), first_dport) {
                let _ = nix::sys::socket::sendto(
                    fd.as_raw_fd(),
                    &[],
                    &SockaddrIn::from(SocketAddrV4::new(dst, dport)),
                    MsgFlags::MSG_DONTWAIT,
                );
            }
            let _ = ready1.send(Ok(()));
            let r = sender(sh1, cfg, &socks, groups1, dst);
            if r.is_err() {
                sh1.abort.store(true, Ordering::Relaxed);
            }
            r
        });
        let (sh2, ready2, dports2) = (&sh, ready_tx.clone(), &dports);
        let hrx = s.spawn(move || -> Result<RxResult, String> {
            let socks = match pin(&cfg.cores, 1).and_then(|_| open_rx(rxp, dst, dports2)) {
                Ok(v) => v,
                Err(e) => {
                    let _ = ready2.send(Err(e.clone()));
                    return Err(e);
                }
            };
            let _ = ready2.send(Ok(()));
            let mut st = RxState::new(n, cfg.interval_ns, cfg.interval_histograms, events);
            st.res.balanced = true;
            let r = receiver(sh2, cfg, &socks, &mut st);
            if r.is_err() {
                sh2.abort.store(true, Ordering::Relaxed);
            }
            r.map(|()| st.res)
        });
        drop(ready_tx);
        if let Err(e) = await_ready(&ready_rx, 2, "a socket thread") {
            sh.abort.store(true, Ordering::Relaxed);
            sh.go_at(sh.now());
            let _ = htx.join();
            let _ = hrx.join();
            anyhow::bail!("{e}");
        }
        // Both sides are up: start 1 ms from now, together.
        sh.go_at(sh.now() + 1_000_000);
        let tx = htx.join();
        let rx = hrx.join();
        let tx = tx
            .map_err(|_| anyhow::anyhow!("the sending thread panicked"))?
            .map_err(|e| anyhow::anyhow!("sender: {e}"))?;
        let rx = rx
            .map_err(|_| anyhow::anyhow!("the receiving thread panicked"))?
            .map_err(|e| anyhow::anyhow!("receiver: {e}"))?;
        Ok(Outcome {
            tx,
            rx,
            start_ns: sh.start_ns(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::spec::parse_flow;

    fn flow(s: &str, i: usize) -> Flow {
        parse_flow(s, i, 1792).expect("valid flow")
    }

    #[test]
    fn flows_share_a_socket_per_sport_and_dscp() {
        let flows = [
            flow("dport=1", 0),
            flow("dport=2", 1),
            flow("dport=3,dscp=46", 2),
            flow("dport=4,sport=5000", 3),
            flow("dport=1,dscp=46", 4),
        ];
        let g = tx_groups(&flows).expect("few sockets");
        assert_eq!(g.keys, vec![(9, 0), (9, 46), (5000, 0)]);
        assert_eq!(g.of_flow, vec![0, 0, 1, 2, 1]);
        assert_eq!(rx_ports(&flows).expect("few ports"), vec![1, 2, 3, 4]);
    }

    #[test]
    fn too_many_sockets_is_a_clear_error() {
        let flows: Vec<Flow> = (0..=MAX_SOCKETS)
            .map(|i| {
                let mut f = Flow::new(i);
                f.dport = 2000 + i as u16;
                f
            })
            .collect();
        let e = rx_ports(&flows).expect_err("1025 dports").to_string();
        assert!(e.contains("1025") && e.contains("too many sockets"), "{e}");
        assert!(rx_ports(&flows[..MAX_SOCKETS]).is_ok());
        let mut by_sport = flows.clone();
        for (i, f) in by_sport.iter_mut().enumerate() {
            f.sport = 2000 + i as u16;
        }
        let e = tx_groups(&by_sport).expect_err("1025 sports").to_string();
        assert!(e.contains("too many sockets"), "{e}");
    }

    #[test]
    fn the_receiver_counts_ours_and_ignores_empty_datagrams() {
        let cfg_flows = [flow("dport=1", 0), flow("dport=2", 1)];
        let (etx, _erx) = mpsc::channel();
        let mut st = RxState::new(2, 1_000_000, false, etx);
        let mut buf = vec![0u8; 2048];
        for seq in 0..3 {
            let s = Stamp {
                flow: 1,
                seq,
                tx_ns: 1_000,
            };
            let p = build_payload(&mut buf, payload_len(&cfg_flows[1]), &s).expect("fits");
            record(&mut st, p, 11_000 + seq);
        }
        record(&mut st, &[], 20_000);
        record(&mut st, b"hello, not a stamp", 20_000);
        let r = &st.res;
        assert_eq!(r.flows[1].packets, 3);
        assert_eq!(r.flows[1].bytes, 3 * 1500, "frame bytes, as AF_XDP counts");
        assert_eq!(r.flows[0].packets, 0);
        assert_eq!(r.foreign, 1);
        assert_eq!(
            (r.first_ns[1], r.second_ns[1], r.last_ns[1]),
            (Some(11_000), Some(11_001), 11_002)
        );
        assert_eq!(r.flows[1].latency.value_at_quantile(0.5) / 1000, 10);
    }

    /// A free UDP port on 127.0.0.1 (taken and released).
    fn free_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .expect("a free port")
    }

    /// Both ports on `lo`: 300 ms runs, 100 ms drain and intervals, with
    /// per-interval histograms.
    fn loopback(flows: Vec<Flow>) -> EngineConfig {
        let lo = PortSpec {
            iface: "lo".into(),
            netns: None,
        };
        EngineConfig {
            tx: lo.clone(),
            rx: Some(lo),
            templates: Vec::new(),
            run_ns: 300_000_000,
            drain_ns: 100_000_000,
            interval_ns: 100_000_000,
            xsk: xsk::XskParams {
                frame_size: 2048,
                frames: 4096,
                ring_size: 2048,
                mode: xsk::XdpMode::Auto,
                queues: 1,
                no_socket: xsk::NoSocket::Peer,
                bind: xsk::BindMode::Auto,
            },
            batch: 16,
            in_flight: 128,
            cores: Vec::new(),
            interval_histograms: true,
            flows,
        }
    }

    #[test]
    fn a_short_run_over_loopback_loses_nothing() {
        let (d1, d2, sp) = (free_port(), free_port(), free_port());
        let flows = vec![
            flow(&format!("dport={d1},sport={sp},rate=2M,size=200"), 0),
            flow(
                &format!("dport={d2},sport={sp},rate=1M,size=1000,dscp=10"),
                1,
            ),
        ];
        let cfg = loopback(flows);
        let (etx, erx) = mpsc::channel();
        let lo_ip = Ipv4Addr::LOCALHOST;
        let out =
            run(&cfg, lo_ip, lo_ip, Arc::new(AtomicBool::new(false)), etx).expect("loopback run");
        let events: Vec<IntervalEvent> = erx.try_iter().collect();
        assert_eq!(events.len(), 3, "one event per 100 ms interval");
        assert!(events.iter().all(|e| e.latency.is_some()));
        // 2 Mbit/s of 200-byte frames: 1250/s; 1 Mbit/s of 1000-byte: 125/s.
        for (i, expect) in [(0usize, 375u64), (1, 38)] {
            let (t, r) = (&out.tx.flows[i], &out.rx.flows[i]);
            assert!(
                t.packets.abs_diff(expect) <= 1,
                "flow {i}: sent {}",
                t.packets
            );
            assert_eq!(r.unique, t.packets, "flow {i}: nothing lost over lo");
            assert_eq!(r.bytes, t.bytes, "flow {i}: same frame bytes");
            assert!(r.latency.value_at_quantile(0.5) < 50_000_000);
        }
        assert_eq!(out.rx.foreign, 0);
        assert!(out.tx.balanced && out.rx.balanced);
    }

    #[test]
    fn a_missing_interface_is_an_error_not_a_panic() {
        let cfg = EngineConfig {
            tx: PortSpec {
                iface: "xsh-nope0".into(),
                netns: None,
            },
            run_ns: 10_000_000,
            drain_ns: 0,
            interval_ns: 10_000_000,
            interval_histograms: false,
            ..loopback(vec![flow(&format!("dport={}", free_port()), 0)])
        };
        let (etx, _erx) = mpsc::channel();
        let e = run(
            &cfg,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            Arc::new(AtomicBool::new(false)),
            etx,
        )
        .expect_err("no such interface")
        .to_string();
        assert!(e.contains("xsh-nope0"), "{e}");
    }
}
