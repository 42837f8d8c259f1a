//! Runs the selected tests one after another, each under its own timeout,
//! and records how each ended. Tests run serially: task management, resets,
//! reservations and session reinstatement would disturb a neighbour.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::Ctx;
use crate::endpoint::SuiteConfig;
use crate::outcome::Outcome;
use crate::registry::TestCase;

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The test's id.
    pub id: String,
    /// The section it checks.
    pub section: String,
    /// What it checks.
    pub summary: String,
    /// Its verdict and reason.
    pub outcome: Outcome,
    /// How long it ran.
    pub duration: Duration,
    /// Skipped by the run's options (no `--dataloss`, no second URL),
    /// not by anything the target did: expected-results files ignore it.
    pub gated: bool,
}

/// Why the runner itself skips a test, if it does.
fn gate(test: &TestCase, config: &SuiteConfig) -> Option<String> {
    if test.destructive && !config.dataloss {
        return Some("destructive (writes to or resets the LU): run with --dataloss".into());
    }
    if test.needs_second_path && config.secondary.is_none() {
        return Some("needs a second URL to the same LU (multipath family)".into());
    }
    None
}

/// Runs `tests` in order, calling `each` as every one finishes.
pub async fn run(
    config: SuiteConfig,
    tests: &[TestCase],
    mut each: impl FnMut(&Record),
) -> Vec<Record> {
    let ctx = Arc::new(Ctx::new(config));
    let mut records = Vec::with_capacity(tests.len());
    for test in tests {
        let started = Instant::now();
        let (outcome, gated) = match gate(test, &ctx.config) {
            Some(reason) => (Outcome::Skip(reason), true),
            None => (run_one(test, ctx.clone()).await, false),
        };
        let record = Record {
            id: test.id.clone(),
            section: test.section.clone(),
            summary: test.summary.clone(),
            outcome,
            duration: started.elapsed(),
            gated,
        };
        each(&record);
        records.push(record);
    }
    records
}

async fn run_one(test: &TestCase, ctx: Arc<Ctx>) -> Outcome {
    let limit = ctx.config.test_timeout;
    // A task of its own: a panic in a body is that test's error, not the run's.
    let handle = tokio::spawn(test.start(ctx));
    let abort = handle.abort_handle();
    match tokio::time::timeout(limit, handle).await {
        Ok(Ok(Ok(outcome))) => outcome,
        Ok(Ok(Err(e))) => Outcome::Error(e.to_string()),
        Ok(Err(join)) => Outcome::Error(format!("the test panicked: {join}")),
        Err(_) => {
            abort.abort();
            Outcome::Error(format!("timed out after {limit:?}"))
        }
    }
}
