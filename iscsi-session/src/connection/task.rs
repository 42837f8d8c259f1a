//! The tasks a connection tracks by Initiator Task Tag.

use std::time::Instant;

use iscsi_proto::pdu::{Itt, Lun, TmfFunction};

use super::scsi_task::ScsiTask;

/// Why a text exchange was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextPurpose {
    /// Asked for by the user (SendTargets): the pairs are delivered.
    User,
    /// Answering the target's request to renegotiate: the pairs are applied.
    Renegotiation,
}

#[derive(Debug)]
pub(crate) enum TaskKind {
    Scsi(ScsiTask),
    /// Our NOP-Out keepalive.
    Ping,
    /// Task management: ABORT TASK (with the task it aborts) or LU RESET.
    TaskManagement {
        function: TmfFunction,
        lun: Lun,
        referenced: Option<Itt>,
    },
    Text {
        purpose: TextPurpose,
        received: Vec<u8>,
    },
    Logout,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub kind: TaskKind,
    /// Submission order, to hand unfinished commands back in order.
    pub seq: u64,
    pub deadline: Option<Instant>,
}
