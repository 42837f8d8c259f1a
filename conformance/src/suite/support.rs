//! Small judgements many tests share.

use std::future::Future;

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

/// How many fresh sessions a logout test tries when the target drops the
/// connection instead of answering.
pub const LOGOUT_ATTEMPTS: usize = 3;

/// Runs `attempt` (one logout test on a session of its own) again when
/// it ends in a dropped connection, at most [`LOGOUT_ATTEMPTS`] times.
/// istgt 0.4 drops about one connection in six instead of answering its
/// Logout Request, at random: a test about what the Logout Response says
/// must neither pass nor fail on that race. Every retry is logged (a
/// warning on stderr), and a target that drops the connection on every
/// attempt fails: that is no race but its answer.
pub async fn retry_dropped_logout<F, Fut>(what: &str, attempt: F) -> TestResult
where
    F: Fn() -> Fut,
    Fut: Future<Output = TestResult>,
{
    for n in 1..=LOGOUT_ATTEMPTS {
        match attempt().await {
            Err(e) if e.is_closed() => {
                tracing::warn!(
                    attempt = n,
                    "the target dropped the connection instead of answering {what} ({e}); \
                     trying a fresh session"
                );
            }
            other => return other,
        }
    }
    fail(format!(
        "the target dropped the connection instead of answering {what}, \
         in each of {LOGOUT_ATTEMPTS} sessions"
    ))
}
