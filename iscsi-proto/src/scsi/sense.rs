//! Sense data (SPC-4 §4.5): fixed format (70h/71h) and descriptor format (72h/73h).
//!
//! Sense data is often cut short (by the target's own limit or a short
//! allocation); like the Linux midlayer, bytes that were not transferred are
//! read as zero, and only the SENSE KEY is required.

use std::fmt;

use super::asc::{AscAscq, asc_ascq};
use super::error::ScsiError;
use super::field::{u8_at, u16_at, u32_at, u64_at};

/// SENSE KEY (SPC-4 table 48). All 16 values are named, so decoding is total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SenseKey {
    /// 0h.
    NoSense,
    /// 1h: completed after recovery action.
    RecoveredError,
    /// 2h.
    NotReady,
    /// 3h.
    MediumError,
    /// 4h.
    HardwareError,
    /// 5h.
    IllegalRequest,
    /// 6h.
    UnitAttention,
    /// 7h.
    DataProtect,
    /// 8h.
    BlankCheck,
    /// 9h.
    VendorSpecific,
    /// Ah.
    CopyAborted,
    /// Bh.
    AbortedCommand,
    /// Ch (obsolete EQUAL).
    Reserved,
    /// Dh.
    VolumeOverflow,
    /// Eh.
    Miscompare,
    /// Fh (SPC-5): the command completed; the sense data is informational.
    Completed,
}

impl SenseKey {
    /// Decodes the low four bits of `code`.
    pub fn from_code(code: u8) -> Self {
        match code & 0x0f {
            0x0 => SenseKey::NoSense,
            0x1 => SenseKey::RecoveredError,
            0x2 => SenseKey::NotReady,
            0x3 => SenseKey::MediumError,
            0x4 => SenseKey::HardwareError,
            0x5 => SenseKey::IllegalRequest,
            0x6 => SenseKey::UnitAttention,
            0x7 => SenseKey::DataProtect,
            0x8 => SenseKey::BlankCheck,
            0x9 => SenseKey::VendorSpecific,
            0xa => SenseKey::CopyAborted,
            0xb => SenseKey::AbortedCommand,
            0xc => SenseKey::Reserved,
            0xd => SenseKey::VolumeOverflow,
            0xe => SenseKey::Miscompare,
            _ => SenseKey::Completed,
        }
    }

    /// The 4-bit code.
    pub fn code(self) -> u8 {
        match self {
            SenseKey::NoSense => 0x0,
            SenseKey::RecoveredError => 0x1,
            SenseKey::NotReady => 0x2,
            SenseKey::MediumError => 0x3,
            SenseKey::HardwareError => 0x4,
            SenseKey::IllegalRequest => 0x5,
            SenseKey::UnitAttention => 0x6,
            SenseKey::DataProtect => 0x7,
            SenseKey::BlankCheck => 0x8,
            SenseKey::VendorSpecific => 0x9,
            SenseKey::CopyAborted => 0xa,
            SenseKey::AbortedCommand => 0xb,
            SenseKey::Reserved => 0xc,
            SenseKey::VolumeOverflow => 0xd,
            SenseKey::Miscompare => 0xe,
            SenseKey::Completed => 0xf,
        }
    }

    /// Upper-case name as written in SPC.
    pub fn name(self) -> &'static str {
        match self {
            SenseKey::NoSense => "NO SENSE",
            SenseKey::RecoveredError => "RECOVERED ERROR",
            SenseKey::NotReady => "NOT READY",
            SenseKey::MediumError => "MEDIUM ERROR",
            SenseKey::HardwareError => "HARDWARE ERROR",
            SenseKey::IllegalRequest => "ILLEGAL REQUEST",
            SenseKey::UnitAttention => "UNIT ATTENTION",
            SenseKey::DataProtect => "DATA PROTECT",
            SenseKey::BlankCheck => "BLANK CHECK",
            SenseKey::VendorSpecific => "VENDOR SPECIFIC",
            SenseKey::CopyAborted => "COPY ABORTED",
            SenseKey::AbortedCommand => "ABORTED COMMAND",
            SenseKey::Reserved => "RESERVED (0Ch)",
            SenseKey::VolumeOverflow => "VOLUME OVERFLOW",
            SenseKey::Miscompare => "MISCOMPARE",
            SenseKey::Completed => "COMPLETED",
        }
    }
}

