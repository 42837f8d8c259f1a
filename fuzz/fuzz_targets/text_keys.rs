//! Arbitrary bytes into the key=value text parser and the multi-PDU text
//! assembler (RFC 7143 §6, §11.10-11.13: text that may span PDUs with the C bit).
//!
//! Input layout: byte 0 = number of segment cuts K (low 3 bits), bytes 1-2 =
//! the assembler's limit (big-endian u16), then K cut positions (one byte each,
//! taken modulo the text length), then the text.
//!
//! Asserted, beyond "no panic":
//! - text that parses re-encodes to text that parses to the same pairs;
//! - the negotiation engine, in either role and any stage, answers any pairs
//!   with text that encodes;
//! - the assembler fed the text in segments (C set on all but the last) gives
//!   the pairs the parser gives for the whole text, and refuses text longer
//!   than its limit rather than buffering it.

#![no_main]

use iscsi_proto::pdu::Stage;
use iscsi_proto::text::{
    Negotiation, Policy, Role, TextAssembler, TextLimits, encode_pairs, parse_pairs,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_at_checked(3) else {
        return;
    };
    let cuts = usize::from(head[0] & 0x07);
    let limit = usize::from(u16::from_be_bytes([head[1], head[2]]));
    let Some((cut_bytes, text)) = rest.split_at_checked(cuts) else {
        return;
    };

    let unbounded = TextLimits {
        max_bytes: usize::MAX,
        ..TextLimits::DEFAULT
    };
    let whole = parse_pairs(text, unbounded);
    if let Ok(pairs) = &whole {
        let encoded = encode_pairs(pairs).expect("parsed pairs re-encode");
        let reparsed = parse_pairs(&encoded[..], unbounded).expect("encoded pairs parse");
        assert_eq!(&reparsed, pairs, "parse(encode(pairs)) differs");
        // Both roles, every stage: whatever the peer sends, our answers must
        // be sendable text and the outcome computable.
        for role in [Role::Initiator, Role::Target] {
            for stage in [Stage::Security, Stage::Operational, Stage::FullFeature] {
                let mut n = Negotiation::new(role, Policy::new());
                n.set_stage(stage);
                let _ = n.receive(pairs);
                let answers = n.take_outgoing();
                encode_pairs(&answers).expect("our answers encode");
                let _ = n.outcome();
            }
        }
    }

    let mut points: Vec<usize> = cut_bytes
        .iter()
        .map(|&c| usize::from(c) % (text.len() + 1))
        .collect();
    points.push(0);
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    let mut segments: Vec<&[u8]> = points.windows(2).map(|w| &text[w[0]..w[1]]).collect();
    if segments.is_empty() {
        // An empty text is still one (empty) final segment.
        segments.push(text);
    }

    let mut assembler = TextAssembler::new(TextLimits {
        max_bytes: limit,
        ..TextLimits::DEFAULT
    });
    let mut outcome = None;
    for (i, segment) in segments.iter().enumerate() {
        let continues = i + 1 < segments.len();
        match assembler.push(segment, continues) {
            Ok(None) => assert!(continues, "no result after the final segment"),
            Ok(Some(pairs)) => {
                assert!(!continues, "result before the final segment");
                outcome = Some(Ok(pairs));
            }
            Err(e) => {
                outcome = Some(Err(e));
                break;
            }
        }
    }
    if let Some(Ok(pairs)) = outcome {
        assert!(
            text.len() <= limit,
            "assembler kept {} bytes, limit {limit}",
            text.len()
        );
        assert_eq!(
            whole.as_ref().ok(),
            Some(&pairs),
            "assembled text parses differently"
        );
    }
});
