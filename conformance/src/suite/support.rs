//! Small judgements many tests share.

use iscsi_proto::pdu::LoginStatus;

use crate::outcome::{TestResult, fail, pass};
use crate::probe::{LoginEnd, LoginReport};

/// The login must end in exactly `want`.
pub fn refused_with(report: &LoginReport, want: LoginStatus) -> TestResult {
    match &report.end {
        LoginEnd::Refused(s) if *s == want => pass(),
        _ => fail(format!(
            "expected the login refused with {want}, but {}",
            report.describe()
        )),
    }
}

/// The login must end in an initiator error (class 2) or a closed
/// connection: what RFC 7143 leaves to the target when it names no detail.
pub fn refused_or_closed(report: &LoginReport) -> TestResult {
    match &report.end {
        LoginEnd::Refused(s) if s.class == 2 => pass(),
        LoginEnd::Broken(_) => pass(),
        _ => fail(format!(
            "expected an initiator-error refusal or a closed connection, but {}",
            report.describe()
        )),
    }
}
