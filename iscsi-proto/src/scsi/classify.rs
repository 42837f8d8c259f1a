//! What to do with a failed command: retry it on the same path, re-submit it on
//! another path, or give the error to the caller.
//!
//! The rule is the one Linux applies under dm-multipath. dm-mpath fails a path
//! and re-queues the I/O elsewhere for every error `blk_path_error()` accepts,
//! i.e. everything except BLK_STS_NOTSUPP/NOSPC/TARGET/RESV_CONFLICT/MEDIUM/
//! PROTECTION. Which SCSI outcome turns into which status is decided by
//! `scsi_decide_disposition()`/`scsi_check_sense()` (scsi_error.c),
//! `scsi_io_completion_action()` (scsi_lib.c) and the ALUA device handler.
//! The sense rules are the table [`SENSE_RULES`]; each row gives its reason,
//! including the few places where we deliberately differ from Linux.
//!
//! [`FailureClass::RetrySamePath`] is for conditions that clear by themselves
//! on the same I_T nexus. Callers bound those retries (Linux allows 5); when the
//! budget is spent the command should be treated as [`FailureClass::TryOtherPath`],
//! which is what Linux ends up doing (an exhausted retry completes with
//! BLK_STS_IOERR, a path error to dm-mpath). With a single path,
//! `TryOtherPath` means "this path is suspect": reconnect or fail.

use super::sense::{Sense, SenseKey};
use super::status::ScsiStatus;

/// The decision for a failed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// Transient condition of this path or LU: re-issue on the same path (bounded).
    RetrySamePath,
    /// The path is suspect: re-submit the unchanged command on another path.
    TryOtherPath,
    /// Retrying cannot help (or the command completed): report to the caller.
    Final,
}

/// How a path failed underneath a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportFailure {
    /// The TCP connection closed or reset.
    ConnectionLost,
    /// A header or data digest did not match.
    DigestError,
    /// Session-level failure (login lost, protocol error, reject, logout).
    SessionFailure,
    /// SCSI Response with iSCSI Response 01h "target failure" (no SCSI status).
    TargetFailure,
}

/// A command that did not complete with GOOD status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandFailure {
    /// The path failed before a status arrived.
    Transport(TransportFailure),
    /// No response within the command timeout.
    Timeout,
    /// The target answered with a non-GOOD status.
    Status {
        /// SCSI status byte.
        status: ScsiStatus,
        /// Sense data, when the response carried any that parsed.
        sense: Option<Sense>,
    },
}

impl CommandFailure {
    /// True when the "failure" is a completion: GOOD or CONDITION MET status,
    /// or CHECK CONDITION whose sense key is RECOVERED ERROR or COMPLETED
    /// (SPC: the command succeeded, the sense is informational). Linux
    /// completes these successfully; callers should too.
    pub fn completed(&self) -> bool {
        match self {
            CommandFailure::Status { status, sense } => {
                status.is_success()
                    || (*status == ScsiStatus::CheckCondition
                        && sense.as_ref().is_some_and(|s| {
                            s.is_current()
                                && matches!(s.key, SenseKey::RecoveredError | SenseKey::Completed)
                        }))
            }
            _ => false,
        }
    }
}

/// One row of the sense rule table: the first matching row decides.
#[derive(Debug, Clone, Copy)]
pub struct SenseRule {
    /// Sense key the row applies to.
    pub key: SenseKey,
    /// ASC to match, `None` for any.
    pub asc: Option<u8>,
    /// ASCQ to match, `None` for any.
    pub ascq: Option<u8>,
    /// Decision.
    pub class: FailureClass,
    /// Why, with the Linux behaviour it follows or departs from.
    pub reason: &'static str,
}

impl SenseRule {
    fn matches(&self, key: SenseKey, asc: u8, ascq: u8) -> bool {
        self.key == key && self.asc.is_none_or(|a| a == asc) && self.ascq.is_none_or(|q| q == ascq)
    }
}

use FailureClass::{Final, RetrySamePath, TryOtherPath};

const fn exact(
    key: SenseKey,
    asc: u8,
    ascq: u8,
    class: FailureClass,
    reason: &'static str,
) -> SenseRule {
    SenseRule {
        key,
        asc: Some(asc),
        ascq: Some(ascq),
        class,
        reason,
    }
}

