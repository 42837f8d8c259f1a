//! CRC32C header and data digests (RFC 7143 §13.1, Appendix B).
//!
//! The `crc32c` crate uses SSE4.2 / ARMv8 CRC instructions when the CPU has them,
//! which keeps data digests cheap enough to leave on.

/// Bytes a digest occupies on the wire.
pub const DIGEST_LEN: usize = 4;

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a CRC32C over more bytes (for a segment stored in pieces).
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The digest's wire bytes. RFC 7143 Appendix B shows the CRC of 32 zero bytes
/// (0x8a9136aa) sent as `aa 36 91 8a`: least significant byte first.
pub fn to_wire(crc: u32) -> [u8; DIGEST_LEN] {
    crc.to_le_bytes()
}

/// Reads a digest from its wire bytes.
pub fn from_wire(bytes: [u8; DIGEST_LEN]) -> u32 {
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7143 Appendix B "CRC Examples": byte strings and the CRC bytes as sent.
    #[test]
    fn rfc7143_appendix_b_vectors() {
        assert_eq!(to_wire(crc32c(&[0u8; 32])), [0xaa, 0x36, 0x91, 0x8a]);
        assert_eq!(to_wire(crc32c(&[0xffu8; 32])), [0x43, 0xab, 0xa8, 0x62]);
        let incrementing: Vec<u8> = (0u8..32).collect();
        assert_eq!(to_wire(crc32c(&incrementing)), [0x4e, 0x79, 0xdd, 0x46]);
        let decrementing: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(to_wire(crc32c(&decrementing)), [0x5c, 0xdb, 0x3f, 0x11]);
        // An iSCSI SCSI Read (10) command PDU.
        let read_cmd: [u8; 48] = [
            0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14,
            0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(to_wire(crc32c(&read_cmd)), [0x56, 0x3a, 0x96, 0xd9]);
    }

    #[test]
    fn append_equals_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let (a, b) = data.split_at(333);
        assert_eq!(crc32c_append(crc32c(a), b), crc32c(&data));
        assert_eq!(from_wire(to_wire(0x1234_5678)), 0x1234_5678);
    }
}
