//! Property tests of the PDU codec: every PDU kind, with arbitrary field values,
//! survives encode -> decode unchanged, with and without digests, whole or fed
//! to the streaming decoder in arbitrary pieces, alone or back to back.

use std::collections::HashSet;

use bytes::{BufMut, BytesMut};
use iscsi_proto::codec::{DecodeError, Digests, PduDecoder, PduEncoder};
use iscsi_proto::digest::DIGEST_LEN;
use iscsi_proto::pdu::{BHS_LEN, MAX_DATA_SEGMENT_LEN, Opcode, Pdu, arbitrary};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Generous enough for every generated PDU, far below the 24-bit maximum.
const LIMIT: u32 = 1 << 16;

fn digests() -> impl Strategy<Value = Digests> {
    (any::<bool>(), any::<bool>()).prop_map(|(header, data)| Digests { header, data })
}

fn encode_all(pdus: &[Pdu], digests: Digests) -> BytesMut {
    let enc = PduEncoder::new(digests, LIMIT);
    let mut wire = BytesMut::new();
    for pdu in pdus {
        enc.encode(pdu, &mut wire).expect("generated PDUs encode");
    }
    wire
}

/// The wire size RFC 7143 §11.2 gives for a PDU: BHS, AHS, header digest, data
/// padded to 4 bytes, data digest only when there is data.
fn expected_wire_len(pdu: &Pdu, digests: Digests) -> usize {
    let ahs = match pdu {
        Pdu::ScsiCommand(c) => {
            let ext = if c.cdb.len() > 16 {
                4 + (c.cdb.len() - 16).div_ceil(4) * 4
            } else {
                0
            };
            ext + if c.bidi_read_length.is_some() { 8 } else { 0 }
        }
        _ => 0,
    };
    let data = pdu.data().len();
    BHS_LEN
        + ahs
        + if digests.header { DIGEST_LEN } else { 0 }
        + data.div_ceil(4) * 4
        + if digests.data && data > 0 {
            DIGEST_LEN
        } else {
            0
        }
}

/// Feeds `wire` to a fresh decoder in the pieces `cuts` describe and collects
/// every PDU; panics on a decode error.
fn decode_in_pieces(wire: &[u8], cuts: &[Index], digests: Digests) -> (Vec<Pdu>, BytesMut) {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    let mut dec = PduDecoder::new(digests, LIMIT);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in points.windows(2) {
        buf.put_slice(&wire[piece[0]..piece[1]]);
        while let Some(pdu) = dec.decode(&mut buf).expect("valid stream decodes") {
            out.push(pdu);
        }
    }
    (out, buf)
}

fn check_round_trip(pdu: Pdu, digests: Digests) -> Result<(), TestCaseError> {
    let wire = encode_all(std::slice::from_ref(&pdu), digests);
    prop_assert_eq!(wire.len(), expected_wire_len(&pdu, digests));
    prop_assert_eq!(wire[0] & 0x3f, pdu.opcode().code());
    prop_assert_eq!(u32::from(wire[4]) * 4, {
        let ahs = expected_wire_len(&pdu, Digests::default())
            - BHS_LEN
            - pdu.data().len().div_ceil(4) * 4;
        ahs as u32
    });
    let data_len = u32::from_be_bytes([0, wire[5], wire[6], wire[7]]);
    prop_assert_eq!(data_len as usize, pdu.data().len());

    // The vectored form is the same bytes.
    let vectored = PduEncoder::new(digests, LIMIT)
        .encode_vectored(&pdu)
        .expect("encodes");
    prop_assert_eq!(vectored.chunks().concat(), wire.to_vec());

    // Whole.
    let mut buf = wire.clone();
    let decoded = PduDecoder::new(digests, LIMIT).decode(&mut buf);
    prop_assert_eq!(decoded, Ok(Some(pdu.clone())));
    prop_assert!(buf.is_empty());

    // Every strict prefix is "need more bytes" and consumes nothing.
    for cut in [1, BHS_LEN - 1, BHS_LEN, wire.len() - 1] {
        if cut < wire.len() {
            let mut partial = BytesMut::from(&wire[..cut]);
            let r = PduDecoder::new(digests, LIMIT).decode(&mut partial);
            prop_assert_eq!(r, Ok(None));
            prop_assert_eq!(partial.len(), cut);
        }
    }
    Ok(())
}

macro_rules! round_trip_each_kind {
    ($($test:ident => $strategy:expr),* $(,)?) => {
        proptest! {
            $(
                #[test]
                fn $test(p in $strategy, digests in digests()) {
                    check_round_trip(Pdu::from(p), digests)?;
                }
            )*
        }
    };
}