const fn any_ascq(key: SenseKey, asc: u8, class: FailureClass, reason: &'static str) -> SenseRule {
    SenseRule {
        key,
        asc: Some(asc),
        ascq: None,
        class,
        reason,
    }
}

const fn any(key: SenseKey, class: FailureClass, reason: &'static str) -> SenseRule {
    SenseRule {
        key,
        asc: None,
        ascq: None,
        class,
        reason,
    }
}

const LU_IN_PROGRESS: &str =
    "LU busy with an operation that ends by itself; scsi_lib ACTION_DELAYED_RETRY";

/// The sense rules, most specific first; every sense key ends with a catch-all row.
pub static SENSE_RULES: &[SenseRule] = &[
    // NOT READY, ASC 04h: the ASCQs Linux retries with a delay.
    exact(
        SenseKey::NotReady,
        0x04,
        0x01,
        RetrySamePath,
        "becoming ready; scsi_check_sense NEEDS_RETRY",
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x04,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x05,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x06,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x07,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x08,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x09,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x11,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x14,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x1a,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x1b,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x1d,
        RetrySamePath,
        LU_IN_PROGRESS,
    ),
    // ALUA: the port group of this path cannot serve the LU right now.
    exact(
        SenseKey::NotReady,
        0x04,
        0x0a,
        TryOtherPath,
        "ALUA transition: Linux returned BLK_STS_TRANSPORT (failover) until 6.10, which instead \
         requeues on the same path bounded by the ALUA handler's transition timeout; without that \
         handler we fail over and let the path checker readmit the path",
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x0b,
        TryOtherPath,
        "target port in standby: only another port group serves I/O",
    ),
    exact(
        SenseKey::NotReady,
        0x04,
        0x0c,
        TryOtherPath,
        "target port unavailable: only another port group serves I/O",
    ),
    any_ascq(
        SenseKey::NotReady,
        0x3a,
        Final,
        "medium not present is a property of the LU, not the path. Linux reports BLK_STS_IOERR \
         (a path error), which fails every path in turn; we stop at the first",
    ),
    any(
        SenseKey::NotReady,
        TryOtherPath,
        "other NOT READY (offline, manual intervention, initializing command required, 04/24 \
         depopulation...): scsi_lib ACTION_FAIL with BLK_STS_IOERR, a path error",
    ),
    any(
        SenseKey::UnitAttention,
        RetrySamePath,
        "reset, power on, parameters/capacity/ALUA state changed, reported LUNs changed: \
         scsi_lib ACTION_RETRY for non-removable devices",
    ),
    any(
        SenseKey::MediumError,
        Final,
        "the medium is shared by all paths. Linux maps 11h/13h/14h to BLK_STS_MEDIUM and retries \
         other medium errors on the same path first; the target already did its own retries",
    ),
    any(
        SenseKey::HardwareError,
        Final,
        "DID_TARGET_FAILURE -> BLK_STS_TARGET (retry_hwerror quirks aside)",
    ),
    exact(
        SenseKey::IllegalRequest,
        0x25,
        0x00,
        TryOtherPath,
        "logical unit not supported: the LU may be unmapped on this target port only; \
         Linux leaves 25h out of its target-failure list, so it is a path error",
    ),
    any(
        SenseKey::IllegalRequest,
        Final,
        "the command itself is wrong (20h/21h/24h/26h/27h -> BLK_STS_TARGET in Linux); \
         other ASCs here also describe the command, so every path would refuse it",
    ),
    any(
        SenseKey::DataProtect,
        Final,
        "write protected / space allocation failed: BLK_STS_TARGET or BLK_STS_NOSPC",
    ),
    any(
        SenseKey::BlankCheck,
        Final,
        "DID_TARGET_FAILURE -> BLK_STS_TARGET",
    ),
    any(
        SenseKey::CopyAborted,
        Final,
        "DID_TARGET_FAILURE -> BLK_STS_TARGET",
    ),
    any(
        SenseKey::VolumeOverflow,
        Final,
        "DID_TARGET_FAILURE -> BLK_STS_TARGET",
    ),
    any(
        SenseKey::Miscompare,
        Final,
        "DID_TARGET_FAILURE -> BLK_STS_TARGET; the data differs on every path",
    ),
    any_ascq(
        SenseKey::AbortedCommand,
        0x10,
        Final,
        "protection information check failed: BLK_STS_PROTECTION",
    ),
    any(
        SenseKey::AbortedCommand,
        TryOtherPath,
        "aborted by the target (transport errors, internal failure): Linux retries on the same \
         path and then fails the path; the path is the suspect, so go elsewhere directly",
    ),
    any(
        SenseKey::NoSense,
        TryOtherPath,
        "CHECK CONDITION without a reason: Linux fails it with BLK_STS_IOERR, a path error",
    ),
    any(
        SenseKey::RecoveredError,
        Final,
        "the command completed after recovery (see CommandFailure::completed)",
    ),
    any(
        SenseKey::Completed,
        Final,
        "the command completed; the sense data is informational",
    ),
    any(
        SenseKey::VendorSpecific,
        TryOtherPath,
        "unknown meaning: BLK_STS_IOERR, a path error in Linux",
    ),
    any(
        SenseKey::Reserved,
        TryOtherPath,
        "unknown meaning: BLK_STS_IOERR, a path error in Linux",
    ),
];

