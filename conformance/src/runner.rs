//! Runs the selected tests, each under its own timeout, and records how
//! each ended. One at a time by default; with `jobs` several at once, except
//! those marked exclusive (resets and reservations would disturb a
//! neighbour), which run alone after the others.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

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
    if let Some(p) = config
        .excluded
        .iter()
        .find(|p| crate::registry::matches(&test.id, p))
    {
        return Some(format!("excluded from this run (-x {p})"));
    }
    if test.destructive && !config.dataloss {
        return Some("destructive (writes to or resets the LU): run with --dataloss".into());
    }
    if test.needs_second_path && config.secondary.is_none() {
        return Some("needs a second URL to the same LU (multipath family)".into());
    }
    None
}

/// Runs `tests`, calling `each` as every one finishes; the records come
/// back in catalogue order. With `jobs` above 1, up to that many shared
/// tests run at once, then the exclusive ones one by one.
pub async fn run(
    config: SuiteConfig,
    tests: &[TestCase],
    mut each: impl FnMut(&Record),
) -> Vec<Record> {
    let ctx = Arc::new(Ctx::new(config));
    let jobs = ctx.config.jobs.max(1);
    let mut slots: Vec<Option<Record>> = vec![None; tests.len()];
    let record = |test: &TestCase, outcome: Outcome, duration: Duration, gated: bool| Record {
        id: test.id.clone(),
        section: test.section.clone(),
        summary: test.summary.clone(),
        outcome,
        duration,
        gated,
    };
    let mut alone = Vec::new();
    let mut running: JoinSet<(usize, Outcome, Duration)> = JoinSet::new();
    for (i, test) in tests.iter().enumerate() {
        if let Some(reason) = gate(test, &ctx.config) {
            let r = record(test, Outcome::Skip(reason), Duration::ZERO, true);
            each(&r);
            slots[i] = Some(r);
            continue;
        }
        if jobs > 1 && test.exclusive {
            alone.push(i);
            continue;
        }
        while running.len() >= jobs {
            collect(&mut running, tests, &mut slots, &mut each, &record).await;
        }
        let (test, ctx) = (test.clone(), ctx.clone());
        running.spawn(async move {
            let started = Instant::now();
            let outcome = run_one(&test, ctx).await;
            (i, outcome, started.elapsed())
        });
    }
    while !running.is_empty() {
        collect(&mut running, tests, &mut slots, &mut each, &record).await;
    }
    for i in alone {
        let started = Instant::now();
        let outcome = run_one(&tests[i], ctx.clone()).await;
        let r = record(&tests[i], outcome, started.elapsed(), false);
        each(&r);
        slots[i] = Some(r);
    }
    slots.into_iter().flatten().collect()
}

/// Waits for one running test and records it.
async fn collect(
    running: &mut JoinSet<(usize, Outcome, Duration)>,
    tests: &[TestCase],
    slots: &mut [Option<Record>],
    each: &mut impl FnMut(&Record),
    record: &impl Fn(&TestCase, Outcome, Duration, bool) -> Record,
) {
    // run_one catches panics and timeouts itself: a join error here would
    // mean the runtime is going away.
    if let Some(Ok((i, outcome, duration))) = running.join_next().await {
        let r = record(&tests[i], outcome, duration, false);
        each(&r);
        slots[i] = Some(r);
    }
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