round_trip_each_kind! {
    nop_out_round_trips => arbitrary::nop_out(),
    scsi_command_round_trips => arbitrary::scsi_command(),
    task_mgmt_request_round_trips => arbitrary::task_mgmt_request(),
    login_request_round_trips => arbitrary::login_request(),
    text_request_round_trips => arbitrary::text_request(),
    data_out_round_trips => arbitrary::data_out(),
    logout_request_round_trips => arbitrary::logout_request(),
    snack_request_round_trips => arbitrary::snack_request(),
    nop_in_round_trips => arbitrary::nop_in(),
    scsi_response_round_trips => arbitrary::scsi_response(),
    task_mgmt_response_round_trips => arbitrary::task_mgmt_response(),
    login_response_round_trips => arbitrary::login_response(),
    text_response_round_trips => arbitrary::text_response(),
    data_in_round_trips => arbitrary::data_in(),
    logout_response_round_trips => arbitrary::logout_response(),
    r2t_round_trips => arbitrary::r2t(),
    async_message_round_trips => arbitrary::async_message(),
    reject_round_trips => arbitrary::reject(),
}

proptest! {
    /// Several PDUs of mixed kinds back to back, cut at arbitrary points: the
    /// streaming decoder yields exactly the PDUs sent and leaves nothing behind.
    #[test]
    fn stream_split_anywhere(
        pdus in vec(arbitrary::pdu(), 1..8),
        digests in digests(),
        cuts in vec(any::<Index>(), 0..24),
    ) {
        let wire = encode_all(&pdus, digests);
        let (decoded, rest) = decode_in_pieces(&wire, &cuts, digests);
        prop_assert_eq!(decoded, pdus);
        prop_assert!(rest.is_empty());
    }

    /// The same stream fed one byte at a time.
    #[test]
    fn stream_byte_at_a_time(
        pdus in vec(arbitrary::pdu(), 1..4),
        digests in digests(),
    ) {
        let wire = encode_all(&pdus, digests);
        let mut dec = PduDecoder::new(digests, LIMIT);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for &byte in wire.iter() {
            buf.put_u8(byte);
            while let Some(p) = dec.decode(&mut buf).expect("valid stream decodes") {
                decoded.push(p);
            }
        }
        prop_assert_eq!(decoded, pdus);
        prop_assert!(buf.is_empty());
    }

    /// Any flipped bit in a digest-protected PDU is caught: by the header
    /// digest in the header, by the data digest in the data segment and its
    /// padding. A flip never yields a PDU.
    #[test]
    fn digests_catch_any_flipped_bit(pdu in arbitrary::pdu(), at in any::<Index>(), bit in 0u8..8) {
        let all = Digests { header: true, data: true };
        let wire = encode_all(std::slice::from_ref(&pdu), all);
        let data_len = pdu.data().len();
        let header_len =
            wire.len() - data_len.div_ceil(4) * 4 - if data_len > 0 { DIGEST_LEN } else { 0 };
        let mut bad = wire.clone();
        let i = at.index(bad.len());
        bad[i] ^= 1 << bit;
        let r = PduDecoder::new(all, LIMIT).decode(&mut bad);
        if i == 4 {
            // TotalAHSLength moves the header digest: either it is looked for
            // past the bytes we have (wait for more) or it mismatches.
            prop_assert!(matches!(r, Ok(None) | Err(DecodeError::HeaderDigest { .. })), "{:?}", r);
        } else if i < header_len {
            prop_assert!(matches!(r, Err(DecodeError::HeaderDigest { .. })), "{:?}", r);
        } else {
            prop_assert!(matches!(r, Err(DecodeError::DataDigest { .. })), "{:?}", r);
        }
    }

    /// Arbitrary bytes never panic the decoder, and it never consumes bytes
    /// without producing a PDU.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..4096), digests in digests()) {
        let mut dec = PduDecoder::new(digests, 4096);
        let mut buf = BytesMut::from(&bytes[..]);
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(_)) => prop_assert!(buf.len() < before),
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Err(_) => break,
            }
        }
        prop_assert!(buf.capacity() <= bytes.len().max(dec.max_frame_len()) * 2);
    }
}

/// The shared strategy reaches all 18 kinds (a missing arm would silently
/// shrink the stream tests' coverage).
#[test]
fn strategy_generates_every_kind() {
    let mut runner = TestRunner::deterministic();
    let strategy = arbitrary::pdu();
    let mut seen = HashSet::new();
    for _ in 0..2000 {
        let pdu = strategy.new_tree(&mut runner).expect("tree").current();
        seen.insert(pdu.opcode().code());
    }
    let all: HashSet<u8> = Opcode::ALL.iter().map(|o| o.code()).collect();
    assert_eq!(seen, all);
}

/// The encoder refuses what the decoder would refuse: a data segment beyond
/// the peer's limit or the 24-bit field. (An oversized or empty CDB cannot be
/// built: `Cdb` refuses it.)
#[test]
fn encoder_limits() {
    let mut runner = TestRunner::deterministic();
    assert!(iscsi_proto::scsi::Cdb::from_slice(&[0x7f; 261]).is_err());
    assert!(iscsi_proto::scsi::Cdb::from_slice(&[]).is_err());
    let mut nop = arbitrary::nop_out()
        .new_tree(&mut runner)
        .expect("tree")
        .current();
    nop.data = bytes::Bytes::from(vec![0; MAX_DATA_SEGMENT_LEN + 1]);
    assert!(
        PduEncoder::new(Digests::default(), u32::MAX)
            .encode_vectored(&Pdu::from(nop))
            .is_err()
    );
}
