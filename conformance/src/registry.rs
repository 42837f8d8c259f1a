//! The catalogue: every test with its id `family.group.name`, the section
//! of RFC 7143, SPC or SBC it checks, whether it changes the LU, and its body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::context::Ctx;
use crate::outcome::TestResult;

/// A boxed test body.
pub type BoxFuture = Pin<Box<dyn Future<Output = TestResult> + Send + 'static>>;

type Body = Arc<dyn Fn(Arc<Ctx>) -> BoxFuture + Send + Sync>;

/// One test.
#[derive(Clone)]
pub struct TestCase {
    /// `family.group.name`, unique.
    pub id: String,
    /// The section it checks: `RFC 7143 §13.13`, `SBC-3 §5.11`.
    pub section: String,
    /// What it checks, in one line.
    pub summary: String,
    /// It writes to the LU, resets it or disturbs other initiators: run
    /// only with `--dataloss`.
    pub destructive: bool,
    /// It needs the second URL (the multipath family).
    pub needs_second_path: bool,
    /// It resets the LU or changes reservations, which would disturb any
    /// test running beside it: run alone, after the others.
    pub exclusive: bool,
    body: Body,
}

impl fmt::Debug for TestCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCase")
            .field("id", &self.id)
            .field("section", &self.section)
            .field("destructive", &self.destructive)
            .field("needs_second_path", &self.needs_second_path)
            .field("exclusive", &self.exclusive)
            .finish()
    }
}

impl TestCase {
    /// A test running `body`.
    pub fn new<F, Fut>(
        id: impl Into<String>,
        section: impl Into<String>,
        summary: impl Into<String>,
        body: F,
    ) -> TestCase
    where
        F: Fn(Arc<Ctx>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = TestResult> + Send + 'static,
    {
        TestCase {
            id: id.into(),
            section: section.into(),
            summary: summary.into(),
            destructive: false,
            needs_second_path: false,
            exclusive: false,
            body: Arc::new(move |ctx| Box::pin(body(ctx))),
        }
    }

    /// Marks it destructive.
    pub fn destructive(mut self) -> TestCase {
        self.destructive = true;
        self
    }

    /// Marks it as to be run alone (see [`TestCase::exclusive`]).
    pub fn alone(mut self) -> TestCase {
        self.exclusive = true;
        self
    }

    /// Marks it as needing the second URL.
    pub fn second_path(mut self) -> TestCase {
        self.needs_second_path = true;
        self
    }

    /// The family: the first part of the id.
    pub fn family(&self) -> &str {
        self.id.split('.').next().unwrap_or_default()
    }

    /// The group: `family.group`.
    pub fn group(&self) -> &str {
        match self.id.rmatch_indices('.').next() {
            Some((i, _)) => &self.id[..i],
            None => &self.id,
        }
    }

    /// Starts the body.
    pub fn start(&self, ctx: Arc<Ctx>) -> BoxFuture {
        (self.body)(ctx)
    }
}

/// Every test, family by family.
pub fn all() -> Vec<TestCase> {
    let mut tests = Vec::new();
    tests.extend(crate::suite::login::tests());
    tests.extend(crate::suite::ff::tests());
    tests.extend(crate::suite::scsi::tests());
    tests.extend(crate::suite::multipath::tests());
    tests
}

/// Whether `id` is selected by `pattern`: the whole id, a prefix ending
/// at a dot (`login`, `login.chap`), or a glob with `*`.
pub fn matches(id: &str, pattern: &str) -> bool {
    if pattern.contains('*') {
        return glob(id.as_bytes(), pattern.as_bytes());
    }
    id == pattern
        || id
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn glob(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(&text[i..], rest)),
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| t == c && glob(tail, rest)),
    }
}

/// The tests `filters` select (all when there is none).
pub fn select(tests: Vec<TestCase>, filters: &[String]) -> Vec<TestCase> {
    if filters.is_empty() {
        return tests;
    }
    tests
        .into_iter()
        .filter(|t| filters.iter().any(|f| matches(&t.id, f)))
        .collect()
}

/// One part of a run split across several targets: the tests whose
/// position in the selection is `index` modulo `count` (`--shard 2/4` is
/// index 1 of 4). Consecutive tests go to different shards, so each
/// shard gets its share of every family. Each shard needs a target of its
/// own: tests that reset the LU or change reservations run alone only
/// within their shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// Why a `--shard` value does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected K/N with 1 <= K <= N (for example 2/4), not {0:?}")]
pub struct ShardError(String);

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError(s.to_owned());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

impl Shard {
    /// The tests of `tests` that belong to this shard, in order.
    pub fn take(&self, tests: Vec<TestCase>) -> Vec<TestCase> {
        tests
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, t)| t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let tests = all();
        let mut ids: Vec<&str> = tests.iter().map(|t| t.id.as_str()).collect();
        for id in &ids {
            let parts: Vec<&str> = id.split('.').collect();
            assert!(parts.len() >= 3, "{id} is not family.group.name");
            assert!(
                ["login", "ff", "scsi", "multipath"].contains(&parts[0]),
                "{id}: unknown family"
            );
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b)),
                "{id}: use [a-z0-9_.]"
            );
        }
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate test ids");
        for t in &tests {
            assert!(
                t.section.starts_with("RFC ")
                    || t.section.starts_with("SPC")
                    || t.section.starts_with("SBC")
                    || t.section.starts_with("SAM"),
                "{}: section {:?} names no document",
                t.id,
                t.section
            );
            assert_eq!(t.needs_second_path, t.family() == "multipath", "{}", t.id);
        }
    }

    #[test]
    fn filters() {
        assert!(matches("login.chap.md5", "login"));
        assert!(matches("login.chap.md5", "login.chap"));
        assert!(matches("login.chap.md5", "login.chap.md5"));
        assert!(!matches("login.chapx.md5", "login.chap"));
        assert!(matches("login.chap.md5", "*.md5"));
        assert!(matches("login.chap.md5", "login.*.md5"));
        assert!(!matches("login.chap.sha1", "*.md5"));
    }

    #[test]
    fn shards_parse_and_split_the_selection_exactly() {
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", "", "/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?} parsed");
        }
        let everything: Vec<String> = all().into_iter().map(|t| t.id).collect();
        let mut seen: Vec<String> = Vec::new();
        for k in 1..=3 {
            let shard: Shard = format!("{k}/3").parse().unwrap();
            let part = shard.take(all());
            assert!(part.len().abs_diff(everything.len() / 3) <= 1);
            assert!(part.iter().any(|t| t.family() == "login"));
            assert!(part.iter().any(|t| t.family() == "scsi"));
            seen.extend(part.into_iter().map(|t| t.id));
        }
        seen.sort_unstable();
        let mut expected = everything.clone();
        expected.sort_unstable();
        assert_eq!(seen, expected, "every test in exactly one shard");
    }
}
