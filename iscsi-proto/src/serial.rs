//! RFC 1982 serial number arithmetic with `SERIAL_BITS = 32`.
//!
//! iSCSI sequence numbers (CmdSN, ExpCmdSN, MaxCmdSN, StatSN, DataSN, R2TSN)
//! wrap around at 2^32 and are compared with serial arithmetic (RFC 7143
//! §4.2.2.1). Serial order is not total (two numbers exactly 2^31 apart are
//! unordered), so [`SerialNumber`] deliberately has no `PartialOrd`/`Ord`:
//! callers use the explicit [`SerialNumber::lt`], [`SerialNumber::gt`],
//! [`SerialNumber::le`] and [`SerialNumber::ge`] methods.

use std::fmt;

/// Half the serial number space: the largest distance that is still ordered
/// is `HALF - 1`.
const HALF: u32 = 1 << 31;

/// A 32-bit sequence number compared with RFC 1982 serial arithmetic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct SerialNumber(pub u32);

impl SerialNumber {
    /// Wraps a raw sequence number.
    pub const fn new(value: u32) -> Self {
        Self(value)
    }

    /// The raw value, as carried in a PDU header.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `self + n` modulo 2^32.
    ///
    /// RFC 1982 only defines addition for `n < 2^31`; larger increments are
    /// still computed modulo 2^32 (they never occur for iSCSI windows).
    #[must_use]
    pub const fn add(self, n: u32) -> Self {
        Self(self.0.wrapping_add(n))
    }

    /// The next number (`self + 1`).
    #[must_use]
    pub const fn next(self) -> Self {
        self.add(1)
    }

    /// `self < other` in serial arithmetic (RFC 1982 §3.2).
    ///
    /// When the two numbers are exactly 2^31 apart RFC 1982 leaves the
    /// comparison undefined; we define it as "neither less nor greater", so
    /// both `a.lt(b)` and `b.lt(a)` are false.
    pub const fn lt(self, other: Self) -> bool {
        let ahead = other.0.wrapping_sub(self.0);
        ahead != 0 && ahead < HALF
    }

    /// `self > other` in serial arithmetic; see [`SerialNumber::lt`] for the
    /// undefined case.
    pub const fn gt(self, other: Self) -> bool {
        other.lt(self)
    }

    /// `self <= other`: equal or serially less.
    pub const fn le(self, other: Self) -> bool {
        self.0 == other.0 || self.lt(other)
    }

    /// `self >= other`: equal or serially greater.
    pub const fn ge(self, other: Self) -> bool {
        self.0 == other.0 || self.gt(other)
    }

    /// How far `b` is ahead of `a`, when `b >= a` in serial arithmetic.
    ///
    /// Returns `None` when `b` is serially behind `a` or the two are
    /// unordered (exactly 2^31 apart).
    pub const fn distance(a: Self, b: Self) -> Option<u32> {
        if b.ge(a) {
            Some(b.0.wrapping_sub(a.0))
        } else {
            None
        }
    }

    /// `lo <= x <= hi` in serial arithmetic, as used for the CmdSN window
    /// `ExpCmdSN..=MaxCmdSN`.
    ///
    /// RFC 7143 §4.2.2.1: when `MaxCmdSN == ExpCmdSN - 1` the window is empty
    /// (the target accepts no new command), and this returns `false` for
    /// every `x`. A window whose `hi` is serially below `lo` is empty too.
    pub const fn in_window(x: Self, lo: Self, hi: Self) -> bool {
        lo.le(x) && x.le(hi)
    }
}

impl From<u32> for SerialNumber {
    fn from(value: u32) -> Self {
        Self(value)
    }
}

