//! Ethernet II header and 802.1Q / 802.1ad VLAN tags.
//!
//! ```text
//!  0      6      12        14
//! +------+------+---------+---------
//! | dst  | src  | type    | payload        untagged
//! +------+------+---------+---------
//! | dst  | src  | TPID    | TCI | type | payload   one tag (4 bytes)
//! ```
//!
//! A VLAN tag sits where the EtherType was: the outer header's type field
//! holds the tag's TPID (0x8100, 0x88a8 or 0x9100), and the tag itself is the
//! 2-byte TCI (PCP:3, DEI:1, VID:12) followed by the next type field. So a
//! [`VlanTag`] view starts *after* the TPID, at the TCI.

use super::{ethertype, read_u16, write_u16, Field, Layer, ParseError, Rest};

/// A 48-bit MAC address, in transmission order.
pub type EthernetAddress = [u8; 6];

/// Most VLAN tags walked: QinQ (an S-tag over a C-tag) is the deepest
/// stacking in common use and [`super::Headers`] has two VLAN slots; a cap
/// also bounds the per-frame work.
pub const MAX_VLAN_TAGS: usize = 2;

/// Byte ranges of the Ethernet II header.
mod field {
    use super::{Field, Rest};
    /// Destination MAC.
    pub const DESTINATION: Field = 0..6;
    /// Source MAC.
    pub const SOURCE: Field = 6..12;
    /// EtherType, TPID, or (below 0x0600) 802.3 length.
    pub const ETHERTYPE: Field = 12..14;
    /// Everything after the header (VLAN tags included).
    pub const PAYLOAD: Rest = 14..;
}

/// Length of the untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// A read/write view of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than [`HEADER_LEN`].
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the 14-byte header, so no accessor
    /// panics.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Ethernet,
                need: HEADER_LEN,
                have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        a
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> EthernetAddress {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        a
    }

    /// The type field: an EtherType, a VLAN TPID, or (below
    /// [`ethertype::ETHERNET_II_MIN`]) an 802.3 length.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The bytes after the 14-byte header (VLAN tags, if any, come first).
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr);
    }

    /// Sets the source MAC address.
    pub fn set_src(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr);
    }

    /// Sets the type field.
    pub fn set_ethertype(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value);
    }

    /// The bytes after the 14-byte header, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// Byte ranges of a VLAN tag, counted from the TCI (the TPID is the type
/// field of the header before it).
mod vlan_field {
    use super::{Field, Rest};
    /// Tag control information: PCP (3 bits), DEI (1), VLAN id (12).
    pub const TCI: Field = 0..2;
    /// The next type field: another TPID or the EtherType.
    pub const ETHERTYPE: Field = 2..4;
    /// Everything after the tag.
    pub const PAYLOAD: Rest = 4..;
}

/// Length of one VLAN tag after its TPID (TCI + next type field).
pub const VLAN_TAG_LEN: usize = vlan_field::PAYLOAD.start;

/// Mask of the 12-bit VLAN id in the TCI.
const VID_MASK: u16 = 0x0fff;
/// Bit of the drop-eligible indicator in the TCI.
const DEI_BIT: u16 = 0x1000;
/// Shift of the 3-bit priority code point in the TCI.
const PCP_SHIFT: u32 = 13;

/// A read/write view of one VLAN tag (TCI + next type field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Wraps a buffer without checking it; accessors may panic if it is
    /// shorter than [`VLAN_TAG_LEN`].
    #[inline(always)]
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Checks that the buffer holds the 4-byte tag.
    #[inline(always)]
    pub fn check_len(&self) -> Result<(), ParseError> {
        let have = self.buffer.as_ref().len();
        if have < VLAN_TAG_LEN {
            return Err(ParseError::Truncated {
                layer: Layer::Vlan,
                need: VLAN_TAG_LEN,
                have,
            });
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The raw 16-bit TCI.
    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), vlan_field::TCI)
    }

    /// Priority code point (802.1p), 0..=7.
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> PCP_SHIFT) as u8
    }

    /// Drop-eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & DEI_BIT != 0
    }

    /// VLAN id, 0..=4095.
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & VID_MASK
    }

    /// The type field after this tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), vlan_field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    /// The bytes after the tag.
    #[inline(always)]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[vlan_field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Sets the raw TCI.
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(self.buffer.as_mut(), vlan_field::TCI, tci);
    }

    /// Sets PCP, DEI and VLAN id at once (PCP above 7 and ids above 4095
    /// are masked).
    pub fn set_fields(&mut self, pcp: u8, dei: bool, vlan_id: u16) {
        let tci = (u16::from(pcp & 0x7) << PCP_SHIFT)
            | if dei { DEI_BIT } else { 0 }
            | (vlan_id & VID_MASK);
        self.set_tci(tci);
    }

    /// Sets the type field after this tag.
    pub fn set_ethertype(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), vlan_field::ETHERTYPE, value);
    }
}

