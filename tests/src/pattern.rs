//! A deterministic pseudo-random data pattern for LUN contents.
//!
//! Every 8-byte word is a pure function of (seed, word index), so any byte range can
//! be produced on its own: a read test computes what it expects at any offset
//! without reading the whole backing file.

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The pattern word covering bytes `8 * index .. 8 * index + 8`.
fn word(seed: u64, index: u64) -> [u8; 8] {
    splitmix64(seed ^ splitmix64(index)).to_le_bytes()
}

/// Fills `buf` with the pattern bytes at `offset .. offset + buf.len()`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut position = offset;
    let mut rest = buf;
    while !rest.is_empty() {
        let within = (position % 8) as usize;
        let bytes = word(seed, position / 8);
        let take = (8 - within).min(rest.len());
        rest[..take].copy_from_slice(&bytes[within..within + take]);
        rest = &mut rest[take..];
        position += take as u64;
    }
}

/// The pattern bytes at `offset .. offset + len`.
pub fn bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    fill(seed, offset, &mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn different_seeds_differ() {
        assert_ne!(bytes(1, 0, 64), bytes(2, 0, 64));
    }

    #[test]
    fn not_trivially_repetitive() {
        let data = bytes(7, 0, 4096);
        assert_ne!(data[..512], data[512..1024]);
        assert!(data.iter().any(|&b| b != 0));
    }

    proptest! {
        #[test]
        fn any_range_matches_the_whole(seed: u64, start in 0usize..600, len in 0usize..600) {
            let whole = bytes(seed, 0, 1200);
            prop_assert_eq!(&bytes(seed, start as u64, len)[..], &whole[start..start + len]);
        }
    }
}
