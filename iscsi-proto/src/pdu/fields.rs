//! Field types shared by several PDUs: LUN, task tags, ISID, login stages.

use std::fmt;

/// The 8-byte LUN field of a BHS, kept raw (SAM-5 addressing), with helpers for
/// the single-level forms every target uses.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Lun(pub [u8; 8]);

impl Lun {
    /// Wraps the raw 8 bytes.
    pub fn from_raw(raw: [u8; 8]) -> Self {
        Lun(raw)
    }

    /// The raw 8 bytes.
    pub fn as_raw(&self) -> [u8; 8] {
        self.0
    }

    /// The LUN field as a big-endian u64.
    pub fn to_u64(&self) -> u64 {
        u64::from_be_bytes(self.0)
    }

    /// The LUN field from a big-endian u64 (the inverse of [`Lun::to_u64`]).
    pub fn from_u64(value: u64) -> Self {
        Lun(value.to_be_bytes())
    }

    /// Encodes a single-level LUN as Linux and libiscsi do: peripheral device
    /// addressing below 256, flat space addressing up to 16383; `None` above,
    /// which single-level addressing cannot express.
    pub fn from_number(number: u16) -> Option<Self> {
        let [hi, lo] = number.to_be_bytes();
        match number {
            0..=0xff => Some(Lun([0x00, lo, 0, 0, 0, 0, 0, 0])),
            0x100..=0x3fff => Some(Lun([0x40 | hi, lo, 0, 0, 0, 0, 0, 0])),
            _ => None,
        }
    }

    /// The LUN number for single-level peripheral (bus 0) or flat addressing;
    /// `None` for other (hierarchical, logical unit, extended) forms.
    pub fn number(&self) -> Option<u16> {
        let b = self.0;
        if b[2..].iter().any(|&byte| byte != 0) {
            return None;
        }
        match b[0] >> 6 {
            0b00 if b[0] & 0x3f == 0 => Some(u16::from(b[1])),
            0b01 => Some(u16::from_be_bytes([b[0] & 0x3f, b[1]])),
            _ => None,
        }
    }

    pub(crate) fn read(bhs: &[u8; 48]) -> Self {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bhs[8..16]);
        Lun(raw)
    }
}

impl fmt::Debug for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "Lun({n})"),
            None => write!(f, "Lun({:02x?})", self.0),
        }
    }
}

impl fmt::Display for Lun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "{n}"),
            None => {
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The value a tag field holds when it carries no tag (RFC 7143 §11.2.1.8).
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Initiator Task Tag: names one task in the session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Itt(pub u32);

impl Itt {
    /// The reserved value: unsolicited NOP-In, Asynchronous Message, Reject.
    pub const RESERVED: Itt = Itt(RESERVED_TAG);

    /// True for 0xffffffff, which no task may use.
    pub fn is_reserved(self) -> bool {
        self.0 == RESERVED_TAG
    }
}

impl fmt::Debug for Itt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Itt({:#010x})", self.0)
    }
}

impl fmt::Display for Itt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Target Transfer Tag: names an R2T sequence or a target's NOP-In ping.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ttt(pub u32);

impl Ttt {
    /// No transfer tag: e.g. unsolicited Data-Out, a NOP-Out not answering a ping.
    pub const RESERVED: Ttt = Ttt(RESERVED_TAG);

    /// True for 0xffffffff: the PDU carries no transfer tag.
    pub fn is_reserved(self) -> bool {
        self.0 == RESERVED_TAG
    }
}

impl fmt::Debug for Ttt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ttt({:#010x})", self.0)
    }
}

impl fmt::Display for Ttt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Initiator Session ID (RFC 7143 §11.12.5): 6 bytes, the first two bits give the
/// format. With the TSIH it names the session; the same ISID on a new login with
/// TSIH 0 reinstates the session (§6.3.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Isid(pub [u8; 6]);

impl Isid {
    /// A "Random" format ISID (T = 10b) from caller-supplied random bytes: the
    /// qualifier bits are forced so that the value is a valid ISID.
    pub fn random(entropy: [u8; 5]) -> Self {
        let mut raw = [0u8; 6];
        raw[0] = 0x80;
        raw[1..4].copy_from_slice(&entropy[0..3]);
        raw[4..6].copy_from_slice(&entropy[3..5]);
        Isid(raw)
    }

    pub(crate) fn read(bhs: &[u8; 48]) -> Self {
        let mut raw = [0u8; 6];
        raw.copy_from_slice(&bhs[8..14]);
        Isid(raw)
    }
}

impl fmt::Debug for Isid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Isid({self})")
    }
}

