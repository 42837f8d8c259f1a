//! What a test concludes. A test that cannot run on this target (an
//! optional feature not offered) is `Skip`, never `Pass`: libiscsi's
//! iscsi-test-cu counts skips as passes, and a conformance tool must not.

use std::fmt;

use crate::error::ProbeError;

/// The verdict of one test, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The target behaved as the cited section requires.
    Pass,
    /// It did not; the reason says what it did instead.
    Fail(String),
    /// The test does not apply here (feature not offered, option not given).
    Skip(String),
    /// The test could not reach a verdict (connection lost, timeout).
    Error(String),
}

/// The verdict alone, for counting and for expected-results files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Skipped.
    Skip,
    /// Errored.
    Error,
}

impl Verdict {
    /// `pass`, `fail`, `skip`, `error`: the words of the expected files.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
        }
    }

    /// The inverse of [`Verdict::as_str`].
    pub fn parse(word: &str) -> Option<Verdict> {
        match word {
            "pass" => Some(Verdict::Pass),
            "fail" => Some(Verdict::Fail),
            "skip" => Some(Verdict::Skip),
            "error" => Some(Verdict::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Outcome {
    /// Its verdict.
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Pass => Verdict::Pass,
            Outcome::Fail(_) => Verdict::Fail,
            Outcome::Skip(_) => Verdict::Skip,
            Outcome::Error(_) => Verdict::Error,
        }
    }

    /// The reason ("" for a pass).
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Fail(r) | Outcome::Skip(r) | Outcome::Error(r) => r,
        }
    }
}

/// What a test body returns: a verdict, or the probe error that kept it
/// from one (reported as [`Outcome::Error`]).
pub type TestResult = Result<Outcome, ProbeError>;

/// `Ok(Outcome::Pass)`.
pub fn pass() -> TestResult {
    Ok(Outcome::Pass)
}

/// `Ok(Outcome::Fail(reason))`.
pub fn fail(reason: impl Into<String>) -> TestResult {
    Ok(Outcome::Fail(reason.into()))
}

/// `Ok(Outcome::Skip(reason))`.
pub fn skip(reason: impl Into<String>) -> TestResult {
    Ok(Outcome::Skip(reason.into()))
}

/// Returns a failure from the test when the condition does not hold.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Ok($crate::outcome::Outcome::Fail(format!($($msg)+)));
        }
    };
}

/// Returns a skip from the test when the condition holds.
#[macro_export]
macro_rules! skip_if {
    ($cond:expr, $($msg:tt)+) => {
        if $cond {
            return Ok($crate::outcome::Outcome::Skip(format!($($msg)+)));
        }
    };
}
