//! Text continued over several PDUs (the C bit, RFC 7143 §11.10.2 and
//! §11.12.2): reassembly on receive, splitting on send.

use std::fmt;

use super::error::TextError;
use super::pairs::{KeyValue, TextLimits, parse_pairs};

/// Joins the data segments of a Login or Text sequence whose PDUs carry the
/// C (continue) bit, and parses the text once the last one arrives.
///
/// A key=value pair may be split anywhere, even inside a UTF-8 character.
/// The total is bounded by [`TextLimits::max_bytes`]: a peer that keeps
/// setting C cannot make us buffer without limit.
pub struct TextAssembler {
    buffer: Vec<u8>,
    limits: TextLimits,
}

impl TextAssembler {
    /// An empty assembler enforcing `limits`.
    pub fn new(limits: TextLimits) -> Self {
        Self {
            buffer: Vec::new(),
            limits,
        }
    }

    /// Adds one PDU's data segment (without padding). `continues` is the
    /// PDU's C bit. Returns the parsed pairs when the sequence is complete
    /// (C clear), `None` while more segments are expected.
    ///
    /// After an error the assembler is empty and ready for a new sequence.
    pub fn push(
        &mut self,
        segment: &[u8],
        continues: bool,
    ) -> Result<Option<Vec<KeyValue>>, TextError> {
        let total = self.buffer.len().saturating_add(segment.len());
        if total > self.limits.max_bytes {
            self.reset();
            return Err(TextError::TooLong {
                len: total,
                limit: self.limits.max_bytes,
            });
        }
        self.buffer.extend_from_slice(segment);
        if continues {
            return Ok(None);
        }
        let text = std::mem::take(&mut self.buffer);
        parse_pairs(&text, self.limits).map(Some)
    }

    /// Drops any partial sequence.
    pub fn reset(&mut self) {
        self.buffer = Vec::new();
    }

    /// Bytes buffered from segments that had C set.
    pub fn buffered_len(&self) -> usize {
        self.buffer.len()
    }

    /// Whether a continued sequence is in progress.
    pub fn is_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

/// Splits encoded text into data segments of at most `max_segment_len`
/// bytes (the peer's MaxRecvDataSegmentLength), for sending over several
/// PDUs. Each item is `(segment, continues)`: set the C bit on the PDU when
/// `continues` is true (all but the last).
///
/// Empty text yields one empty segment, since a PDU is still sent. A
/// `max_segment_len` of 0 is treated as 1 so the split always progresses.
pub fn split_segments(text: &[u8], max_segment_len: usize) -> SegmentSplitter<'_> {
    SegmentSplitter {
        rest: text,
        max: max_segment_len.max(1),
        done: false,
    }
}

/// Iterator returned by [`split_segments`].
#[derive(Clone)]
pub struct SegmentSplitter<'a> {
    rest: &'a [u8],
    max: usize,
    done: bool,
}

impl<'a> Iterator for SegmentSplitter<'a> {
    type Item = (&'a [u8], bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let take = self.rest.len().min(self.max);
        let (segment, rest) = self.rest.split_at(take);
        self.rest = rest;
        let continues = !rest.is_empty();
        self.done = !continues;
        Some((segment, continues))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.done {
            0
        } else {
            self.rest.len().div_ceil(self.max).max(1)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for SegmentSplitter<'_> {}

// The buffered text may hold CHAP values: Debug shows sizes only.
impl fmt::Debug for TextAssembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextAssembler")
            .field("buffered_len", &self.buffer.len())
            .field("limits", &self.limits)
            .finish()
    }
}

impl fmt::Debug for SegmentSplitter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentSplitter")
            .field("remaining_len", &self.rest.len())
            .field("max", &self.max)
            .field("done", &self.done)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::pairs::encode_pairs;
    use proptest::prelude::*;

    fn sample() -> Vec<KeyValue> {
        vec![
            KeyValue::new("TargetName", "iqn.2024-01.test:text"),
            KeyValue::new("TargetAddress", "127.0.0.61:3261,1"),
            KeyValue::new("TargetAlias", "Dïsk ünicode"),
        ]
    }