impl fmt::Display for Isid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Login stage (CSG/NSG, RFC 7143 §11.12.3); text negotiation also uses it
/// for the stage a key may be sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// 0: SecurityNegotiation (authentication).
    Security,
    /// 1: LoginOperationalNegotiation.
    Operational,
    /// 3: FullFeaturePhase (2 is reserved).
    FullFeature,
}

impl Stage {
    /// Lower-case name, for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Security => "security",
            Stage::Operational => "operational",
            Stage::FullFeature => "full feature",
        }
    }

    pub(crate) fn bits(self) -> u8 {
        match self {
            Stage::Security => 0,
            Stage::Operational => 1,
            Stage::FullFeature => 3,
        }
    }

    pub(crate) fn from_bits(bits: u8) -> Option<Self> {
        match bits & 0x03 {
            0 => Some(Stage::Security),
            1 => Some(Stage::Operational),
            3 => Some(Stage::FullFeature),
            _ => None,
        }
    }
}

/// Residual of a completed transfer (the U and O bits with the Residual Count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Residual {
    /// The target transferred exactly what the initiator expected.
    #[default]
    None,
    /// The target transferred this many bytes less than expected.
    Underflow(u32),
    /// The target had this many bytes more than the initiator expected.
    Overflow(u32),
}

impl Residual {
    /// Decodes from the overflow/underflow bits and the count. Both bits set is a
    /// protocol error, reported as `None` here so that the caller can name it.
    pub(crate) fn from_bits(overflow: bool, underflow: bool, count: u32) -> Option<Self> {
        match (overflow, underflow) {
            (false, false) => Some(Residual::None),
            (false, true) => Some(Residual::Underflow(count)),
            (true, false) => Some(Residual::Overflow(count)),
            (true, true) => None,
        }
    }

    pub(crate) fn overflow_bit(self) -> bool {
        matches!(self, Residual::Overflow(_))
    }

    pub(crate) fn underflow_bit(self) -> bool {
        matches!(self, Residual::Underflow(_))
    }

    pub(crate) fn count(self) -> u32 {
        match self {
            Residual::None => 0,
            Residual::Underflow(n) | Residual::Overflow(n) => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lun_peripheral_and_flat_addressing() {
        assert_eq!(Lun::from_number(0).unwrap().0, [0; 8]);
        assert_eq!(Lun::from_number(5).unwrap().0, [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Lun::from_number(0x1234).unwrap().0,
            [0x52, 0x34, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(Lun::from_number(0x4000), None);
        for n in [0u16, 1, 255, 256, 1000, 0x3fff] {
            assert_eq!(Lun::from_number(n).unwrap().number(), Some(n));
        }
        assert_eq!(Lun([0x80, 1, 0, 0, 0, 0, 0, 0]).number(), None);
        assert_eq!(Lun([0, 1, 0, 2, 0, 0, 0, 0]).number(), None);
        assert_eq!(Lun([0x01, 1, 0, 0, 0, 0, 0, 0]).number(), None);
    }

    #[test]
    fn isid_random_has_random_format_bits() {
        let isid = Isid::random([0xff; 5]);
        assert_eq!(isid.0[0] >> 6, 0b10);
        assert_eq!(isid.to_string(), "80ffffffffff");
    }

    #[test]
    fn residual_bits() {
        assert_eq!(Residual::from_bits(true, true, 1), None);
        assert_eq!(
            Residual::from_bits(false, true, 7),
            Some(Residual::Underflow(7))
        );
        assert_eq!(
            Residual::from_bits(true, false, 7),
            Some(Residual::Overflow(7))
        );
        assert_eq!(Residual::from_bits(false, false, 7), Some(Residual::None));
    }
}
