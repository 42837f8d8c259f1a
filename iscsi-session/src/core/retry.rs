//! Same-path retries of a completed command (UNIT ATTENTION, BUSY, TASK SET
//! FULL...), as the SCSI midlayer does them: a bounded budget, then the
//! condition is the path's problem and a multipath layer tries another.

use std::time::Duration;

use iscsi_proto::scsi::{self, FailureClass};

use crate::core::command::CommandOutcome;

/// How often, and how patiently, a command is re-issued on the same path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Re-issues after the first attempt (Linux allows 5).
    pub max_retries: u32,
    /// Pause before re-issuing after BUSY, TASK SET FULL or a status without
    /// sense, times the attempt number; a UNIT ATTENTION is retried at once.
    pub busy_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            busy_delay: Duration::from_millis(20),
        }
    }
}

/// What to do with one attempt's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryVerdict {
    /// The command completed (GOOD, CONDITION MET, or a CHECK CONDITION
    /// that reports success, e.g. RECOVERED ERROR).
    Completed,
    /// A transient condition of this path: re-issue here after the pause.
    RetryAfter(Duration),
    /// Still transient after the whole budget: the path is suspect.
    Exhausted,
    /// Retrying here cannot help: [`FailureClass::TryOtherPath`] or
    /// [`FailureClass::Final`].
    Failed(FailureClass),
}

impl RetryPolicy {
    /// Never retries: every non-GOOD status goes back at once.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            busy_delay: Duration::ZERO,
        }
    }

    /// Judges attempt number `attempt` (1 for the first) of a command.
    pub fn judge(&self, outcome: &CommandOutcome, attempt: u32) -> RetryVerdict {
        let sense = outcome
            .sense
            .as_deref()
            .and_then(|s| scsi::Sense::parse(s).ok());
        let has_sense = sense.is_some();
        let failure = scsi::CommandFailure::Status {
            status: scsi::ScsiStatus::from_code(outcome.status),
            sense,
        };
        if failure.completed() {
            return RetryVerdict::Completed;
        }
        match scsi::classify(&failure) {
            FailureClass::RetrySamePath if attempt > self.max_retries => RetryVerdict::Exhausted,
            FailureClass::RetrySamePath if has_sense => RetryVerdict::RetryAfter(Duration::ZERO),
            FailureClass::RetrySamePath => {
                RetryVerdict::RetryAfter(self.busy_delay.saturating_mul(attempt.min(1000)))
            }
            other => RetryVerdict::Failed(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::command::{ReadData, status};
    use bytes::Bytes;
    use iscsi_proto::pdu::{Itt, Residual};

    fn outcome(status: u8, sense: Option<[u8; 18]>) -> CommandOutcome {
        CommandOutcome {
            itt: Itt(1),
            status,
            sense: sense.map(|s| Bytes::copy_from_slice(&s)),
            data: ReadData::new(),
            residual: Residual::None,
        }
    }

    fn sense(key: u8, asc: u8, ascq: u8) -> Option<[u8; 18]> {
        Some([
            0x70, 0, key, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
        ])
    }

    #[test]
    fn busy_backs_off_then_exhausts() {
        let p = RetryPolicy::default();
        let busy = outcome(status::BUSY, None);
        assert_eq!(
            p.judge(&busy, 1),
            RetryVerdict::RetryAfter(Duration::from_millis(20))
        );
        assert_eq!(
            p.judge(&busy, 5),
            RetryVerdict::RetryAfter(Duration::from_millis(100))
        );
        assert_eq!(p.judge(&busy, 6), RetryVerdict::Exhausted);
        assert_eq!(RetryPolicy::none().judge(&busy, 1), RetryVerdict::Exhausted);
    }

    #[test]
    fn unit_attention_retried_at_once_medium_error_final() {
        let p = RetryPolicy::default();
        let ua = outcome(status::CHECK_CONDITION, sense(0x6, 0x29, 0x00));
        assert_eq!(p.judge(&ua, 1), RetryVerdict::RetryAfter(Duration::ZERO));
        let medium = outcome(status::CHECK_CONDITION, sense(0x3, 0x11, 0x00));
        assert_eq!(
            p.judge(&medium, 1),
            RetryVerdict::Failed(FailureClass::Final)
        );
        let recovered = outcome(status::CHECK_CONDITION, sense(0x1, 0x00, 0x00));
        assert_eq!(p.judge(&recovered, 1), RetryVerdict::Completed);
        assert_eq!(
            p.judge(&outcome(status::GOOD, None), 1),
            RetryVerdict::Completed
        );
    }
}
