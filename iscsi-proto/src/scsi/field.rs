//! Bounds-checked big-endian field readers shared by the response parsers.
//!
//! Every SCSI structure is big-endian; every read here returns `None` instead of
//! panicking when the field lies (partly) outside the buffer.

/// One byte at `offset`.
pub(crate) fn u8_at(data: &[u8], offset: usize) -> Option<u8> {
    data.get(offset).copied()
}

/// Big-endian u16 at `offset`.
pub(crate) fn u16_at(data: &[u8], offset: usize) -> Option<u16> {
    let bytes = data.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_be_bytes(bytes.try_into().ok()?))
}

/// Big-endian u32 at `offset`.
pub(crate) fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

/// Big-endian u64 at `offset`.
pub(crate) fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    let bytes = data.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Big-endian 24-bit value at `offset` (block lengths in short mode block descriptors).
pub(crate) fn u24_at(data: &[u8], offset: usize) -> Option<u32> {
    let bytes = data.get(offset..offset.checked_add(3)?)?;
    Some(u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]))
}

/// ASCII text field with trailing (and, for serial numbers, leading) padding removed.
///
/// Targets pad with spaces and sometimes NULs; anything non-UTF-8 is replaced
/// rather than rejected because these strings are only shown to people.
pub(crate) fn ascii_trimmed(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_owned()
}

/// Lower-case hex rendering of `bytes`, no separators.
pub fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_refuse_out_of_bounds() {
        let data = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(u8_at(&data, 7), Some(8));
        assert_eq!(u8_at(&data, 8), None);
        assert_eq!(u16_at(&data, 6), Some(0x0708));
        assert_eq!(u16_at(&data, 7), None);
        assert_eq!(u24_at(&data, 5), Some(0x060708));
        assert_eq!(u32_at(&data, 4), Some(0x05060708));
        assert_eq!(u32_at(&data, 5), None);
        assert_eq!(u64_at(&data, 0), Some(0x0102030405060708));
        assert_eq!(u64_at(&data, 1), None);
        assert_eq!(u64_at(&data, usize::MAX), None);
    }

    #[test]
    fn trims_spaces_and_nuls() {
        assert_eq!(ascii_trimmed(b"  beaf11\0\0 "), "beaf11");
        assert_eq!(ascii_trimmed(b"IET     "), "IET");
        assert_eq!(ascii_trimmed(b"    "), "");
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex_string(&[0x60, 0x0a, 0xff]), "600aff");
        assert_eq!(hex_string(&[]), "");
    }
}
