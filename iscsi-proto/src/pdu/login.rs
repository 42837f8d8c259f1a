//! Login Request (§11.12) and Login Response (§11.13).

use std::fmt;

use bytes::Bytes;

use super::bhs::{get_u16, get_u32, put_u16, put_u32};
use super::{Isid, Itt, Opcode, PduError, Stage};

const TRANSIT_BIT: u8 = 0x80;
const CONTINUE_BIT: u8 = 0x40;

/// The only protocol version RFC 7143 defines (Version-max/min 0x00).
pub const ISCSI_VERSION: u8 = 0x00;

fn write_stages(b: &mut [u8; 48], transit: bool, cont: bool, csg: Stage, nsg: Stage) {
    let mut flags = csg.bits() << 2;
    if transit {
        flags |= TRANSIT_BIT | nsg.bits();
    }
    if cont {
        flags |= CONTINUE_BIT;
    }
    b[1] = flags;
}

/// Reads T, C, CSG and NSG. NSG is reserved when T is clear, so it is then
/// reported as the current stage.
fn read_stages(b: &[u8; 48], opcode: Opcode) -> Result<(bool, bool, Stage, Stage), PduError> {
    let flags = b[1];
    let itt = get_u32(b, 16);
    let invalid = |field| PduError::InvalidField {
        opcode,
        itt,
        field,
        value: u32::from(flags),
    };
    let transit = flags & TRANSIT_BIT != 0;
    let cont = flags & CONTINUE_BIT != 0;
    if transit && cont {
        return Err(invalid("flags (T and C both set)"));
    }
    let csg = Stage::from_bits(flags >> 2).ok_or_else(|| invalid("CSG"))?;
    let nsg = if transit {
        Stage::from_bits(flags).ok_or_else(|| invalid("NSG"))?
    } else {
        csg
    };
    Ok((transit, cont, csg, nsg))
}

/// Login Request. Always immediate. `Debug` shows the length of the text, not
/// the text: it carries CHAP responses.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginRequest {
    /// T: the initiator is ready to move to `nsg`.
    pub transit: bool,
    /// C: the text continues in the next PDU.
    pub continue_: bool,
    /// CSG: the stage this request belongs to.
    pub csg: Stage,
    /// Next stage; meaningful only when `transit` is set.
    pub nsg: Stage,
    /// Version-max: the highest version the initiator supports.
    pub version_max: u8,
    /// Version-min: the lowest version the initiator supports.
    pub version_min: u8,
    /// ISID: the initiator part of the session identifier.
    pub isid: Isid,
    /// TSIH: 0 to create (or reinstate) a session, the target's value to add
    /// a connection to an existing one.
    pub tsih: u16,
    /// Initiator Task Tag of the login task.
    pub itt: Itt,
    /// CID: the connection ID, unique within the session.
    pub cid: u16,
    /// CmdSN; the login request does not advance it.
    pub cmd_sn: u32,
    /// ExpStatSN: acknowledges status up to this StatSN (on a new
    /// connection, the StatSN to start from).
    pub exp_stat_sn: u32,
    /// key=value text.
    pub data: Bytes,
}

impl LoginRequest {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        write_stages(b, self.transit, self.continue_, self.csg, self.nsg);
        b[2] = self.version_max;
        b[3] = self.version_min;
        b[8..14].copy_from_slice(&self.isid.0);
        put_u16(b, 14, self.tsih);
        put_u32(b, 16, self.itt.0);
        put_u16(b, 20, self.cid);
        put_u32(b, 24, self.cmd_sn);
        put_u32(b, 28, self.exp_stat_sn);
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        let (transit, continue_, csg, nsg) = read_stages(b, Opcode::LoginRequest)?;
        Ok(LoginRequest {
            transit,
            continue_,
            csg,
            nsg,
            version_max: b[2],
            version_min: b[3],
            isid: Isid::read(b),
            tsih: get_u16(b, 14),
            itt: Itt(get_u32(b, 16)),
            cid: get_u16(b, 20),
            cmd_sn: get_u32(b, 24),
            exp_stat_sn: get_u32(b, 28),
            data,
        })
    }
}

/// Login Response Status-Class and Status-Detail (§11.13.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginStatus {
    /// Status-Class: 0 success, 1 redirection, 2 initiator error, 3 target error.
    pub class: u8,
    /// Status-Detail: the reason within the class.
    pub detail: u8,
}