impl fmt::Display for SenseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// SENSE KEY SPECIFIC field (SPC-4 §4.5.2.4), present only when SKSV is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseKeySpecific {
    /// ILLEGAL REQUEST: which byte (and bit) of the CDB or parameter list is wrong.
    FieldPointer {
        /// C/D: true when the error is in the CDB, false in the parameter data.
        in_cdb: bool,
        /// Bit within the byte, when BPV is set.
        bit: Option<u8>,
        /// Byte offset of the field in error.
        byte: u16,
    },
    /// NO SENSE / NOT READY: progress of an operation, as a fraction of 65536.
    Progress(u16),
    /// RECOVERED / MEDIUM / HARDWARE ERROR: retries the target made.
    ActualRetryCount(u16),
    /// COPY ABORTED: where in the segment descriptor the error is.
    SegmentPointer {
        /// SD: the pointer is relative to the segment descriptor.
        segment_descriptor: bool,
        /// Bit within the byte, when BPV is set.
        bit: Option<u8>,
        /// Byte offset.
        byte: u16,
    },
    /// UNIT ATTENTION: the unit attention condition queue overflowed.
    UnitAttentionQueueOverflow(bool),
    /// Any other sense key: the three bytes as received (SKSV bit included).
    Raw([u8; 3]),
}

impl SenseKeySpecific {
    /// Decodes the three SKS bytes for `key`; `None` when SKSV is clear.
    fn decode(key: SenseKey, sks: [u8; 3]) -> Option<Self> {
        if sks[0] & 0x80 == 0 {
            return None;
        }
        let value = u16::from_be_bytes([sks[1], sks[2]]);
        let bit = (sks[0] & 0x08 != 0).then_some(sks[0] & 0x07);
        Some(match key {
            SenseKey::IllegalRequest => SenseKeySpecific::FieldPointer {
                in_cdb: sks[0] & 0x40 != 0,
                bit,
                byte: value,
            },
            SenseKey::NoSense | SenseKey::NotReady => SenseKeySpecific::Progress(value),
            SenseKey::RecoveredError | SenseKey::MediumError | SenseKey::HardwareError => {
                SenseKeySpecific::ActualRetryCount(value)
            }
            SenseKey::CopyAborted => SenseKeySpecific::SegmentPointer {
                segment_descriptor: sks[0] & 0x20 != 0,
                bit,
                byte: value,
            },
            SenseKey::UnitAttention => {
                SenseKeySpecific::UnitAttentionQueueOverflow(sks[0] & 0x01 != 0)
            }
            _ => SenseKeySpecific::Raw(sks),
        })
    }
}

/// One descriptor of descriptor-format sense data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenseDescriptor {
    /// DESCRIPTOR TYPE (00h information, 01h command-specific, 02h sense key specific, ...).
    pub descriptor_type: u8,
    /// Bytes after the two-byte descriptor header.
    pub data: Vec<u8>,
}

/// Which of the two sense data layouts was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseFormat {
    /// Response codes 70h/71h.
    Fixed,
    /// Response codes 72h/73h.
    Descriptor,
}

/// Parsed sense data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sense {
    /// RESPONSE CODE (70h..73h).
    pub response_code: u8,
    /// Fixed or descriptor layout.
    pub format: SenseFormat,
    /// True for deferred errors (71h/73h): the error belongs to an earlier command.
    pub deferred: bool,
    /// SENSE KEY.
    pub key: SenseKey,
    /// ADDITIONAL SENSE CODE (0 when not transferred).
    pub asc: u8,
    /// ADDITIONAL SENSE CODE QUALIFIER (0 when not transferred).
    pub ascq: u8,
    /// INFORMATION, when marked valid (often the failing LBA).
    pub information: Option<u64>,
    /// COMMAND-SPECIFIC INFORMATION, when transferred.
    pub command_specific: Option<u64>,
    /// SENSE KEY SPECIFIC, when SKSV is set.
    pub sense_key_specific: Option<SenseKeySpecific>,
    /// FIELD REPLACEABLE UNIT CODE, when non-zero.
    pub fru: Option<u8>,
    /// FILEMARK bit (fixed format or stream commands descriptor).
    pub filemark: bool,
    /// EOM bit.
    pub end_of_medium: bool,
    /// ILI bit.
    pub incorrect_length: bool,
    /// Every descriptor of descriptor-format data, in order (empty for fixed format).
    pub descriptors: Vec<SenseDescriptor>,
    /// True when the data ended before the ADDITIONAL SENSE LENGTH said it would.
    pub truncated: bool,
}