/// Index in [`SENSE_RULES`] of the row deciding this sense.
fn sense_rule_index(key: SenseKey, asc: u8, ascq: u8) -> Option<usize> {
    SENSE_RULES
        .iter()
        .position(|rule| rule.matches(key, asc, ascq))
}

/// Classifies a failed command (see the module documentation for the rule).
pub fn classify(failure: &CommandFailure) -> FailureClass {
    let (status, sense) = match failure {
        // dm-mpath: BLK_STS_TRANSPORT / BLK_STS_TIMEOUT / DID_ERROR are path errors.
        CommandFailure::Transport(_) | CommandFailure::Timeout => return TryOtherPath,
        CommandFailure::Status { status, sense } => (*status, sense.as_ref()),
    };
    match status {
        ScsiStatus::Good | ScsiStatus::ConditionMet => Final,
        // scsi_decide_disposition: requeue (ADD_TO_MLQUEUE / NEEDS_RETRY).
        ScsiStatus::Busy | ScsiStatus::TaskSetFull | ScsiStatus::TaskAborted => RetrySamePath,
        // Linux escalates to the error handler, then retries on the same device.
        ScsiStatus::AcaActive => RetrySamePath,
        // DID_NEXUS_FAILURE -> BLK_STS_RESV_CONFLICT: not a path error.
        ScsiStatus::ReservationConflict => Final,
        // Linux runs error recovery, which ends in a path error.
        ScsiStatus::Unknown(_) => TryOtherPath,
        ScsiStatus::CheckCondition => match sense {
            // No usable sense: nothing says the LU is at fault; Linux's outcome is a path error.
            None => TryOtherPath,
            // A deferred error belongs to an earlier command; this one was not
            // executed (scsi_check_sense: NEEDS_RETRY).
            Some(sense) if sense.is_deferred() => RetrySamePath,
            Some(sense) => sense_rule_index(sense.key, sense.asc, sense.ascq)
                .map_or(TryOtherPath, |index| SENSE_RULES[index].class),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed-format current sense data with the given key and ASC/ASCQ (SPC-4 table 49).
    fn sense_bytes(key: u8, asc: u8, ascq: u8) -> [u8; 18] {
        [
            0x70, 0, key, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0,
        ]
    }

    fn check_condition(key: u8, asc: u8, ascq: u8) -> CommandFailure {
        CommandFailure::Status {
            status: ScsiStatus::CheckCondition,
            sense: Some(Sense::parse(&sense_bytes(key, asc, ascq)).unwrap()),
        }
    }

    /// (key, asc, ascq) of every per-row test, to prove each row is exercised.
    const ROW_CASES: &[(u8, u8, u8)] = &[
        (0x2, 0x04, 0x01),
        (0x2, 0x04, 0x04),
        (0x2, 0x04, 0x05),
        (0x2, 0x04, 0x06),
        (0x2, 0x04, 0x07),
        (0x2, 0x04, 0x08),
        (0x2, 0x04, 0x09),
        (0x2, 0x04, 0x11),
        (0x2, 0x04, 0x14),
        (0x2, 0x04, 0x1a),
        (0x2, 0x04, 0x1b),
        (0x2, 0x04, 0x1d),
        (0x2, 0x04, 0x0a),
        (0x2, 0x04, 0x0b),
        (0x2, 0x04, 0x0c),
        (0x2, 0x3a, 0x02),
        (0x2, 0x04, 0x12),
        (0x6, 0x29, 0x00),
        (0x3, 0x11, 0x00),
        (0x4, 0x44, 0x00),
        (0x5, 0x25, 0x00),
        (0x5, 0x24, 0x00),
        (0x7, 0x27, 0x00),
        (0x8, 0x00, 0x05),
        (0xa, 0x1d, 0x00),
        (0xd, 0x00, 0x02),
        (0xe, 0x1d, 0x00),
        (0xb, 0x10, 0x01),
        (0xb, 0x47, 0x03),
        (0x0, 0x00, 0x00),
        (0x1, 0x17, 0x01),
        (0xf, 0x00, 0x00),
        (0x9, 0x80, 0x00),
        (0xc, 0x00, 0x00),
    ];

    macro_rules! row_tests {
        ($($name:ident: ($key:expr, $asc:expr, $ascq:expr) => $class:expr;)*) => {
            $(
                #[test]
                fn $name() {
                    assert_eq!(classify(&check_condition($key, $asc, $ascq)), $class);
                    assert!(ROW_CASES.contains(&($key, $asc, $ascq)));
                }
            )*
        };
    }

    row_tests! {
        not_ready_becoming_ready_retries: (0x2, 0x04, 0x01) => RetrySamePath;
        not_ready_format_in_progress_retries: (0x2, 0x04, 0x04) => RetrySamePath;
        not_ready_rebuild_in_progress_retries: (0x2, 0x04, 0x05) => RetrySamePath;
        not_ready_recalculation_retries: (0x2, 0x04, 0x06) => RetrySamePath;
        not_ready_operation_in_progress_retries: (0x2, 0x04, 0x07) => RetrySamePath;
        not_ready_long_write_retries: (0x2, 0x04, 0x08) => RetrySamePath;
        not_ready_self_test_retries: (0x2, 0x04, 0x09) => RetrySamePath;
        not_ready_notify_spinup_retries: (0x2, 0x04, 0x11) => RetrySamePath;
        not_ready_space_allocation_retries: (0x2, 0x04, 0x14) => RetrySamePath;
        not_ready_start_stop_retries: (0x2, 0x04, 0x1a) => RetrySamePath;
        not_ready_sanitize_retries: (0x2, 0x04, 0x1b) => RetrySamePath;
        not_ready_configuration_retries: (0x2, 0x04, 0x1d) => RetrySamePath;
        not_ready_alua_transition_fails_over: (0x2, 0x04, 0x0a) => TryOtherPath;
        not_ready_standby_port_fails_over: (0x2, 0x04, 0x0b) => TryOtherPath;
        not_ready_unavailable_port_fails_over: (0x2, 0x04, 0x0c) => TryOtherPath;
        not_ready_medium_not_present_is_final: (0x2, 0x3a, 0x02) => Final;
        not_ready_offline_fails_over: (0x2, 0x04, 0x12) => TryOtherPath;
        unit_attention_retries: (0x6, 0x29, 0x00) => RetrySamePath;
        medium_error_is_final: (0x3, 0x11, 0x00) => Final;
        hardware_error_is_final: (0x4, 0x44, 0x00) => Final;
        lun_not_supported_fails_over: (0x5, 0x25, 0x00) => TryOtherPath;
        illegal_request_is_final: (0x5, 0x24, 0x00) => Final;
        data_protect_is_final: (0x7, 0x27, 0x00) => Final;
        blank_check_is_final: (0x8, 0x00, 0x05) => Final;
        copy_aborted_is_final: (0xa, 0x1d, 0x00) => Final;
        volume_overflow_is_final: (0xd, 0x00, 0x02) => Final;
        miscompare_is_final: (0xe, 0x1d, 0x00) => Final;
        aborted_protection_check_is_final: (0xb, 0x10, 0x01) => Final;
        aborted_command_fails_over: (0xb, 0x47, 0x03) => TryOtherPath;
        no_sense_fails_over: (0x0, 0x00, 0x00) => TryOtherPath;
        recovered_error_is_final: (0x1, 0x17, 0x01) => Final;
        completed_key_is_final: (0xf, 0x00, 0x00) => Final;
        vendor_specific_key_fails_over: (0x9, 0x80, 0x00) => TryOtherPath;
        reserved_key_fails_over: (0xc, 0x00, 0x00) => TryOtherPath;
    }

    #[test]
    fn every_rule_row_is_exercised() {
        let mut hit = vec![false; SENSE_RULES.len()];
        for &(key, asc, ascq) in ROW_CASES {
            hit[sense_rule_index(SenseKey::from_code(key), asc, ascq).unwrap()] = true;
        }
        let missed: Vec<_> = SENSE_RULES
            .iter()
            .zip(&hit)
            .filter(|(_, hit)| !**hit)
            .map(|(r, _)| r)
            .collect();
        assert!(missed.is_empty(), "rows without a test: {missed:?}");
    }

    #[test]
    fn every_sense_key_has_a_catch_all_row() {
        for code in 0..16 {
            let key = SenseKey::from_code(code);
            assert!(
                SENSE_RULES
                    .iter()
                    .any(|r| r.key == key && r.asc.is_none() && r.ascq.is_none()),
                "{key}"
            );
        }
    }

    #[test]
    fn statuses_without_sense() {
        let status = |status| CommandFailure::Status {
            status,
            sense: None,
        };
        assert_eq!(classify(&status(ScsiStatus::Busy)), RetrySamePath);
        assert_eq!(classify(&status(ScsiStatus::TaskSetFull)), RetrySamePath);
        assert_eq!(classify(&status(ScsiStatus::AcaActive)), RetrySamePath);
        assert_eq!(classify(&status(ScsiStatus::TaskAborted)), RetrySamePath);
        assert_eq!(classify(&status(ScsiStatus::ReservationConflict)), Final);
        assert_eq!(classify(&status(ScsiStatus::Good)), Final);
        assert_eq!(classify(&status(ScsiStatus::ConditionMet)), Final);
        assert_eq!(classify(&status(ScsiStatus::Unknown(0x22))), TryOtherPath);
        assert_eq!(classify(&status(ScsiStatus::CheckCondition)), TryOtherPath);
    }

    #[test]
    fn transport_and_timeout_fail_over() {
        for kind in [
            TransportFailure::ConnectionLost,
            TransportFailure::DigestError,
            TransportFailure::SessionFailure,
            TransportFailure::TargetFailure,
        ] {
            assert_eq!(classify(&CommandFailure::Transport(kind)), TryOtherPath);
        }
        assert_eq!(classify(&CommandFailure::Timeout), TryOtherPath);
    }

    #[test]
    fn deferred_error_retries_whatever_the_key() {
        let mut bytes = sense_bytes(0x3, 0x11, 0x00);
        bytes[0] = 0x71;
        let failure = CommandFailure::Status {
            status: ScsiStatus::CheckCondition,
            sense: Some(Sense::parse(&bytes).unwrap()),
        };
        assert_eq!(classify(&failure), RetrySamePath);
        assert!(!failure.completed());
    }

    #[test]
    fn descriptor_format_sense_is_classified_the_same() {
        let sense = Sense::parse(&[0x72, 0x02, 0x04, 0x0a, 0, 0, 0, 0]).unwrap();
        let failure = CommandFailure::Status {
            status: ScsiStatus::CheckCondition,
            sense: Some(sense),
        };
        assert_eq!(classify(&failure), TryOtherPath);
    }

    #[test]
    fn completed_outcomes() {
        assert!(check_condition(0x1, 0x17, 0x01).completed());
        assert!(check_condition(0xf, 0x00, 0x00).completed());
        assert!(!check_condition(0x6, 0x29, 0x00).completed());
        assert!(
            CommandFailure::Status {
                status: ScsiStatus::Good,
                sense: None
            }
            .completed()
        );
        assert!(
            !CommandFailure::Status {
                status: ScsiStatus::CheckCondition,
                sense: None
            }
            .completed()
        );
        assert!(!CommandFailure::Timeout.completed());
    }

    #[test]
    fn every_reason_is_written() {
        assert!(SENSE_RULES.iter().all(|r| r.reason.len() > 20));
    }
}
