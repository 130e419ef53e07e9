//! Byte ranges of header fields and big-endian reads and writes over them:
//! what every view's `mod field` is written in.

/// A header field's byte range, relative to the start of its header.
pub(crate) type Field = core::ops::Range<usize>;
/// The bytes from an offset to the end of the buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;

/// Reads the big-endian `u16` at `field` (a 2-byte range). Panics only if the
/// range is outside `data`, which a view's `check_len` rules out.
#[inline(always)]
pub(crate) fn read_u16(data: &[u8], field: Field) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(&data[field]);
    u16::from_be_bytes(b)
}

/// Reads the big-endian `u32` at `field` (a 4-byte range).
#[inline(always)]
pub(crate) fn read_u32(data: &[u8], field: Field) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[field]);
    u32::from_be_bytes(b)
}

/// Writes `value` big-endian at `field` (a 2-byte range).
#[inline(always)]
pub(crate) fn write_u16(data: &mut [u8], field: Field, value: u16) {
    data[field].copy_from_slice(&value.to_be_bytes());
}

/// Writes `value` big-endian at `field` (a 4-byte range).
#[inline(always)]
pub(crate) fn write_u32(data: &mut [u8], field: Field, value: u32) {
    data[field].copy_from_slice(&value.to_be_bytes());
}
