//! Connections that log in fine and then fail the same way every time.
//!
//! A session whose two sides understand the connection differently (digests
//! one side frames and the other does not expect, a key each side read its
//! own way) logs in, sends its commands, and loses the connection to the
//! same protocol error or ping timeout before any command completes; the
//! commands are replayed on the next connection and the loop starts again,
//! until the replacement timeout fails them with a message that hides why.
//! [`LossStreak`] counts such losses, so the driver can stop and say so.

use crate::core::error::Error;

/// Identical losses in a row, each on a connection that completed no
/// command, after which the session stops reconnecting. Three, so that one
/// unlucky loss and its retry are not enough, yet a protocol error found at
/// once after each login stops within a second or so, and ping timeouts
/// (nop_interval + nop_timeout each, 15 s by default) stop within 45 s, before
/// the default replacement timeout of 60 s fails the commands without a word
/// on why.
pub(crate) const REPEATED_LOSS_LIMIT: u32 = 3;

/// What one lost connection did before it was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LostConnection {
    /// SCSI commands that ended with a status on it.
    pub completed: u64,
    /// Commands unfinished when it was lost (replayed or handed back).
    pub unfinished: usize,
}

/// The current run of identical losses.
#[derive(Debug, Default)]
pub(crate) struct LossStreak {
    signature: String,
    count: u32,
}

impl LossStreak {
    /// Records a loss; returns how many identical losses in a row it makes,
    /// or `None` when it does not count.
    ///
    /// A connection that completed a command worked: the streak ends. One
    /// that completed none counts when it had commands to run or broke the
    /// protocol; an idle connection that timed out or was closed tells
    /// nothing about the two sides' understanding (a link that flaps while
    /// idle must not stop the session), so it neither counts nor resets.
    pub fn record(&mut self, error: &Error, lost: LostConnection) -> Option<u32> {
        if lost.completed > 0 {
            self.reset();
            return None;
        }
        if lost.unfinished == 0 && !matches!(error, Error::Protocol { .. }) {
            return None;
        }
        let signature = signature(error);
        if self.count > 0 && signature == self.signature {
            self.count += 1;
        } else {
            self.signature = signature;
            self.count = 1;
        }
        Some(self.count)
    }

    /// Forgets the streak (a connection that worked, or a retry asked for).
    pub fn reset(&mut self) {
        self.signature.clear();
        self.count = 0;
    }
}

/// The error as text with every word that holds a digit masked: two losses
/// are the same failure when they differ only in task tags, sequence
/// numbers or lengths.
fn signature(error: &Error) -> String {
    fn flush(word: &mut String, out: &mut String) {
        if word.bytes().any(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    }
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::error::PathContext;
    use crate::core::portal::Portal;

    fn ctx() -> PathContext {
        PathContext {
            portal: Portal::new("127.0.0.1", 3260),
            target: "iqn.t".into(),
        }
    }

    fn protocol(reason: &str) -> Error {
        Error::Protocol {
            ctx: ctx(),
            reason: reason.into(),
        }
    }

    fn ping_timeout() -> Error {
        Error::Timeout {
            ctx: ctx(),
            what: "NOP-Out ping",
            after: Duration::from_secs(10),
        }
    }

    const BUSY: LostConnection = LostConnection {
        completed: 0,
        unfinished: 4,
    };
    const IDLE: LostConnection = LostConnection {
        completed: 0,
        unfinished: 0,
    };
    const WORKED: LostConnection = LostConnection {
        completed: 1,
        unfinished: 4,
    };

    #[test]
    fn the_same_failure_counts_up_whatever_its_numbers() {
        let mut s = LossStreak::default();
        assert_eq!(
            s.record(&protocol("Data-In for unknown ITT 0x0000a1f3"), IDLE),
            Some(1)
        );
        assert_eq!(
            s.record(&protocol("Data-In for unknown ITT 0x00000007"), BUSY),
            Some(2)
        );
        assert_eq!(
            s.record(&protocol("Data-In for unknown ITT 12"), BUSY),
            Some(REPEATED_LOSS_LIMIT)
        );
        // Another failure starts a new streak.
        assert_eq!(s.record(&ping_timeout(), BUSY), Some(1));
        assert_eq!(s.record(&ping_timeout(), BUSY), Some(2));
    }

    #[test]
    fn a_connection_that_worked_ends_the_streak_and_idle_losses_do_not_count() {
        let mut s = LossStreak::default();
        assert_eq!(s.record(&ping_timeout(), BUSY), Some(1));
        assert_eq!(s.record(&ping_timeout(), BUSY), Some(2));
        // An idle link that flaps says nothing about the framing.
        assert_eq!(s.record(&ping_timeout(), IDLE), None);
        assert_eq!(s.record(&ping_timeout(), WORKED), None);
        assert_eq!(s.record(&ping_timeout(), BUSY), Some(1));
        s.reset();
        assert_eq!(s.record(&ping_timeout(), BUSY), Some(1));
    }

    #[test]
    fn signatures_mask_numbers_only() {
        assert_eq!(
            signature(&protocol("bad opcode 0x3f at offset 48")),
            "iqn.t at #.#.#.#:#: protocol error: bad opcode # at offset #"
        );
        assert_ne!(
            signature(&protocol("header digest mismatch")),
            signature(&protocol("data digest mismatch"))
        );
    }
}
