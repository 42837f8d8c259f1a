//! Renderings of a run: the human table and JUnit XML.

pub mod junit;
pub mod table;

use crate::outcome::Verdict;
use crate::runner::Record;

/// How many records have each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
    /// Errored.
    pub error: usize,
}

impl Counts {
    /// Counts `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a Record>) -> Counts {
        let mut c = Counts::default();
        for r in records {
            match r.outcome.verdict() {
                Verdict::Pass => c.pass += 1,
                Verdict::Fail => c.fail += 1,
                Verdict::Skip => c.skip += 1,
                Verdict::Error => c.error += 1,
            }
        }
        c
    }

    /// All of them.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.skip + self.error
    }
}