impl From<SerialNumber> for u32 {
    fn from(value: SerialNumber) -> Self {
        value.0
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sn(v: u32) -> SerialNumber {
        SerialNumber(v)
    }

    #[test]
    fn wrap_around_comparisons() {
        assert!(sn(0xFFFF_FFFF).lt(sn(0)));
        assert!(sn(0).gt(sn(0xFFFF_FFFF)));
        assert!(sn(5).gt(sn(0xFFFF_FFF0)));
        assert!(sn(0xFFFF_FFF0).lt(sn(5)));
        assert!(sn(1).lt(sn(2)));
        assert!(!sn(2).lt(sn(1)));
        assert!(sn(0x7FFF_FFFF).gt(sn(0)));
    }

    #[test]
    fn equal_is_neither_less_nor_greater() {
        assert!(!sn(7).lt(sn(7)));
        assert!(!sn(7).gt(sn(7)));
        assert!(sn(7).le(sn(7)));
        assert!(sn(7).ge(sn(7)));
    }

    #[test]
    fn exactly_half_apart_is_unordered() {
        let a = sn(0);
        let b = sn(HALF);
        assert!(!a.lt(b) && !a.gt(b));
        assert!(!b.lt(a) && !b.gt(a));
        assert!(!a.le(b) && !a.ge(b));
        assert_eq!(SerialNumber::distance(a, b), None);
        assert_eq!(SerialNumber::distance(b, a), None);
    }

    #[test]
    fn add_wraps() {
        assert_eq!(sn(0xFFFF_FFFF).add(1), sn(0));
        assert_eq!(sn(0xFFFF_FFFE).add(5), sn(3));
        assert_eq!(sn(9).next(), sn(10));
    }

    #[test]
    fn distance_across_wrap() {
        assert_eq!(SerialNumber::distance(sn(0xFFFF_FFFE), sn(2)), Some(4));
        assert_eq!(SerialNumber::distance(sn(2), sn(0xFFFF_FFFE)), None);
        assert_eq!(SerialNumber::distance(sn(10), sn(10)), Some(0));
    }

    #[test]
    fn cmdsn_window() {
        // Normal window 10..=20.
        assert!(SerialNumber::in_window(sn(10), sn(10), sn(20)));
        assert!(SerialNumber::in_window(sn(20), sn(10), sn(20)));
        assert!(!SerialNumber::in_window(sn(21), sn(10), sn(20)));
        assert!(!SerialNumber::in_window(sn(9), sn(10), sn(20)));
        // Window crossing the wrap.
        assert!(SerialNumber::in_window(sn(1), sn(0xFFFF_FFFE), sn(3)));
        assert!(!SerialNumber::in_window(sn(4), sn(0xFFFF_FFFE), sn(3)));
        // MaxCmdSN == ExpCmdSN - 1: empty window.
        for x in [0u32, 99, 100, 101, 0xFFFF_FFFF] {
            assert!(!SerialNumber::in_window(sn(x), sn(100), sn(99)));
        }
        assert!(!SerialNumber::in_window(sn(0), sn(0), sn(0xFFFF_FFFF)));
        // Single-slot window.
        assert!(SerialNumber::in_window(sn(7), sn(7), sn(7)));
    }

    proptest! {
        #[test]
        fn lt_gt_are_antisymmetric(a: u32, b: u32) {
            let (a, b) = (sn(a), sn(b));
            prop_assert_eq!(a.lt(b), b.gt(a));
            prop_assert!(!(a.lt(b) && b.lt(a)));
            // Exactly one of <, ==, > holds unless the pair is 2^31 apart.
            let ordered = a.lt(b) as u8 + (a == b) as u8 + a.gt(b) as u8;
            if a.0.wrapping_sub(b.0) == HALF {
                prop_assert_eq!(ordered, 0);
            } else {
                prop_assert_eq!(ordered, 1);
            }
        }

        #[test]
        fn adding_less_than_half_moves_forward(a: u32, n in 1u32..HALF) {
            let a = sn(a);
            let b = a.add(n);
            prop_assert!(a.lt(b));
            prop_assert!(b.gt(a));
            prop_assert_eq!(SerialNumber::distance(a, b), Some(n));
            prop_assert_eq!(SerialNumber::distance(b, a), None);
        }

        #[test]
        fn window_matches_offset_model(lo: u32, width in 0u32..HALF, offset: u32) {
            // Model: x is inside iff its offset from lo is at most the width.
            let (lo_s, hi_s, x_s) = (sn(lo), sn(lo).add(width), sn(lo).add(offset));
            prop_assert_eq!(SerialNumber::in_window(x_s, lo_s, hi_s), offset <= width);
        }

        #[test]
        fn empty_window_contains_nothing(lo: u32, x: u32) {
            let lo = sn(lo);
            let hi = sn(lo.0.wrapping_sub(1));
            prop_assert!(!SerialNumber::in_window(sn(x), lo, hi));
        }
    }
}