impl LoginStatus {
    /// 0000h: login is proceeding or complete.
    pub const SUCCESS: LoginStatus = LoginStatus {
        class: 0,
        detail: 0,
    };
    /// 0101h: try the TargetAddress sent with it; keep using this portal
    /// for later logins.
    pub const TARGET_MOVED_TEMPORARILY: LoginStatus = LoginStatus {
        class: 1,
        detail: 1,
    };
    /// 0102h: use the TargetAddress sent with it from now on.
    pub const TARGET_MOVED_PERMANENTLY: LoginStatus = LoginStatus {
        class: 1,
        detail: 2,
    };
    /// 0200h: miscellaneous initiator error.
    pub const INITIATOR_ERROR: LoginStatus = LoginStatus {
        class: 2,
        detail: 0,
    };
    /// 0201h: the initiator could not be authenticated.
    pub const AUTHENTICATION_FAILURE: LoginStatus = LoginStatus {
        class: 2,
        detail: 1,
    };
    /// 0202h: authenticated, but not allowed to access this target.
    pub const AUTHORIZATION_FAILURE: LoginStatus = LoginStatus {
        class: 2,
        detail: 2,
    };
    /// 0203h: no such TargetName here.
    pub const NOT_FOUND: LoginStatus = LoginStatus {
        class: 2,
        detail: 3,
    };
    /// 0204h: the target existed but is gone.
    pub const TARGET_REMOVED: LoginStatus = LoginStatus {
        class: 2,
        detail: 4,
    };
    /// 0205h: no version in Version-min..Version-max is supported.
    pub const UNSUPPORTED_VERSION: LoginStatus = LoginStatus {
        class: 2,
        detail: 5,
    };
    /// 0206h: the session cannot take another connection.
    pub const TOO_MANY_CONNECTIONS: LoginStatus = LoginStatus {
        class: 2,
        detail: 6,
    };
    /// 0207h: a required key (e.g. InitiatorName) was not sent.
    pub const MISSING_PARAMETER: LoginStatus = LoginStatus {
        class: 2,
        detail: 7,
    };
    /// 0208h: this connection cannot join the session (e.g. portal group).
    pub const CANT_INCLUDE_IN_SESSION: LoginStatus = LoginStatus {
        class: 2,
        detail: 8,
    };
    /// 0209h: the SessionType is not supported (e.g. no Discovery).
    pub const SESSION_TYPE_NOT_SUPPORTED: LoginStatus = LoginStatus {
        class: 2,
        detail: 9,
    };
    /// 020Ah: the TSIH names no existing session.
    pub const SESSION_DOES_NOT_EXIST: LoginStatus = LoginStatus {
        class: 2,
        detail: 10,
    };
    /// 020Bh: a request that is not valid during login.
    pub const INVALID_DURING_LOGIN: LoginStatus = LoginStatus {
        class: 2,
        detail: 11,
    };
    /// 0300h: target hardware or software error.
    pub const TARGET_ERROR: LoginStatus = LoginStatus {
        class: 3,
        detail: 0,
    };
    /// 0301h: temporarily unable to serve; retry later.
    pub const SERVICE_UNAVAILABLE: LoginStatus = LoginStatus {
        class: 3,
        detail: 1,
    };
    /// 0302h: the target lacks resources for this login.
    pub const OUT_OF_RESOURCES: LoginStatus = LoginStatus {
        class: 3,
        detail: 2,
    };

    /// Class 0: the login goes on (or is complete when T is set with NSG
    /// FullFeature).
    pub fn is_success(self) -> bool {
        self.class == 0
    }

    /// Class 1: the target redirects us to the TargetAddress it sent.
    pub fn is_redirect(self) -> bool {
        self.class == 1
    }

    /// Class 2: our fault; retrying the same login will not help.
    pub fn is_initiator_error(self) -> bool {
        self.class == 2
    }

    /// Class 3: the target's fault; a later retry may succeed.
    pub fn is_target_error(self) -> bool {
        self.class == 3
    }

    /// What RFC 7143 calls this status.
    pub fn description(self) -> &'static str {
        match (self.class, self.detail) {
            (0, 0) => "success",
            (1, 1) => "target moved temporarily",
            (1, 2) => "target moved permanently",
            (1, _) => "redirection",
            (2, 0) => "initiator error",
            (2, 1) => "authentication failure",
            (2, 2) => "authorization failure",
            (2, 3) => "target not found",
            (2, 4) => "target removed",
            (2, 5) => "unsupported version",
            (2, 6) => "too many connections",
            (2, 7) => "missing parameter",
            (2, 8) => "cannot include connection in session",
            (2, 9) => "session type not supported",
            (2, 10) => "session does not exist",
            (2, 11) => "invalid request during login",
            (2, _) => "initiator error",
            (3, 0) => "target error",
            (3, 1) => "service unavailable",
            (3, 2) => "out of resources",
            (3, _) => "target error",
            _ => "unknown status class",
        }
    }
}

impl fmt::Debug for LoginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LoginStatus({:02x}{:02x} {})",
            self.class,
            self.detail,
            self.description()
        )
    }
}

impl fmt::Display for LoginStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (status {:02x}{:02x})",
            self.description(),
            self.class,
            self.detail
        )
    }
}

