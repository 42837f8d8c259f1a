//! PDU opcodes (RFC 7143 §11.2.1.2).

use std::fmt;

/// Every opcode RFC 7143 defines. Vendor-specific and reserved codes are refused
/// by the decoder: nothing we speak uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opcode {
    /// 00h: NOP-Out.
    NopOut,
    /// 01h: SCSI Command.
    ScsiCommand,
    /// 02h: Task Management Function Request.
    TaskMgmtRequest,
    /// 03h: Login Request.
    LoginRequest,
    /// 04h: Text Request.
    TextRequest,
    /// 05h: SCSI Data-Out.
    DataOut,
    /// 06h: Logout Request.
    LogoutRequest,
    /// 10h: SNACK Request.
    SnackRequest,
    /// 20h: NOP-In.
    NopIn,
    /// 21h: SCSI Response.
    ScsiResponse,
    /// 22h: Task Management Function Response.
    TaskMgmtResponse,
    /// 23h: Login Response.
    LoginResponse,
    /// 24h: Text Response.
    TextResponse,
    /// 25h: SCSI Data-In.
    DataIn,
    /// 26h: Logout Response.
    LogoutResponse,
    /// 31h: Ready To Transfer.
    R2t,
    /// 32h: Asynchronous Message.
    AsyncMessage,
    /// 3Fh: Reject.
    Reject,
}

impl Opcode {
    /// Every opcode, initiator opcodes (00h..10h) first.
    pub const ALL: [Opcode; 18] = [
        Opcode::NopOut,
        Opcode::ScsiCommand,
        Opcode::TaskMgmtRequest,
        Opcode::LoginRequest,
        Opcode::TextRequest,
        Opcode::DataOut,
        Opcode::LogoutRequest,
        Opcode::SnackRequest,
        Opcode::NopIn,
        Opcode::ScsiResponse,
        Opcode::TaskMgmtResponse,
        Opcode::LoginResponse,
        Opcode::TextResponse,
        Opcode::DataIn,
        Opcode::LogoutResponse,
        Opcode::R2t,
        Opcode::AsyncMessage,
        Opcode::Reject,
    ];

    /// The 6-bit wire value.
    pub fn code(self) -> u8 {
        match self {
            Opcode::NopOut => 0x00,
            Opcode::ScsiCommand => 0x01,
            Opcode::TaskMgmtRequest => 0x02,
            Opcode::LoginRequest => 0x03,
            Opcode::TextRequest => 0x04,
            Opcode::DataOut => 0x05,
            Opcode::LogoutRequest => 0x06,
            Opcode::SnackRequest => 0x10,
            Opcode::NopIn => 0x20,
            Opcode::ScsiResponse => 0x21,
            Opcode::TaskMgmtResponse => 0x22,
            Opcode::LoginResponse => 0x23,
            Opcode::TextResponse => 0x24,
            Opcode::DataIn => 0x25,
            Opcode::LogoutResponse => 0x26,
            Opcode::R2t => 0x31,
            Opcode::AsyncMessage => 0x32,
            Opcode::Reject => 0x3f,
        }
    }

    /// Decodes the low 6 bits of BHS byte 0; `None` for reserved and vendor codes.
    pub fn from_code(code: u8) -> Option<Self> {
        Opcode::ALL
            .iter()
            .copied()
            .find(|op| op.code() == code & 0x3f)
    }

    /// True for the opcodes an initiator sends.
    pub fn is_initiator_opcode(self) -> bool {
        self.code() < 0x20
    }

    /// Whether a PDU of this kind may carry a data segment at all (§11: Task
    /// Management, R2T, Logout and SNACK have none).
    pub fn may_carry_data(self) -> bool {
        !matches!(
            self,
            Opcode::TaskMgmtRequest
                | Opcode::TaskMgmtResponse
                | Opcode::R2t
                | Opcode::LogoutRequest
                | Opcode::LogoutResponse
                | Opcode::SnackRequest
        )
    }

    /// The name RFC 7143 (and tshark) use for it.
    pub fn name(self) -> &'static str {
        match self {
            Opcode::NopOut => "NOP Out",
            Opcode::ScsiCommand => "SCSI Command",
            Opcode::TaskMgmtRequest => "Task Management Function",
            Opcode::LoginRequest => "Login Command",
            Opcode::TextRequest => "Text Command",
            Opcode::DataOut => "SCSI Data Out",
            Opcode::LogoutRequest => "Logout Command",
            Opcode::SnackRequest => "SNACK Request",
            Opcode::NopIn => "NOP In",
            Opcode::ScsiResponse => "SCSI Response",
            Opcode::TaskMgmtResponse => "Task Management Function Response",
            Opcode::LoginResponse => "Login Response",
            Opcode::TextResponse => "Text Response",
            Opcode::DataIn => "SCSI Data In",
            Opcode::LogoutResponse => "Logout Response",
            Opcode::R2t => "Ready To Transfer",
            Opcode::AsyncMessage => "Asynchronous Message",
            Opcode::Reject => "Reject",
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#04x})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_reserved_refused() {
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_code(op.code()), Some(op));
        }
        let defined: Vec<u8> = Opcode::ALL.iter().map(|o| o.code()).collect();
        for code in 0u8..0x40 {
            assert_eq!(Opcode::from_code(code).is_some(), defined.contains(&code));
        }
        // Vendor-specific ranges 0x1c-0x1e and 0x3c-0x3e are not ours.
        assert_eq!(Opcode::from_code(0x1c), None);
        assert_eq!(Opcode::from_code(0x3c), None);
    }
}
