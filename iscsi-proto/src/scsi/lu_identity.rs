//! The identity of a logical unit, compared between paths by the multipath layer.

use std::fmt;

use super::field::{ascii_trimmed, hex_string};
use super::vpd::{Designator, DeviceIdentification, UnitSerialNumber};

/// Which designator kind an identity comes from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LuIdentityKind {
    /// NAA designator.
    Naa,
    /// EUI-64 based designator.
    Eui64,
    /// SCSI name string.
    ScsiNameString,
    /// T10 vendor ID based designator (vendor + vendor-specific id).
    T10VendorId,
    /// No usable VPD 83h designator: the VPD 80h unit serial number.
    UnitSerial,
}

/// A logical unit's best designator.
///
/// Two paths lead to the same LU exactly when their identities are equal.
/// Preference: NAA > EUI-64 > SCSI name string > T10 vendor ID, all with
/// association "logical unit"; within NAA and EUI-64 the longer designator
/// wins (NAA 6 over NAA 5/3, 16-byte EUI over 8-byte) since it carries more of
/// the vendor's unique number; on a tie the first in page order wins.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LuIdentity {
    kind: LuIdentityKind,
    bytes: Vec<u8>,
}

impl LuIdentity {
    /// Picks the best logical unit designator of a Device Identification page.
    pub fn from_device_identification(page: &DeviceIdentification) -> Option<Self> {
        let mut best: Option<LuIdentity> = None;
        for designator in page.logical_unit_designators() {
            let Some(candidate) = LuIdentity::from_designator(designator) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some(current) => {
                    (candidate.kind, std::cmp::Reverse(candidate.bytes.len()))
                        < (current.kind, std::cmp::Reverse(current.bytes.len()))
                }
            };
            if better {
                best = Some(candidate);
            }
        }
        best
    }

    /// Identity carried by one designator, if it is of a usable kind.
    pub fn from_designator(designator: &Designator) -> Option<Self> {
        let (kind, bytes) = match designator {
            Designator::Naa(bytes) => (LuIdentityKind::Naa, bytes.clone()),
            Designator::Eui64(bytes) => (LuIdentityKind::Eui64, bytes.clone()),
            Designator::ScsiNameString(name) if !name.is_empty() => {
                (LuIdentityKind::ScsiNameString, name.as_bytes().to_vec())
            }
            Designator::T10VendorId { vendor, specific } => {
                let mut bytes = format!("{vendor:<8}").into_bytes();
                bytes.extend_from_slice(specific);
                (LuIdentityKind::T10VendorId, bytes)
            }
            _ => return None,
        };
        Some(LuIdentity { kind, bytes })
    }

    /// The fallback identity from the unit serial number (VPD 80h); `None`
    /// when the target reports no serial or only part of it.
    pub fn from_unit_serial(serial: &UnitSerialNumber) -> Option<Self> {
        if serial.serial.is_empty() || serial.truncated {
            return None;
        }
        Some(LuIdentity {
            kind: LuIdentityKind::UnitSerial,
            bytes: serial.serial.as_bytes().to_vec(),
        })
    }

    /// Kind of designator this identity comes from.
    pub fn kind(&self) -> LuIdentityKind {
        self.kind
    }

    /// The designator bytes (for T10 vendor IDs: the space-padded vendor then the id).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Display for LuIdentity {
    /// WWID form: `naa.<hex>`, `eui.<hex>`, the name string, or `t10.<vendor> <id>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            LuIdentityKind::Naa => write!(f, "naa.{}", hex_string(&self.bytes)),
            LuIdentityKind::Eui64 => write!(f, "eui.{}", hex_string(&self.bytes)),
            LuIdentityKind::ScsiNameString => f.write_str(&String::from_utf8_lossy(&self.bytes)),
            LuIdentityKind::UnitSerial => {
                write!(f, "serial.{}", String::from_utf8_lossy(&self.bytes))
            }
            LuIdentityKind::T10VendorId => {
                let (vendor, specific) = self.bytes.split_at(self.bytes.len().min(8));
                write!(
                    f,
                    "t10.{} {}",
                    ascii_trimmed(vendor),
                    ascii_trimmed(specific)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    fn page(descriptors: &[&[u8]]) -> DeviceIdentification {
        let mut data = vec![0x00, 0x83, 0x00, 0x00];
        for d in descriptors {
            data.extend_from_slice(d);
        }
        data[3] = (data.len() - 4) as u8;
        DeviceIdentification::parse(&data).unwrap()
    }

    const T10: &[u8] = b"\x02\x01\x00\x0cVENDOR  1234";
    const NAA5: &[u8] = &[0x01, 0x03, 0x00, 0x08, 0x50, 1, 2, 3, 4, 5, 6, 7];
    const EUI8: &[u8] = &[0x01, 0x02, 0x00, 0x08, 0xaa, 1, 2, 3, 4, 5, 6, 7];
    const EUI16: &[u8] = &[
        0x01, 0x02, 0x00, 0x10, 0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    ];
    const NAME: &[u8] = b"\x03\x08\x00\x08iqn.lu\0\0";
    // NAA, but for the target port: must never be taken as the LU identity.
    const PORT_NAA: &[u8] = &[0x01, 0x13, 0x00, 0x08, 0x50, 9, 9, 9, 9, 9, 9, 9];

    #[test]
    fn tgtd_identity_is_the_naa6() {
        let id = DeviceIdentification::parse(tgtd_vectors::VPD_DEVICE_ID)
            .unwrap()
            .lu_identity()
            .unwrap();
        assert_eq!(id.kind(), LuIdentityKind::Naa);
        assert_eq!(id.to_string(), "naa.60000000000000000e00000000010001");
        // The 64-byte answer lacks the NAA 6 descriptor: the NAA 3 one is chosen.
        let cut = DeviceIdentification::parse(tgtd_vectors::VPD_DEVICE_ID_ALLOC64).unwrap();
        assert_eq!(
            cut.lu_identity().unwrap().to_string(),
            "naa.3000000100000001"
        );
    }

    #[test]
    fn preference_order() {
        assert_eq!(
            page(&[T10, NAME, EUI8, NAA5]).lu_identity().unwrap().kind(),
            LuIdentityKind::Naa
        );
        assert_eq!(
            page(&[T10, NAME, EUI8]).lu_identity().unwrap().to_string(),
            "eui.aa01020304050607"
        );
        assert_eq!(
            page(&[T10, NAME]).lu_identity().unwrap().to_string(),
            "iqn.lu"
        );
        assert_eq!(
            page(&[T10]).lu_identity().unwrap().to_string(),
            "t10.VENDOR 1234"
        );
        assert_eq!(
            page(&[PORT_NAA, T10]).lu_identity().unwrap().kind(),
            LuIdentityKind::T10VendorId
        );
        assert_eq!(page(&[PORT_NAA]).lu_identity(), None);
        assert_eq!(page(&[]).lu_identity(), None);
    }

    #[test]
    fn longer_designator_of_a_kind_wins_then_first() {
        let id = page(&[EUI8, EUI16]).lu_identity().unwrap();
        assert_eq!(id.as_bytes().len(), 16);
        let first = page(&[NAA5, &[0x01, 0x03, 0x00, 0x08, 0x50, 0, 0, 0, 0, 0, 0, 1]])
            .lu_identity()
            .unwrap();
        assert_eq!(first.to_string(), "naa.5001020304050607");
    }

    #[test]
    fn same_lu_through_two_ports_compares_equal() {
        let via_a = page(&[NAA5, &[0x51, 0x94, 0x00, 0x04, 0, 0, 0, 1]]);
        let via_b = page(&[&[0x51, 0x94, 0x00, 0x04, 0, 0, 0, 2], NAA5]);
        assert_eq!(via_a.lu_identity(), via_b.lu_identity());
        assert_ne!(via_a.lu_identity(), page(&[EUI8]).lu_identity());
    }

    #[test]
    fn unit_serial_fallback() {
        let serial = UnitSerialNumber {
            serial: "beaf11".into(),
            truncated: false,
        };
        let id = LuIdentity::from_unit_serial(&serial).unwrap();
        assert_eq!(id.kind(), LuIdentityKind::UnitSerial);
        assert_eq!(id.to_string(), "serial.beaf11");
        assert_eq!(
            LuIdentity::from_unit_serial(&UnitSerialNumber {
                serial: String::new(),
                truncated: false
            }),
            None
        );
        assert_eq!(
            LuIdentity::from_unit_serial(&UnitSerialNumber {
                serial: "x".into(),
                truncated: true
            }),
            None
        );
    }
}
