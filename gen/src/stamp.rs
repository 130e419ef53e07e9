//! The stamp at the start of every generated UDP payload.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "XGEN" (0x5847454e), network order
//!      4     4  flow id
//!      8     8  sequence number (per flow, from 0)
//!     16     8  transmit time, ns (the generator's clock)
//! ```
//! All fields big-endian. Payloads must be at least [`STAMP_LEN`] bytes.

/// Bytes the stamp occupies at the start of the payload.
pub const STAMP_LEN: usize = 24;
/// "XGEN": tells our packets from anything else on the wire.
pub const MAGIC: u32 = 0x5847_454e;

/// What a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Flow id.
    pub flow: u32,
    /// Per-flow sequence number.
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
    #[error("magic {0:#010x} is not xdpgen's")]
    Magic(u32),
}

impl Stamp {
    /// Writes the stamp at the start of `payload`.
    pub fn write(&self, payload: &mut [u8]) -> Result<(), StampError> {
        let have = payload.len();
        let b = payload
            .get_mut(..STAMP_LEN)
            .ok_or(StampError::Short(have))?;
        b[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        b[4..8].copy_from_slice(&self.flow.to_be_bytes());
        b[8..16].copy_from_slice(&self.seq.to_be_bytes());
        b[16..24].copy_from_slice(&self.tx_ns.to_be_bytes());
        Ok(())
    }

    /// Reads the stamp at the start of `payload`.
    pub fn read(payload: &[u8]) -> Result<Stamp, StampError> {
        let b = payload
            .get(..STAMP_LEN)
            .ok_or(StampError::Short(payload.len()))?;
        let word = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut w = [0u8; 8];
            w[8 - r.len()..].copy_from_slice(&b[r]);
            w
        };
        let magic = u64::from_be_bytes(word(0..4)) as u32;
        if magic != MAGIC {
            return Err(StampError::Magic(magic));
        }
        Ok(Stamp {
            flow: u64::from_be_bytes(word(4..8)) as u32,
            seq: u64::from_be_bytes(word(8..16)),
            tx_ns: u64::from_be_bytes(word(16..24)),
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
            seq: 0x0102_0304_0506_0708,
            tx_ns: 1_000_000_007,
        };
        let mut buf = [0xa5u8; 32];
        s.write(&mut buf).expect("fits");
        assert_eq!(
            &buf[..STAMP_LEN],
            &[
                0x58, 0x47, 0x45, 0x4e, // XGEN
                0, 0, 0, 3, // flow
                1, 2, 3, 4, 5, 6, 7, 8, // seq
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
    fn short_and_foreign_payloads_are_errors_not_panics() {
        assert_eq!(Stamp::read(&[0; 10]), Err(StampError::Short(10)));
        assert_eq!(Stamp::read(&[0; 24]), Err(StampError::Magic(0)));
        let mut small = [0u8; 23];
        assert!(Stamp {
            flow: 0,
            seq: 0,
            tx_ns: 0
        }
        .write(&mut small)
        .is_err());
    }
}