/// One VLAN tag's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRepr {
    /// The tag protocol identifier that introduced it (0x8100, 0x88a8 or
    /// 0x9100).
    pub tpid: u16,
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop-eligible indicator.
    pub dei: bool,
    /// VLAN id, 0..=4095.
    pub vlan_id: u16,
}

/// The VLAN tags of a frame, outer first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VlanTags {
    /// Untagged.
    #[default]
    None,
    /// One tag (usually 802.1Q).
    Single(VlanRepr),
    /// Two tags (QinQ).
    Double {
        /// Outer tag (usually 802.1ad, TPID 0x88a8).
        outer: VlanRepr,
        /// Inner tag (usually 802.1Q).
        inner: VlanRepr,
    },
}

impl VlanTags {
    /// Number of tags.
    pub const fn len(&self) -> usize {
        match self {
            VlanTags::None => 0,
            VlanTags::Single(_) => 1,
            VlanTags::Double { .. } => 2,
        }
    }

    /// Whether the frame is untagged.
    pub const fn is_empty(&self) -> bool {
        matches!(self, VlanTags::None)
    }

    /// The tags, outer first; absent slots are `None`.
    pub const fn as_array(&self) -> [Option<VlanRepr>; MAX_VLAN_TAGS] {
        match *self {
            VlanTags::None => [None, None],
            VlanTags::Single(t) => [Some(t), None],
            VlanTags::Double { outer, inner } => [Some(outer), Some(inner)],
        }
    }
}

