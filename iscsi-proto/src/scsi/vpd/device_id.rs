//! VPD page 83h: Device Identification (SPC-4 §7.8.6).

use super::{PAGE_DEVICE_ID, VpdPage};
use crate::scsi::error::ScsiError;
use crate::scsi::field::{ascii_trimmed, hex_string, u16_at};
use crate::scsi::lu_identity::LuIdentity;

const DESCRIPTOR_HEADER_LEN: usize = 4;

/// CODE SET of a designator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeSet {
    /// 1h: binary.
    Binary,
    /// 2h: printable ASCII.
    Ascii,
    /// 3h: UTF-8.
    Utf8,
    /// Reserved values.
    Other(u8),
}

impl CodeSet {
    fn from_code(code: u8) -> Self {
        match code & 0x0f {
            1 => CodeSet::Binary,
            2 => CodeSet::Ascii,
            3 => CodeSet::Utf8,
            other => CodeSet::Other(other),
        }
    }
}

/// ASSOCIATION: what the designator names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Association {
    /// 00b: the logical unit (same on every path to it).
    LogicalUnit,
    /// 01b: the target port the INQUIRY arrived on.
    TargetPort,
    /// 10b: the SCSI target device.
    TargetDevice,
    /// 11b.
    Reserved,
}

impl Association {
    fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Association::LogicalUnit,
            1 => Association::TargetPort,
            2 => Association::TargetDevice,
            _ => Association::Reserved,
        }
    }
}

/// DESIGNATOR TYPE (SPC-4 table 459, SPC-5 adds UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesignatorType {
    /// 0h.
    VendorSpecific,
    /// 1h.
    T10VendorId,
    /// 2h.
    Eui64,
    /// 3h.
    Naa,
    /// 4h.
    RelativeTargetPort,
    /// 5h.
    TargetPortGroup,
    /// 6h.
    LogicalUnitGroup,
    /// 7h.
    Md5LogicalUnitId,
    /// 8h.
    ScsiNameString,
    /// 9h.
    ProtocolSpecificPortId,
    /// Ah.
    Uuid,
    /// Bh..Fh.
    Reserved(u8),
}

impl DesignatorType {
    fn from_code(code: u8) -> Self {
        match code & 0x0f {
            0x0 => DesignatorType::VendorSpecific,
            0x1 => DesignatorType::T10VendorId,
            0x2 => DesignatorType::Eui64,
            0x3 => DesignatorType::Naa,
            0x4 => DesignatorType::RelativeTargetPort,
            0x5 => DesignatorType::TargetPortGroup,
            0x6 => DesignatorType::LogicalUnitGroup,
            0x7 => DesignatorType::Md5LogicalUnitId,
            0x8 => DesignatorType::ScsiNameString,
            0x9 => DesignatorType::ProtocolSpecificPortId,
            0xa => DesignatorType::Uuid,
            other => DesignatorType::Reserved(other),
        }
    }
}

/// A designator decoded according to its type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Designator {
    /// Vendor-specific bytes.
    VendorSpecific(Vec<u8>),
    /// T10 vendor ID based: 8-byte vendor ID plus vendor-specific identifier.
    T10VendorId {
        /// T10 VENDOR IDENTIFICATION, trimmed.
        vendor: String,
        /// VENDOR SPECIFIC IDENTIFIER as sent.
        specific: Vec<u8>,
    },
    /// EUI-64 based (8, 12 or 16 bytes).
    Eui64(Vec<u8>),
    /// NAA (8 or 16 bytes; the top nibble is the NAA type).
    Naa(Vec<u8>),
    /// Relative target port identifier.
    RelativeTargetPort(u16),
    /// Target port group.
    TargetPortGroup(u16),
    /// Logical unit group.
    LogicalUnitGroup(u16),
    /// MD5 logical unit identifier (16 bytes).
    Md5(Vec<u8>),
    /// SCSI name string, without its NUL terminator and padding.
    ScsiNameString(String),
    /// Protocol-specific port identifier.
    ProtocolSpecificPortId(Vec<u8>),
    /// UUID designator (SPC-5), bytes as sent.
    Uuid(Vec<u8>),
    /// Reserved type, or a length the type does not allow.
    Unrecognized {
        /// DESIGNATOR TYPE code.
        designator_type: u8,
        /// The designator bytes.
        bytes: Vec<u8>,
    },
}

