//! PERIPHERAL QUALIFIER and PERIPHERAL DEVICE TYPE: byte 0 of INQUIRY and VPD data.

use std::fmt;

/// PERIPHERAL QUALIFIER (SPC-4 table 140).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeripheralQualifier {
    /// 000b: a device of the indicated type is connected to this logical unit.
    Connected,
    /// 001b: capable of supporting the type, but no device connected right now.
    NotConnected,
    /// 011b: the target cannot support a device on this logical unit.
    NotSupported,
    /// Reserved or vendor-specific values.
    Other(u8),
}

impl PeripheralQualifier {
    /// Decodes the 3-bit field.
    pub fn from_code(code: u8) -> Self {
        match code & 0x07 {
            0 => PeripheralQualifier::Connected,
            1 => PeripheralQualifier::NotConnected,
            3 => PeripheralQualifier::NotSupported,
            other => PeripheralQualifier::Other(other),
        }
    }
}

/// PERIPHERAL DEVICE TYPE (SPC-4 table 141), the types an iSCSI initiator meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// 00h: disk (SBC).
    DirectAccess,
    /// 01h: tape (SSC).
    SequentialAccess,
    /// 05h: CD/DVD (MMC).
    Mmc,
    /// 08h: media changer (SMC).
    MediumChanger,
    /// 0Ch: storage array controller (SCC), e.g. tgtd's LUN 0.
    StorageArrayController,
    /// 0Dh: enclosure services (SES).
    EnclosureServices,
    /// 1Eh: well-known logical unit.
    WellKnownLu,
    /// 1Fh: unknown or no device type.
    Unknown,
    /// Any other code.
    Other(u8),
}

impl DeviceType {
    /// Decodes the 5-bit field.
    pub fn from_code(code: u8) -> Self {
        match code & 0x1f {
            0x00 => DeviceType::DirectAccess,
            0x01 => DeviceType::SequentialAccess,
            0x05 => DeviceType::Mmc,
            0x08 => DeviceType::MediumChanger,
            0x0c => DeviceType::StorageArrayController,
            0x0d => DeviceType::EnclosureServices,
            0x1e => DeviceType::WellKnownLu,
            0x1f => DeviceType::Unknown,
            other => DeviceType::Other(other),
        }
    }

    /// The 5-bit code.
    pub fn code(self) -> u8 {
        match self {
            DeviceType::DirectAccess => 0x00,
            DeviceType::SequentialAccess => 0x01,
            DeviceType::Mmc => 0x05,
            DeviceType::MediumChanger => 0x08,
            DeviceType::StorageArrayController => 0x0c,
            DeviceType::EnclosureServices => 0x0d,
            DeviceType::WellKnownLu => 0x1e,
            DeviceType::Unknown => 0x1f,
            DeviceType::Other(code) => code,
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceType::DirectAccess => f.write_str("direct access"),
            DeviceType::SequentialAccess => f.write_str("sequential access"),
            DeviceType::Mmc => f.write_str("MMC"),
            DeviceType::MediumChanger => f.write_str("medium changer"),
            DeviceType::StorageArrayController => f.write_str("storage array controller"),
            DeviceType::EnclosureServices => f.write_str("enclosure services"),
            DeviceType::WellKnownLu => f.write_str("well-known logical unit"),
            DeviceType::Unknown => f.write_str("unknown"),
            DeviceType::Other(code) => write!(f, "device type {code:#04x}"),
        }
    }
}

/// Splits byte 0 of INQUIRY/VPD data into qualifier and device type.
pub(crate) fn split_peripheral(byte0: u8) -> (PeripheralQualifier, DeviceType) {
    (
        PeripheralQualifier::from_code(byte0 >> 5),
        DeviceType::from_code(byte0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_byte_zero() {
        assert_eq!(
            split_peripheral(0x00),
            (PeripheralQualifier::Connected, DeviceType::DirectAccess)
        );
        assert_eq!(
            split_peripheral(0x0c),
            (
                PeripheralQualifier::Connected,
                DeviceType::StorageArrayController
            )
        );
        // 7Fh: "no device here" as returned for an unmapped LUN.
        assert_eq!(
            split_peripheral(0x7f),
            (PeripheralQualifier::NotSupported, DeviceType::Unknown)
        );
        assert_eq!(
            split_peripheral(0x23),
            (PeripheralQualifier::NotConnected, DeviceType::Other(3))
        );
        assert_eq!(split_peripheral(0xa0).0, PeripheralQualifier::Other(5));
    }

    #[test]
    fn device_type_codes_round_trip() {
        for code in 0..0x20u8 {
            assert_eq!(DeviceType::from_code(code).code(), code);
        }
    }
}
