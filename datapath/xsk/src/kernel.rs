//! What the kernel counts for an AF_XDP socket (`getsockopt(SOL_XDP,
//! XDP_STATISTICS)`): the frames it could not put into the socket's RX ring
//! and the descriptors it could not use. Frames lost there never reach the
//! program, so only these counters show them.

use std::ops::AddAssign;
use std::os::fd::AsRawFd;

/// Whether the AF_XDP socket `fd` runs in zero-copy mode
/// (`getsockopt(SOL_XDP, XDP_OPTIONS)`, `XDP_OPTIONS_ZEROCOPY`).
pub(crate) fn is_zero_copy(fd: &impl AsRawFd) -> std::io::Result<bool> {
    use nix::libc;
    let mut opts = libc::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
    // SAFETY: `opts` and `len` are live locals for the call, `len` holds
    // `opts`' size, and the kernel writes at most that many bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&mut opts as *mut libc::xdp_options).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(opts.flags & libc::XDP_OPTIONS_ZEROCOPY != 0)
}

/// One socket's counters (or a sum of several), as the kernel keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SocketStats {
    /// Frames dropped for other reasons than a full RX ring: in copy mode,
    /// no free buffer (the fill ring was empty) or a frame too large.
    pub rx_dropped: u64,
    /// Invalid descriptors in the fill ring.
    pub rx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Invalid descriptors in the TX ring.
    pub tx_invalid_descs: u64,
    /// Times the kernel found the TX ring empty when woken to send.
    pub tx_ring_empty_descs: u64,
}

impl SocketStats {
    /// The counters in a fixed order (for atomics and tables): the fields'
    /// order.
    pub fn to_array(&self) -> [u64; 6] {
        [
            self.rx_dropped,
            self.rx_invalid_descs,
            self.rx_ring_full,
            self.rx_fill_ring_empty_descs,
            self.tx_invalid_descs,
            self.tx_ring_empty_descs,
        ]
    }

    /// The counters from [`SocketStats::to_array`]'s order.
    pub fn from_array(a: [u64; 6]) -> SocketStats {
        SocketStats {
            rx_dropped: a[0],
            rx_invalid_descs: a[1],
            rx_ring_full: a[2],
            rx_fill_ring_empty_descs: a[3],
            tx_invalid_descs: a[4],
            tx_ring_empty_descs: a[5],
        }
    }

    /// Frames that arrived for the socket and never reached its RX ring.
    pub fn lost_before_rx(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full
    }
}

impl AddAssign for SocketStats {
    fn add_assign(&mut self, o: SocketStats) {
        let mut a = self.to_array();
        for (x, y) in a.iter_mut().zip(o.to_array()) {
            *x += y;
        }
        *self = SocketStats::from_array(a);
    }
}

impl From<xsk_rs::socket::XdpStatistics> for SocketStats {
    fn from(s: xsk_rs::socket::XdpStatistics) -> SocketStats {
        SocketStats {
            rx_dropped: s.rx_dropped(),
            rx_invalid_descs: s.rx_invalid_descs(),
            rx_ring_full: s.rx_ring_full(),
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs(),
            tx_invalid_descs: s.tx_invalid_descs(),
            tx_ring_empty_descs: s.tx_ring_empty_descs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_the_loss_before_rx() {
        let mut a = SocketStats::from_array([1, 2, 3, 4, 5, 6]);
        assert_eq!(a.to_array(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(a.lost_before_rx(), 1 + 3);
        a += SocketStats {
            rx_ring_full: 10,
            tx_ring_empty_descs: 1,
            ..SocketStats::default()
        };
        assert_eq!(a.to_array(), [1, 2, 13, 4, 5, 7]);
        assert_eq!(a.lost_before_rx(), 14);
    }
}