const FIXED_HEADER_LEN: usize = 8;

impl Sense {
    /// Parses sense data as found after the iSCSI SenseLength prefix.
    pub fn parse(data: &[u8]) -> Result<Sense, ScsiError> {
        let first = u8_at(data, 0).ok_or(ScsiError::Truncated {
            what: "sense data",
            needed: 1,
            available: 0,
        })?;
        let response_code = first & 0x7f;
        match response_code {
            0x70 | 0x71 => Self::parse_fixed(data, response_code),
            0x72 | 0x73 => Self::parse_descriptor(data, response_code),
            other => Err(ScsiError::UnsupportedSenseFormat(other)),
        }
    }

    /// Parses the data segment of an iSCSI SCSI Response (RFC 7143 §11.4.7):
    /// a 2-byte SenseLength, the sense data, then possibly response data.
    pub fn from_iscsi_segment(segment: &[u8]) -> Result<Sense, ScsiError> {
        if segment.is_empty() {
            return Err(ScsiError::NoSenseData);
        }
        let sense_len = usize::from(u16_at(segment, 0).ok_or(ScsiError::Truncated {
            what: "iSCSI SenseLength",
            needed: 2,
            available: segment.len(),
        })?);
        if sense_len == 0 {
            return Err(ScsiError::NoSenseData);
        }
        let sense = segment.get(2..2 + sense_len).ok_or(ScsiError::Truncated {
            what: "iSCSI sense data",
            needed: 2 + sense_len,
            available: segment.len(),
        })?;
        Self::parse(sense)
    }

    /// Bytes the ADDITIONAL SENSE LENGTH covers, clipped to what arrived.
    fn effective(data: &[u8]) -> (&[u8], bool) {
        match u8_at(data, 7) {
            Some(additional) => {
                let declared = FIXED_HEADER_LEN + usize::from(additional);
                (&data[..declared.min(data.len())], declared > data.len())
            }
            // Not even the 8-byte header arrived.
            None => (data, true),
        }
    }

    fn parse_fixed(data: &[u8], response_code: u8) -> Result<Sense, ScsiError> {
        let flags = u8_at(data, 2).ok_or(ScsiError::Truncated {
            what: "fixed-format sense key",
            needed: 3,
            available: data.len(),
        })?;
        let (data, truncated) = Self::effective(data);
        let key = SenseKey::from_code(flags);
        let valid = data[0] & 0x80 != 0;
        let sks = match (u8_at(data, 15), u8_at(data, 16), u8_at(data, 17)) {
            (Some(a), Some(b), Some(c)) => SenseKeySpecific::decode(key, [a, b, c]),
            _ => None,
        };
        Ok(Sense {
            response_code,
            format: SenseFormat::Fixed,
            deferred: response_code == 0x71,
            key,
            asc: u8_at(data, 12).unwrap_or(0),
            ascq: u8_at(data, 13).unwrap_or(0),
            information: if valid {
                u32_at(data, 3).map(u64::from)
            } else {
                None
            },
            command_specific: u32_at(data, 8).map(u64::from),
            sense_key_specific: sks,
            fru: u8_at(data, 14).filter(|&fru| fru != 0),
            filemark: flags & 0x80 != 0,
            end_of_medium: flags & 0x40 != 0,
            incorrect_length: flags & 0x20 != 0,
            descriptors: Vec::new(),
            truncated,
        })
    }