    #[test]
    fn pair_split_across_pdus() {
        let mut asm = TextAssembler::new(TextLimits::DEFAULT);
        assert_eq!(asm.push(b"TargetName=iqn.20", true), Ok(None));
        assert!(asm.is_partial());
        assert_eq!(asm.push(b"24-01.test:text\0Target", true), Ok(None));
        let pairs = asm
            .push(b"Address=127.0.0.61:3261,1\0", false)
            .expect("valid")
            .expect("complete");
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[1].value, "127.0.0.61:3261,1");
        assert_eq!(asm.buffered_len(), 0);
    }

    #[test]
    fn single_pdu_sequence() {
        let mut asm = TextAssembler::new(TextLimits::DEFAULT);
        let pairs = asm.push(b"A=1\0", false).expect("valid").expect("complete");
        assert_eq!(pairs, vec![KeyValue::new("A", "1")]);
    }

    #[test]
    fn endless_continuation_is_bounded() {
        let limits = TextLimits {
            max_bytes: 100,
            max_pairs: 10,
        };
        let mut asm = TextAssembler::new(limits);
        let chunk = [b'a'; 40];
        assert_eq!(asm.push(&chunk, true), Ok(None));
        assert_eq!(asm.push(&chunk, true), Ok(None));
        assert_eq!(
            asm.push(&chunk, true),
            Err(TextError::TooLong {
                len: 120,
                limit: 100
            })
        );
        // The assembler starts over after the error.
        assert_eq!(asm.buffered_len(), 0);
        assert!(asm.push(b"A=1\0", false).is_ok());
    }

    #[test]
    fn last_segment_must_terminate_the_pair() {
        let mut asm = TextAssembler::new(TextLimits::DEFAULT);
        assert_eq!(asm.push(b"A=", true), Ok(None));
        assert!(matches!(
            asm.push(b"1", false),
            Err(TextError::Unterminated { .. })
        ));
        assert!(!asm.is_partial());
    }

    #[test]
    fn splitter_sets_continue_on_all_but_last() {
        let text = encode_pairs(&sample()).expect("valid");
        let parts: Vec<_> = split_segments(&text, 10).collect();
        assert_eq!(parts.len(), text.len().div_ceil(10));
        assert!(parts[..parts.len() - 1].iter().all(|(_, c)| *c));
        assert!(!parts[parts.len() - 1].1);
        assert!(parts.iter().all(|(s, _)| s.len() <= 10));
        assert_eq!(parts.concat_segments(), text);
    }

    #[test]
    fn splitter_edge_cases() {
        let empty: Vec<_> = split_segments(b"", 512).collect();
        assert_eq!(empty, vec![(&b""[..], false)]);
        let exact: Vec<_> = split_segments(b"abcd", 4).collect();
        assert_eq!(exact, vec![(&b"abcd"[..], false)]);
        let zero: Vec<_> = split_segments(b"ab", 0).collect();
        assert_eq!(zero, vec![(&b"a"[..], true), (&b"b"[..], false)]);
        assert_eq!(split_segments(b"abcde", 2).len(), 3);
    }

    trait Concat {
        fn concat_segments(&self) -> Vec<u8>;
    }

    impl Concat for Vec<(&[u8], bool)> {
        fn concat_segments(&self) -> Vec<u8> {
            self.iter().flat_map(|(s, _)| s.iter().copied()).collect()
        }
    }

    proptest! {
        #[test]
        fn any_split_reassembles(
            pairs in proptest::collection::vec(crate::text::pairs::tests::pair_strategy(), 1..12),
            max in 1usize..64,
        ) {
            let text = encode_pairs(&pairs).expect("valid");
            let mut asm = TextAssembler::new(TextLimits::DEFAULT);
            let mut result = None;
            for (segment, continues) in split_segments(&text, max) {
                prop_assert!(result.is_none());
                result = asm.push(segment, continues).expect("valid text");
            }
            prop_assert_eq!(result, Some(pairs));
        }

        #[test]
        fn arbitrary_segments_never_panic(
            segments in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..50), any::<bool>()), 0..10)
        ) {
            let mut asm = TextAssembler::new(TextLimits { max_bytes: 200, max_pairs: 8 });
            for (segment, continues) in segments {
                let _ = asm.push(&segment, continues);
                prop_assert!(asm.buffered_len() <= 200);
            }
        }
    }
}