impl Designator {
    fn decode(designator_type: DesignatorType, type_code: u8, bytes: &[u8]) -> Self {
        let unrecognized = || Designator::Unrecognized {
            designator_type: type_code,
            bytes: bytes.to_vec(),
        };
        // The three 4-byte designators keep their value in bytes 2..4.
        let port_value = || {
            if bytes.len() == 4 {
                u16_at(bytes, 2)
            } else {
                None
            }
        };
        match designator_type {
            DesignatorType::VendorSpecific => Designator::VendorSpecific(bytes.to_vec()),
            DesignatorType::T10VendorId if bytes.len() >= 8 => Designator::T10VendorId {
                vendor: ascii_trimmed(&bytes[..8]),
                specific: bytes[8..].to_vec(),
            },
            DesignatorType::Eui64 if matches!(bytes.len(), 8 | 12 | 16) => {
                Designator::Eui64(bytes.to_vec())
            }
            DesignatorType::Naa if matches!(bytes.len(), 8 | 16) => Designator::Naa(bytes.to_vec()),
            DesignatorType::RelativeTargetPort => {
                port_value().map_or_else(unrecognized, Designator::RelativeTargetPort)
            }
            DesignatorType::TargetPortGroup => {
                port_value().map_or_else(unrecognized, Designator::TargetPortGroup)
            }
            DesignatorType::LogicalUnitGroup => {
                port_value().map_or_else(unrecognized, Designator::LogicalUnitGroup)
            }
            DesignatorType::Md5LogicalUnitId if bytes.len() == 16 => {
                Designator::Md5(bytes.to_vec())
            }
            DesignatorType::ScsiNameString => {
                let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
                Designator::ScsiNameString(String::from_utf8_lossy(text).into_owned())
            }
            DesignatorType::ProtocolSpecificPortId => {
                Designator::ProtocolSpecificPortId(bytes.to_vec())
            }
            DesignatorType::Uuid => Designator::Uuid(bytes.to_vec()),
            _ => unrecognized(),
        }
    }

    /// NAA type (top nibble) of an NAA designator.
    pub fn naa_type(&self) -> Option<u8> {
        match self {
            Designator::Naa(bytes) => bytes.first().map(|b| b >> 4),
            _ => None,
        }
    }

    /// Hex digits of an NAA or EUI-64 designator, e.g. `60000000...0001`.
    pub fn hex(&self) -> Option<String> {
        match self {
            Designator::Naa(bytes) | Designator::Eui64(bytes) => Some(hex_string(bytes)),
            _ => None,
        }
    }

    /// World wide name: `naa.<hex>` and `eui.<hex>` as Linux prints them,
    /// `t10.<vendor> <id>` (trimmed), or the SCSI name string itself.
    pub fn wwid(&self) -> Option<String> {
        match self {
            Designator::Naa(bytes) => Some(format!("naa.{}", hex_string(bytes))),
            Designator::Eui64(bytes) => Some(format!("eui.{}", hex_string(bytes))),
            Designator::T10VendorId { vendor, specific } => {
                Some(format!("t10.{vendor} {}", ascii_trimmed(specific)))
            }
            Designator::ScsiNameString(name) => Some(name.clone()),
            _ => None,
        }
    }
}

/// One designation descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesignationDescriptor {
    /// PROTOCOL IDENTIFIER field as sent (5h = iSCSI); see [`Self::protocol_identifier`].
    pub protocol_identifier_field: u8,
    /// PIV: the protocol identifier field is valid.
    pub piv: bool,
    /// CODE SET.
    pub code_set: CodeSet,
    /// ASSOCIATION.
    pub association: Association,
    /// DESIGNATOR TYPE.
    pub designator_type: DesignatorType,
    /// The designator bytes as sent.
    pub raw: Vec<u8>,
    /// The designator, decoded.
    pub designator: Designator,
}