    fn parse_descriptor(data: &[u8], response_code: u8) -> Result<Sense, ScsiError> {
        let key_byte = u8_at(data, 1).ok_or(ScsiError::Truncated {
            what: "descriptor-format sense key",
            needed: 2,
            available: data.len(),
        })?;
        let (data, mut truncated) = Self::effective(data);
        let mut sense = Sense {
            response_code,
            format: SenseFormat::Descriptor,
            deferred: response_code == 0x73,
            key: SenseKey::from_code(key_byte),
            asc: u8_at(data, 2).unwrap_or(0),
            ascq: u8_at(data, 3).unwrap_or(0),
            information: None,
            command_specific: None,
            sense_key_specific: None,
            fru: None,
            filemark: false,
            end_of_medium: false,
            incorrect_length: false,
            descriptors: Vec::new(),
            truncated: false,
        };
        let mut offset = FIXED_HEADER_LEN;
        while offset < data.len() {
            let (Some(descriptor_type), Some(len)) = (u8_at(data, offset), u8_at(data, offset + 1))
            else {
                truncated = true;
                break;
            };
            let start = offset + 2;
            let end = start + usize::from(len);
            let Some(body) = data.get(start..end) else {
                truncated = true;
                break;
            };
            sense.apply_descriptor(descriptor_type, body);
            sense.descriptors.push(SenseDescriptor {
                descriptor_type,
                data: body.to_vec(),
            });
            offset = end;
        }
        sense.truncated = truncated;
        Ok(sense)
    }

    /// Lifts the well-known descriptors into the common fields.
    /// `body` starts at byte 2 of the descriptor.
    fn apply_descriptor(&mut self, descriptor_type: u8, body: &[u8]) {
        match descriptor_type {
            0x00 if body.first().is_some_and(|b| b & 0x80 != 0) => {
                self.information = u64_at(body, 2);
            }
            0x01 => self.command_specific = u64_at(body, 2),
            0x02 => {
                if let (Some(a), Some(b), Some(c)) =
                    (u8_at(body, 2), u8_at(body, 3), u8_at(body, 4))
                {
                    self.sense_key_specific = SenseKeySpecific::decode(self.key, [a, b, c]);
                }
            }
            0x03 => self.fru = u8_at(body, 1).filter(|&fru| fru != 0),
            // Stream commands: FILEMARK, EOM, ILI in byte 3 of the descriptor.
            0x04 => {
                let flags = u8_at(body, 1).unwrap_or(0);
                self.filemark = flags & 0x80 != 0;
                self.end_of_medium = flags & 0x40 != 0;
                self.incorrect_length = flags & 0x20 != 0;
            }
            // Block commands: ILI in byte 3.
            0x05 => self.incorrect_length = u8_at(body, 1).unwrap_or(0) & 0x20 != 0,
            _ => {}
        }
    }

    /// The ASC/ASCQ pair, printable.
    pub fn asc_ascq(&self) -> AscAscq {
        asc_ascq(self.asc, self.ascq)
    }

    /// True for current errors (70h/72h): the error belongs to this command.
    pub fn is_current(&self) -> bool {
        !self.deferred
    }