/// An Ethernet II header's meaning, VLAN tags included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source MAC.
    pub src: EthernetAddress,
    /// Destination MAC.
    pub dst: EthernetAddress,
    /// VLAN tags, outer first.
    pub vlans: VlanTags,
    /// The EtherType after the tags.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parses the header and walks up to [`MAX_VLAN_TAGS`] tags.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &EthernetFrame<&T>) -> Result<Self, ParseError> {
        frame.check_len()?;
        let mut tags: [Option<VlanRepr>; MAX_VLAN_TAGS] = [None; MAX_VLAN_TAGS];
        let mut ty = frame.ethertype();
        let mut rest = frame.payload();
        let mut count = 0;
        while ethertype::is_vlan(ty) {
            let tag = VlanTag::new_checked(rest)?;
            let slot = tags.get_mut(count).ok_or(ParseError::TooManyVlanTags)?;
            *slot = Some(VlanRepr {
                tpid: ty,
                pcp: tag.pcp(),
                dei: tag.dei(),
                vlan_id: tag.vlan_id(),
            });
            count += 1;
            ty = tag.ethertype();
            rest = tag.payload();
        }
        let vlans = match tags {
            [None, _] => VlanTags::None,
            [Some(t), None] => VlanTags::Single(t),
            [Some(outer), Some(inner)] => VlanTags::Double { outer, inner },
        };
        Ok(EthernetRepr {
            src: frame.src(),
            dst: frame.dst(),
            vlans,
            ethertype: ty,
        })
    }

    /// Bytes [`emit`](Self::emit) writes: 14 plus 4 per tag.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * self.vlans.len()
    }

    /// Writes the header and tags.
    ///
    /// # Panics
    /// If the buffer is shorter than [`header_len`](Self::header_len).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst(self.dst);
        frame.set_src(self.src);
        let tags = self.vlans.as_array();
        let mut ty_here = self.ethertype;
        if let Some(first) = tags[0] {
            ty_here = first.tpid;
        }
        frame.set_ethertype(ty_here);
        let mut rest = frame.payload_mut();
        for (i, tag) in tags.iter().enumerate() {
            let Some(tag) = tag else { break };
            let next = match tags.get(i + 1) {
                Some(Some(t)) => t.tpid,
                _ => self.ethertype,
            };
            let (this, after) = rest.split_at_mut(VLAN_TAG_LEN);
            let mut view = VlanTag::new_unchecked(this);
            view.set_fields(tag.pcp, tag.dei, tag.vlan_id);
            view.set_ethertype(next);
            rest = after;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dst 02:00:00:00:00:02, src 02:00:00:00:00:01, 802.1ad S-tag PCP 5
    /// VID 100, 802.1Q C-tag PCP 0 DEI VID 4094, EtherType IPv6, then two
    /// payload bytes.
    const QINQ: [u8; 24] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x88, 0xa8, // TPID 802.1ad
        0xa0, 0x64, // PCP 5, DEI 0, VID 100
        0x81, 0x00, // TPID 802.1Q
        0x1f, 0xfe, // PCP 0, DEI 1, VID 4094
        0x86, 0xdd, // EtherType IPv6
        0xde, 0xad, // payload
    ];

    #[test]
    fn view_reads_golden_qinq() {
        let f = EthernetFrame::new_checked(&QINQ[..]).expect("valid");
        assert_eq!(f.dst(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.ethertype(), ethertype::QINQ);
        let outer = VlanTag::new_checked(f.payload()).expect("tag");
        assert_eq!((outer.pcp(), outer.dei(), outer.vlan_id()), (5, false, 100));
        assert_eq!(outer.ethertype(), ethertype::VLAN);
        let inner = VlanTag::new_checked(outer.payload()).expect("tag");
        assert_eq!((inner.pcp(), inner.dei(), inner.vlan_id()), (0, true, 4094));
        assert_eq!(inner.ethertype(), ethertype::IPV6);
        assert_eq!(inner.payload(), &[0xde, 0xad]);
    }

    #[test]
    fn repr_parses_qinq_and_emits_same_bytes() {
        let repr = EthernetRepr::parse(&EthernetFrame::new_checked(&QINQ[..]).expect("valid"))
            .expect("repr");
        let outer = VlanRepr {
            tpid: ethertype::QINQ,
            pcp: 5,
            dei: false,
            vlan_id: 100,
        };
        let inner = VlanRepr {
            tpid: ethertype::VLAN,
            pcp: 0,
            dei: true,
            vlan_id: 4094,
        };
        assert_eq!(repr.vlans, VlanTags::Double { outer, inner });
        assert_eq!(repr.ethertype, ethertype::IPV6);
        assert_eq!(repr.header_len(), 22);

        let mut buf = [0xa5u8; 22];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..], QINQ[..22]);
    }

    #[test]
    fn emit_untagged_and_single_tag_from_a5() {
        let mut repr = EthernetRepr {
            src: [0x02, 0, 0, 0, 0, 0x01],
            dst: [0xff; 6],
            vlans: VlanTags::None,
            ethertype: ethertype::ARP,
        };
        let mut buf = [0xa5u8; 14];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(
            buf,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]
        );

        repr.vlans = VlanTags::Single(VlanRepr {
            tpid: ethertype::VLAN,
            pcp: 7,
            dei: false,
            vlan_id: 0x123,
        });
        let mut buf = [0xa5u8; 18];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        assert_eq!(buf[12..], [0x81, 0x00, 0xe1, 0x23, 0x08, 0x06]);
        let back = EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).expect("valid"))
            .expect("repr");
        assert_eq!(back, repr);
    }

    #[test]
    fn too_many_tags_and_truncation() {
        // Three 802.1Q tags.
        let mut f = [0u8; 14 + 12];
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[16..18].copy_from_slice(&[0x81, 0x00]);
        f[20..22].copy_from_slice(&[0x91, 0x00]);
        f[24..26].copy_from_slice(&[0x08, 0x00]);
        let frame = EthernetFrame::new_checked(&f[..]).expect("valid");
        assert_eq!(
            EthernetRepr::parse(&frame),
            Err(ParseError::TooManyVlanTags)
        );
        assert_eq!(
            EthernetRepr::parse(&EthernetFrame::new_unchecked(&f[..16])),
            Err(ParseError::Truncated {
                layer: Layer::Vlan,
                need: 4,
                have: 2
            })
        );
        assert_eq!(
            EthernetFrame::new_checked(&f[..13]).err(),
            Some(ParseError::Truncated {
                layer: Layer::Ethernet,
                need: 14,
                have: 13
            })
        );
    }
}