impl DesignationDescriptor {
    /// Protocol identifier, when SPC says it is meaningful: PIV set and the
    /// designator names a target port or target device.
    pub fn protocol_identifier(&self) -> Option<u8> {
        let applies = matches!(
            self.association,
            Association::TargetPort | Association::TargetDevice
        );
        (self.piv && applies).then_some(self.protocol_identifier_field)
    }
}

/// Parsed Device Identification page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentification {
    /// Every complete designation descriptor, in page order.
    pub descriptors: Vec<DesignationDescriptor>,
    /// True when the page was cut short (a partial descriptor was dropped).
    pub truncated: bool,
}

impl DeviceIdentification {
    /// Parses page 83h; a descriptor cut by the allocation length is dropped.
    pub fn parse(data: &[u8]) -> Result<Self, ScsiError> {
        let page = VpdPage::parse(data, PAGE_DEVICE_ID)?;
        let payload = page.payload;
        let mut descriptors = Vec::new();
        let mut truncated = page.truncated;
        let mut offset = 0;
        while offset < payload.len() {
            let Some(header) = payload.get(offset..offset + DESCRIPTOR_HEADER_LEN) else {
                truncated = true;
                break;
            };
            let start = offset + DESCRIPTOR_HEADER_LEN;
            let end = start + usize::from(header[3]);
            let Some(raw) = payload.get(start..end) else {
                truncated = true;
                break;
            };
            let type_code = header[1] & 0x0f;
            let designator_type = DesignatorType::from_code(type_code);
            descriptors.push(DesignationDescriptor {
                protocol_identifier_field: header[0] >> 4,
                piv: header[1] & 0x80 != 0,
                code_set: CodeSet::from_code(header[0]),
                association: Association::from_bits(header[1] >> 4),
                designator_type,
                raw: raw.to_vec(),
                designator: Designator::decode(designator_type, type_code, raw),
            });
            offset = end;
        }
        Ok(DeviceIdentification {
            descriptors,
            truncated,
        })
    }

    /// Designators whose association is the logical unit.
    pub fn logical_unit_designators(&self) -> impl Iterator<Item = &Designator> {
        self.descriptors
            .iter()
            .filter(|d| d.association == Association::LogicalUnit)
            .map(|d| &d.designator)
    }

    /// Target port group of the port this page came through (ALUA).
    pub fn target_port_group(&self) -> Option<u16> {
        self.port_designators().find_map(|d| match d {
            Designator::TargetPortGroup(group) => Some(*group),
            _ => None,
        })
    }

    /// Relative target port identifier of the port this page came through.
    pub fn relative_target_port(&self) -> Option<u16> {
        self.port_designators().find_map(|d| match d {
            Designator::RelativeTargetPort(port) => Some(*port),
            _ => None,
        })
    }

    /// The best logical unit identity (see [`LuIdentity`]).
    pub fn lu_identity(&self) -> Option<LuIdentity> {
        LuIdentity::from_device_identification(self)
    }

