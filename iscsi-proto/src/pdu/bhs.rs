//! Big-endian field access on the 48-byte Basic Header Segment (RFC 7143 §11.2.1).

/// Length of the Basic Header Segment.
pub const BHS_LEN: usize = 48;

/// The immediate-delivery bit in byte 0.
pub(crate) const IMMEDIATE_BIT: u8 = 0x40;
/// The final bit in byte 1 of most PDUs.
pub(crate) const FINAL_BIT: u8 = 0x80;

pub(crate) fn get_u16(b: &[u8; BHS_LEN], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn get_u32(b: &[u8; BHS_LEN], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn put_u16(b: &mut [u8; BHS_LEN], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(b: &mut [u8; BHS_LEN], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// TotalAHSLength in bytes (the field counts 4-byte words).
pub fn total_ahs_len(b: &[u8; BHS_LEN]) -> usize {
    usize::from(b[4]) * 4
}

/// DataSegmentLength: the 24-bit payload length, padding excluded.
pub fn data_segment_len(b: &[u8; BHS_LEN]) -> u32 {
    u32::from_be_bytes([0, b[5], b[6], b[7]])
}

/// The Initiator Task Tag at bytes 16..20 (present in every PDU, reserved in some).
pub fn itt_field(b: &[u8; BHS_LEN]) -> u32 {
    get_u32(b, 16)
}

/// Rounds a segment length up to the 4-byte boundary the wire uses.
pub fn padded_len(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding() {
        assert_eq!(padded_len(0), 0);
        assert_eq!(padded_len(1), 4);
        assert_eq!(padded_len(4), 4);
        assert_eq!(padded_len(5), 8);
    }

    #[test]
    fn lengths() {
        let mut b = [0u8; BHS_LEN];
        b[4] = 3;
        b[5] = 0x01;
        b[6] = 0x02;
        b[7] = 0x03;
        assert_eq!(total_ahs_len(&b), 12);
        assert_eq!(data_segment_len(&b), 0x010203);
    }
}
