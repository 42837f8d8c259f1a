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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::error::ProbeError;
    use crate::outcome::Outcome;

    fn dropped() -> ProbeError {
        ProbeError::Closed {
            portal: "127.0.0.1:3260".into(),
            what: "a Logout Response".into(),
        }
    }

    /// Attempts that drop the connection `drops` times, then pass.
    async fn run(drops: usize) -> (TestResult, usize) {
        let calls = AtomicUsize::new(0);
        let result = retry_dropped_logout("the Logout Request", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < drops { Err(dropped()) } else { pass() } }
        })
        .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_drop_is_retried_on_a_fresh_attempt() {
        let (result, calls) = run(LOGOUT_ATTEMPTS - 1).await;
        assert_eq!(result.unwrap(), Outcome::Pass);
        assert_eq!(calls, LOGOUT_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_drop_on_every_attempt_fails() {
        let (result, calls) = run(LOGOUT_ATTEMPTS).await;
        assert!(
            matches!(result.unwrap(), Outcome::Fail(r) if r.contains("dropped the connection"))
        );
        assert_eq!(calls, LOGOUT_ATTEMPTS);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let result = retry_dropped_logout("the Logout Request", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err(ProbeError::Precondition {
                    portal: "p".into(),
                    what: "w".into(),
                    reason: "r".into(),
                })
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
