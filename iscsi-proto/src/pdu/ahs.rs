//! Additional Header Segments (§11.2.2): the extended CDB and the expected
//! bidirectional read length, the two that RFC 7143 defines, both for SCSI Command.

use bytes::{BufMut, BytesMut};

/// AHS type 1: the CDB bytes beyond the 16 that fit in the BHS.
pub(crate) const AHS_EXTENDED_CDB: u8 = 1;
/// AHS type 2: the expected read length of a bidirectional command.
pub(crate) const AHS_BIDI_READ_LENGTH: u8 = 2;

/// The AHS entries of a SCSI Command, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CommandAhs<'a> {
    pub extended_cdb: Option<&'a [u8]>,
    pub bidi_read_length: Option<u32>,
}

/// Parses a whole AHS area. Each entry is AHSLength (2 bytes, counting the
/// type-specific bytes after the reserved byte), AHSType, a reserved/specific
/// byte, then the payload padded to 4 bytes.
pub(crate) fn parse(mut ahs: &[u8]) -> Result<CommandAhs<'_>, &'static str> {
    let mut parsed = CommandAhs::default();
    while !ahs.is_empty() {
        if ahs.len() < 4 {
            return Err("truncated AHS header");
        }
        let len = usize::from(u16::from_be_bytes([ahs[0], ahs[1]]));
        let kind = ahs[2];
        // AHSLength counts the bytes from the specific byte on, minus that byte.
        let body_end = 3 + len;
        let padded_end = (body_end + 3) & !3;
        if padded_end > ahs.len() || len == 0 {
            return Err("AHS length runs past TotalAHSLength");
        }
        let body = &ahs[4..body_end.max(4)];
        match kind {
            AHS_EXTENDED_CDB => {
                if parsed.extended_cdb.is_some() {
                    return Err("two extended CDB AHS");
                }
                parsed.extended_cdb = Some(body);
            }
            AHS_BIDI_READ_LENGTH => {
                if len != 5 || parsed.bidi_read_length.is_some() {
                    return Err("bad expected bidirectional read length AHS");
                }
                parsed.bidi_read_length =
                    Some(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
            }
            _ => return Err("unknown AHS type"),
        }
        ahs = &ahs[padded_end..];
    }
    Ok(parsed)
}

/// Appends one AHS entry with its padding.
pub(crate) fn put(out: &mut BytesMut, kind: u8, body: &[u8]) {
    let len = body.len() + 1;
    out.put_u16(len as u16);
    out.put_u8(kind);
    out.put_u8(0);
    out.put_slice(body);
    let pad = (4 - (body.len() % 4)) % 4;
    out.put_bytes(0, pad);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_cdb_and_bidi_round_trip() {
        let mut out = BytesMut::new();
        put(&mut out, AHS_EXTENDED_CDB, &[1, 2, 3, 4, 5]);
        put(&mut out, AHS_BIDI_READ_LENGTH, &[0, 0, 2, 0]);
        assert_eq!(out.len() % 4, 0);
        let parsed = parse(&out).unwrap();
        assert_eq!(parsed.extended_cdb, Some(&[1u8, 2, 3, 4, 5][..]));
        assert_eq!(parsed.bidi_read_length, Some(512));
    }

    #[test]
    fn golden_bidi_ahs() {
        // §11.3.4.2: AHSLength = 0x0005, AHSType = 2, reserved, 4-byte length.
        let raw = [0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, 0x00];
        assert_eq!(parse(&raw).unwrap().bidi_read_length, Some(0x10000));
    }

    #[test]
    fn hostile_ahs_is_refused() {
        assert!(parse(&[0, 0, 1, 0]).is_err());
        assert!(parse(&[0xff, 0xff, 1, 0, 0, 0, 0, 0]).is_err());
        assert!(parse(&[0, 5, 9, 0, 0, 0, 0, 0]).is_err());
        assert!(parse(&[0, 1]).is_err());
    }
}