/// Login Response. `Debug` shows the length of the text, not the text: it
/// carries CHAP challenges and responses.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginResponse {
    /// T: the target agrees to move to `nsg`.
    pub transit: bool,
    /// C: the text continues in the next PDU.
    pub continue_: bool,
    /// CSG: the stage this response belongs to.
    pub csg: Stage,
    /// NSG: the next stage; meaningful only when `transit` is set.
    pub nsg: Stage,
    /// Version-max: the highest version the target supports.
    pub version_max: u8,
    /// Version-active: the version the session uses.
    pub version_active: u8,
    /// ISID echoed from the request.
    pub isid: Isid,
    /// Non-zero in the final response: the session handle the target assigned.
    pub tsih: u16,
    /// Initiator Task Tag of the login task.
    pub itt: Itt,
    /// StatSN; valid only when `status` is success.
    pub stat_sn: u32,
    /// ExpCmdSN: the next CmdSN the target expects.
    pub exp_cmd_sn: u32,
    /// MaxCmdSN: the highest CmdSN the target will accept (command window).
    pub max_cmd_sn: u32,
    /// Status-Class and Status-Detail.
    pub status: LoginStatus,
    /// key=value text.
    pub data: Bytes,
}

impl LoginResponse {
    pub(super) fn write(&self, b: &mut [u8; 48]) {
        write_stages(b, self.transit, self.continue_, self.csg, self.nsg);
        b[2] = self.version_max;
        b[3] = self.version_active;
        b[8..14].copy_from_slice(&self.isid.0);
        put_u16(b, 14, self.tsih);
        put_u32(b, 16, self.itt.0);
        put_u32(b, 24, self.stat_sn);
        put_u32(b, 28, self.exp_cmd_sn);
        put_u32(b, 32, self.max_cmd_sn);
        b[36] = self.status.class;
        b[37] = self.status.detail;
    }

    pub(super) fn read(b: &[u8; 48], data: Bytes) -> Result<Self, PduError> {
        let (transit, continue_, csg, nsg) = read_stages(b, Opcode::LoginResponse)?;
        Ok(LoginResponse {
            transit,
            continue_,
            csg,
            nsg,
            version_max: b[2],
            version_active: b[3],
            isid: Isid::read(b),
            tsih: get_u16(b, 14),
            itt: Itt(get_u32(b, 16)),
            stat_sn: get_u32(b, 24),
            exp_cmd_sn: get_u32(b, 28),
            max_cmd_sn: get_u32(b, 32),
            status: LoginStatus {
                class: b[36],
                detail: b[37],
            },
            data,
        })
    }
}

/// Login text, shown by its length: CHAP challenge and response together are
/// enough for an offline dictionary attack on the secret.
struct TextLen(usize);

impl fmt::Debug for TextLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes of login text>", self.0)
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("transit", &self.transit)
            .field("continue_", &self.continue_)
            .field("csg", &self.csg)
            .field("nsg", &self.nsg)
            .field("version_max", &self.version_max)
            .field("version_min", &self.version_min)
            .field("isid", &self.isid)
            .field("tsih", &self.tsih)
            .field("itt", &self.itt)
            .field("cid", &self.cid)
            .field("cmd_sn", &self.cmd_sn)
            .field("exp_stat_sn", &self.exp_stat_sn)
            .field("data", &TextLen(self.data.len()))
            .finish()
    }
}

impl fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginResponse")
            .field("transit", &self.transit)
            .field("continue_", &self.continue_)
            .field("csg", &self.csg)
            .field("nsg", &self.nsg)
            .field("version_max", &self.version_max)
            .field("version_active", &self.version_active)
            .field("isid", &self.isid)
            .field("tsih", &self.tsih)
            .field("itt", &self.itt)
            .field("stat_sn", &self.stat_sn)
            .field("exp_cmd_sn", &self.exp_cmd_sn)
            .field("max_cmd_sn", &self.max_cmd_sn)
            .field("status", &self.status)
            .field("data", &TextLen(self.data.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_login_text() {
        let secret_bearing = Bytes::from_static(b"CHAP_N=alice\0CHAP_R=0xc50f00\0");
        let req = LoginRequest {
            transit: true,
            continue_: false,
            csg: Stage::Security,
            nsg: Stage::Operational,
            version_max: 0,
            version_min: 0,
            isid: Isid::default(),
            tsih: 0,
            itt: Itt(0),
            cid: 0,
            cmd_sn: 1,
            exp_stat_sn: 0,
            data: secret_bearing.clone(),
        };
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("CHAP_R") && !shown.contains("c50f"),
            "{shown}"
        );
        assert!(shown.contains("bytes of login text"));
        let resp = LoginResponse {
            transit: false,
            continue_: false,
            csg: Stage::Security,
            nsg: Stage::Security,
            version_max: 0,
            version_active: 0,
            isid: Isid::default(),
            tsih: 0,
            itt: Itt(0),
            stat_sn: 0,
            exp_cmd_sn: 1,
            max_cmd_sn: 1,
            status: LoginStatus::SUCCESS,
            data: secret_bearing,
        };
        assert!(!format!("{resp:?}").contains("CHAP_R"));
    }
}