    fn port_designators(&self) -> impl Iterator<Item = &Designator> {
        self.descriptors
            .iter()
            .filter(|d| d.association == Association::TargetPort)
            .map(|d| &d.designator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_designators() {
        let page = DeviceIdentification::parse(tgtd_vectors::VPD_DEVICE_ID).unwrap();
        assert!(!page.truncated);
        assert_eq!(page.descriptors.len(), 3);

        let t10 = &page.descriptors[0];
        assert_eq!(t10.code_set, CodeSet::Ascii);
        assert_eq!(t10.association, Association::LogicalUnit);
        assert_eq!(t10.designator_type, DesignatorType::T10VendorId);
        assert!(!t10.piv);
        assert_eq!(t10.protocol_identifier(), None);
        let Designator::T10VendorId { vendor, specific } = &t10.designator else {
            panic!("not T10: {:?}", t10.designator)
        };
        assert_eq!(vendor, "IET");
        assert_eq!(&specific[..8], b"00010001");
        assert_eq!(specific.len(), 28);
        assert_eq!(t10.designator.wwid().as_deref(), Some("t10.IET 00010001"));

        let naa3 = &page.descriptors[1];
        assert_eq!(naa3.code_set, CodeSet::Binary);
        assert_eq!(
            naa3.designator,
            Designator::Naa(vec![0x30, 0, 0, 0x01, 0, 0, 0, 0x01])
        );
        assert_eq!(naa3.designator.naa_type(), Some(3));
        assert_eq!(naa3.designator.hex().as_deref(), Some("3000000100000001"));

        let naa6 = &page.descriptors[2];
        assert_eq!(naa6.designator.naa_type(), Some(6));
        assert_eq!(
            naa6.designator.wwid().as_deref(),
            Some("naa.60000000000000000e00000000010001")
        );
        assert_eq!(page.logical_unit_designators().count(), 3);
        assert_eq!(page.target_port_group(), None);
    }

    #[test]
    fn tgtd_page_cut_inside_a_descriptor() {
        let page = DeviceIdentification::parse(tgtd_vectors::VPD_DEVICE_ID_ALLOC64).unwrap();
        assert!(page.truncated);
        assert_eq!(page.descriptors.len(), 2);
        assert_eq!(page.descriptors[1].designator.naa_type(), Some(3));
    }

    #[test]
    fn port_designators_and_protocol_identifier() {
        // SPC-4 table 458 layouts: iSCSI (5h) target port designators with PIV set,
        // relative target port 2, target port group 0x0102, an EUI-64 for the LU
        // and a SCSI name string for the target device.
        let mut page = vec![0x00, 0x83, 0x00, 0x00];
        page.extend_from_slice(&[0x51, 0x94, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02]);
        page.extend_from_slice(&[0x51, 0x95, 0x00, 0x04, 0x00, 0x00, 0x01, 0x02]);
        page.extend_from_slice(&[
            0x01, 0x02, 0x00, 0x08, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
        ]);
        page.extend_from_slice(&[0x53, 0xa8, 0x00, 0x08]);
        page.extend_from_slice(b"iqn.x\0\0\0");
        page[3] = (page.len() - 4) as u8;
        let id = DeviceIdentification::parse(&page).unwrap();
        assert_eq!(id.relative_target_port(), Some(2));
        assert_eq!(id.target_port_group(), Some(0x0102));
        assert_eq!(id.descriptors[0].protocol_identifier(), Some(5));
        assert_eq!(id.descriptors[2].protocol_identifier(), None);
        assert_eq!(
            id.descriptors[2].designator.wwid().as_deref(),
            Some("eui.0011223344556677")
        );
        assert_eq!(id.descriptors[3].association, Association::TargetDevice);
        assert_eq!(id.descriptors[3].code_set, CodeSet::Utf8);
        assert_eq!(
            id.descriptors[3].designator,
            Designator::ScsiNameString("iqn.x".into())
        );
        assert_eq!(id.logical_unit_designators().count(), 1);
    }

    #[test]
    fn impossible_lengths_are_unrecognized() {
        // NAA with 5 bytes, relative target port with 2, MD5 with 3, reserved type Fh.
        let page = [
            0x00, 0x83, 0x00, 20, //
            0x01, 0x03, 0x00, 0x05, 0x60, 1, 2, 3, 4, //
            0x01, 0x14, 0x00, 0x02, 0, 1, //
            0x01, 0x0f, 0x00, 0x01, 0xaa,
        ];
        let id = DeviceIdentification::parse(&page).unwrap();
        assert_eq!(
            id.descriptors[0].designator,
            Designator::Unrecognized {
                designator_type: 3,
                bytes: vec![0x60, 1, 2, 3, 4]
            }
        );
        assert!(matches!(
            id.descriptors[1].designator,
            Designator::Unrecognized {
                designator_type: 4,
                ..
            }
        ));
        assert_eq!(
            id.descriptors[2].designator_type,
            DesignatorType::Reserved(0xf)
        );
        assert_eq!(id.relative_target_port(), None);
        assert!(!id.truncated);
    }

    #[test]
    fn half_a_descriptor_header_is_truncation() {
        let id = DeviceIdentification::parse(&[0, 0x83, 0, 2, 0x01, 0x03]).unwrap();
        assert!(id.descriptors.is_empty());
        assert!(id.truncated);
    }
}