    /// True for deferred errors (71h/73h).
    pub fn is_deferred(&self) -> bool {
        self.deferred
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deferred {
            f.write_str("deferred ")?;
        }
        write!(f, "{}, ASC/ASCQ {}", self.key, self.asc_ascq())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scsi::tgtd_vectors;

    #[test]
    fn tgtd_unit_attention_after_login() {
        // The first TEST UNIT READY of every libiscsi session to tgtd.
        let sense = Sense::from_iscsi_segment(tgtd_vectors::SENSE_UA_POWER_ON).unwrap();
        assert_eq!(sense.response_code, 0x70);
        assert_eq!(sense.format, SenseFormat::Fixed);
        assert!(sense.is_current());
        assert_eq!(sense.key, SenseKey::UnitAttention);
        assert_eq!((sense.asc, sense.ascq), (0x29, 0x00));
        assert_eq!(sense.information, None);
        assert_eq!(sense.command_specific, Some(0));
        assert_eq!(sense.sense_key_specific, None);
        assert!(!sense.truncated);
        assert_eq!(
            sense.to_string(),
            "UNIT ATTENTION, ASC/ASCQ 29/00 (power on, reset, or bus device reset occurred)"
        );
    }

    #[test]
    fn tgtd_invalid_field_in_cdb() {
        // INQUIRY for the unsupported VPD page C5h.
        let sense = Sense::from_iscsi_segment(tgtd_vectors::SENSE_INVALID_FIELD_IN_CDB).unwrap();
        assert_eq!(sense.key, SenseKey::IllegalRequest);
        assert_eq!(sense.asc_ascq().to_string(), "24/00 (invalid field in CDB)");
    }

    #[test]
    fn fixed_format_all_fields() {
        // SPC-4 table 49: VALID, deferred, ILI, key MEDIUM ERROR, INFORMATION,
        // COMMAND-SPECIFIC, 11/00, FRU 5, SKSV + actual retry count 0x0102.
        let data = [
            0xf1, 0x00, 0x23, 0x00, 0x12, 0x34, 0x56, 0x0a, 0xde, 0xad, 0xbe, 0xef, 0x11, 0x00,
            0x05, 0x80, 0x01, 0x02,
        ];
        let sense = Sense::parse(&data).unwrap();
        assert_eq!(sense.response_code, 0x71);
        assert!(sense.is_deferred());
        assert_eq!(sense.key, SenseKey::MediumError);
        assert!(sense.incorrect_length && !sense.filemark && !sense.end_of_medium);
        assert_eq!(sense.information, Some(0x0012_3456));
        assert_eq!(sense.command_specific, Some(0xdead_beef));
        assert_eq!(sense.fru, Some(5));
        assert_eq!(
            sense.sense_key_specific,
            Some(SenseKeySpecific::ActualRetryCount(0x0102))
        );
        assert_eq!(
            sense.to_string(),
            "deferred MEDIUM ERROR, ASC/ASCQ 11/00 (unrecovered read error)"
        );
    }

    #[test]
    fn fixed_format_field_pointer() {
        // ILLEGAL REQUEST, 24/00, SKSV | C/D | BPV | bit 3, field byte 2.
        let data = [
            0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0xcb, 0x00, 0x02,
        ];
        let sense = Sense::parse(&data).unwrap();
        assert_eq!(
            sense.sense_key_specific,
            Some(SenseKeySpecific::FieldPointer {
                in_cdb: true,
                bit: Some(3),
                byte: 2
            })
        );
    }

    #[test]
    fn short_fixed_sense_reads_missing_bytes_as_zero() {
        let sense = Sense::parse(&[0x70, 0x00, 0x02]).unwrap();
        assert_eq!(sense.key, SenseKey::NotReady);
        assert!(sense.truncated);
        assert_eq!((sense.asc, sense.ascq), (0, 0));
        assert_eq!(sense.command_specific, None);
        // ADDITIONAL SENSE LENGTH promises 10 bytes; only 14 of 18 arrived.
        let cut = [0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x04, 0x0a];
        let sense = Sense::parse(&cut).unwrap();
        assert!(sense.truncated);
        assert_eq!((sense.asc, sense.ascq), (0x04, 0x0a));
        assert_eq!(sense.sense_key_specific, None);
    }

    #[test]
    fn additional_length_bounds_the_fields() {
        // ADDITIONAL SENSE LENGTH 4 stops before ASC: trailing garbage is ignored.
        let data = [
            0x70, 0, 0x06, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0,
        ];
        let sense = Sense::parse(&data).unwrap();
        assert_eq!((sense.asc, sense.ascq), (0, 0));
        assert_eq!(sense.command_specific, Some(0));
    }

    #[test]
    fn descriptor_format_with_information_sks_and_fru() {
        // SPC-4 §4.5.2: header, then information (00h), command-specific (01h),
        // sense key specific (02h: progress 0x8000), FRU (03h), and a vendor one (80h).
        let data = [
            0x72, 0x02, 0x04, 0x01, 0, 0, 0, 40, //
            0x00, 0x0a, 0x80, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, //
            0x01, 0x0a, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 9, //
            0x02, 0x06, 0x00, 0x00, 0x80, 0x80, 0x00, 0x00, //
            0x03, 0x02, 0x00, 0x07, //
            0x80, 0x02, 0xaa, 0xbb,
        ];
        let sense = Sense::parse(&data).unwrap();
        assert_eq!(sense.format, SenseFormat::Descriptor);
        assert_eq!(sense.key, SenseKey::NotReady);
        assert_eq!((sense.asc, sense.ascq), (0x04, 0x01));
        assert_eq!(sense.information, Some(0x0102_0304_0506_0708));
        assert_eq!(sense.command_specific, Some(9));
        assert_eq!(
            sense.sense_key_specific,
            Some(SenseKeySpecific::Progress(0x8000))
        );
        assert_eq!(sense.fru, Some(7));
        assert_eq!(sense.descriptors.len(), 5);
        assert_eq!(
            sense.descriptors[4],
            SenseDescriptor {
                descriptor_type: 0x80,
                data: vec![0xaa, 0xbb]
            }
        );
        assert!(!sense.truncated);
    }

    #[test]
    fn descriptor_format_truncated_descriptor_is_dropped() {
        // Deferred, ALUA transition; the block commands descriptor (05h) is complete,
        // the information descriptor after it is cut off.
        let data = [
            0x73, 0x02, 0x04, 0x0a, 0, 0, 0, 16, //
            0x05, 0x02, 0x00, 0x20, //
            0x00, 0x0a, 0x80, 0x00, 1, 2,
        ];
        let sense = Sense::parse(&data).unwrap();
        assert!(sense.is_deferred());
        assert!(sense.incorrect_length);
        assert_eq!(sense.information, None);
        assert_eq!(sense.descriptors.len(), 1);
        assert!(sense.truncated);
        assert_eq!(
            sense.to_string(),
            "deferred NOT READY, ASC/ASCQ 04/0a (logical unit not accessible, asymmetric access state transition)"
        );
    }

    #[test]
    fn information_descriptor_without_valid_bit_is_ignored() {
        let data = [
            0x72, 0x03, 0x11, 0x00, 0, 0, 0, 12, 0x00, 0x0a, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        assert_eq!(Sense::parse(&data).unwrap().information, None);
    }

    #[test]
    fn rejects_what_is_not_sense_data() {
        assert!(matches!(
            Sense::parse(&[]),
            Err(ScsiError::Truncated { .. })
        ));
        assert_eq!(
            Sense::parse(&[0x7f, 0, 0]),
            Err(ScsiError::UnsupportedSenseFormat(0x7f))
        );
        assert_eq!(
            Sense::parse(&[0x00]),
            Err(ScsiError::UnsupportedSenseFormat(0x00))
        );
        assert!(matches!(
            Sense::parse(&[0x70, 0]),
            Err(ScsiError::Truncated { needed: 3, .. })
        ));
        assert!(matches!(
            Sense::parse(&[0x72]),
            Err(ScsiError::Truncated { needed: 2, .. })
        ));
    }

    #[test]
    fn iscsi_segment_framing() {
        assert_eq!(Sense::from_iscsi_segment(&[]), Err(ScsiError::NoSenseData));
        assert_eq!(
            Sense::from_iscsi_segment(&[0, 0, 0x70]),
            Err(ScsiError::NoSenseData)
        );
        assert!(matches!(
            Sense::from_iscsi_segment(&[0]),
            Err(ScsiError::Truncated { .. })
        ));
        assert_eq!(
            Sense::from_iscsi_segment(&[0, 18, 0x70, 0, 6]),
            Err(ScsiError::Truncated {
                what: "iSCSI sense data",
                needed: 20,
                available: 5
            })
        );
        // Response data after the sense data is not part of it.
        let sense = Sense::from_iscsi_segment(&[0, 3, 0x70, 0, 0x0b, 0xff, 0xff]).unwrap();
        assert_eq!(sense.key, SenseKey::AbortedCommand);
    }

    #[test]
    fn sense_keys_round_trip() {
        for code in 0..16u8 {
            assert_eq!(SenseKey::from_code(code).code(), code);
        }
        assert_eq!(SenseKey::from_code(0xf6), SenseKey::UnitAttention);
        assert_eq!(SenseKey::AbortedCommand.to_string(), "ABORTED COMMAND");
    }

    #[test]
    fn sense_key_specific_variants() {
        let decode = SenseKeySpecific::decode;
        assert_eq!(decode(SenseKey::NotReady, [0x00, 0x12, 0x34]), None);
        assert_eq!(
            decode(SenseKey::CopyAborted, [0xa9, 0x00, 0x10]),
            Some(SenseKeySpecific::SegmentPointer {
                segment_descriptor: true,
                bit: Some(1),
                byte: 0x10
            })
        );
        assert_eq!(
            decode(SenseKey::UnitAttention, [0x81, 0, 0]),
            Some(SenseKeySpecific::UnitAttentionQueueOverflow(true))
        );
        assert_eq!(
            decode(SenseKey::IllegalRequest, [0x80, 0x00, 0x07]),
            Some(SenseKeySpecific::FieldPointer {
                in_cdb: false,
                bit: None,
                byte: 7
            })
        );
        assert_eq!(
            decode(SenseKey::DataProtect, [0x80, 1, 2]),
            Some(SenseKeySpecific::Raw([0x80, 1, 2]))
        );
    }
}
