//! The stamp at the start of every generated UDP payload.
//!
//! ```text
//! offset  size  field
//!      0     2  magic "XG" (0x5847)
//!      2     2  flow id (0..=65535)
//!      4     6  sequence number (per flow, from 0; 48 bits)
//!     10     8  transmit time, ns (the generator's clock)
//! ```
//! All fields big-endian; [`STAMP_LEN`] = 18 bytes, so that a minimum-size
//! Ethernet frame (60 bytes without FCS: 14 Ethernet + 20 IPv4 + 8 UDP + 18)
//! carries a whole stamp. 48-bit sequence numbers last 325 days at 10 Mpps.

/// Bytes the stamp occupies at the start of the payload.
pub const STAMP_LEN: usize = 18;
/// "XG": tells our packets from anything else on the wire.
pub const MAGIC: u16 = 0x5847;
/// Largest sequence number a stamp carries (it wraps to 0 after this).
pub const SEQ_MAX: u64 = (1 << 48) - 1;

/// What a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Flow id.
    pub flow: u16,
    /// Per-flow sequence number (48 bits are sent).
    pub seq: u64,
    /// Transmit time in ns.
    pub tx_ns: u64,
}

/// Why a payload is not a stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// Shorter than [`STAMP_LEN`].
    #[error("payload of {0} bytes is shorter than a stamp ({STAMP_LEN} bytes)")]
    Short(usize),
    /// Not our magic.
    #[error("magic {0:#06x} is not xdpgen's")]
    Magic(u16),
}

impl Stamp {
    /// Writes the stamp at the start of `payload`.
    #[inline]
    pub fn write(&self, payload: &mut [u8]) -> Result<(), StampError> {
        let have = payload.len();
        let b: &mut [u8; STAMP_LEN] = payload
            .get_mut(..STAMP_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(StampError::Short(have))?;
        b[0..2].copy_from_slice(&MAGIC.to_be_bytes());
        b[2..4].copy_from_slice(&self.flow.to_be_bytes());
        b[4..10].copy_from_slice(&(self.seq & SEQ_MAX).to_be_bytes()[2..]);
        b[10..18].copy_from_slice(&self.tx_ns.to_be_bytes());
        Ok(())
    }

    /// Reads the stamp at the start of `payload`.
    #[inline]
    pub fn read(payload: &[u8]) -> Result<Stamp, StampError> {
        let b: &[u8; STAMP_LEN] = payload
            .get(..STAMP_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(StampError::Short(payload.len()))?;
        let magic = u16::from_be_bytes([b[0], b[1]]);
        if magic != MAGIC {
            return Err(StampError::Magic(magic));
        }
        let mut seq = [0u8; 8];
        seq[2..].copy_from_slice(&b[4..10]);
        let mut tx = [0u8; 8];
        tx.copy_from_slice(&b[10..18]);
        Ok(Stamp {
            flow: u16::from_be_bytes([b[2], b[3]]),
            seq: u64::from_be_bytes(seq),
            tx_ns: u64::from_be_bytes(tx),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let s = Stamp {
            flow: 3,
            seq: 0x0000_0304_0506_0708,
            tx_ns: 1_000_000_007,
        };
        let mut buf = [0xa5u8; 26];
        s.write(&mut buf).expect("fits");
        assert_eq!(
            &buf[..STAMP_LEN],
            &[
                0x58, 0x47, // XG
                0, 3, // flow
                3, 4, 5, 6, 7, 8, // seq, 48 bits
                0, 0, 0, 0, 0x3b, 0x9a, 0xca, 0x07, // 1_000_000_007 ns
            ]
        );
        assert_eq!(
            &buf[STAMP_LEN..],
            &[0xa5; 8],
            "bytes after the stamp untouched"
        );
        assert_eq!(Stamp::read(&buf), Ok(s));
    }

    #[test]
    fn sequence_numbers_keep_48_bits() {
        let s = Stamp {
            flow: 65535,
            seq: SEQ_MAX + 5,
            tx_ns: u64::MAX,
        };
        let mut buf = [0u8; STAMP_LEN];
        s.write(&mut buf).expect("fits");
        let r = Stamp::read(&buf).expect("ours");
        assert_eq!((r.flow, r.seq, r.tx_ns), (65535, 4, u64::MAX));
    }

    #[test]
    fn short_and_foreign_payloads_are_errors_not_panics() {
        assert_eq!(Stamp::read(&[0; 10]), Err(StampError::Short(10)));
        assert_eq!(Stamp::read(&[0; 18]), Err(StampError::Magic(0)));
        let mut small = [0u8; 17];
        assert!(Stamp {
            flow: 0,
            seq: 0,
            tx_ns: 0
        }
        .write(&mut small)
        .is_err());
    }
}
