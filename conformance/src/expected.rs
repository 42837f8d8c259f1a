//! Expected-results files: the known deviations of one target, each with
//! its explanation, so that a run matches them exactly or fails. A test
//! not listed is expected to pass; a new failure and an unexpected pass
//! both count as mismatches, which is how a fixed deviation gets noticed.
//!
//! The format is one entry per line, `#` comments and blank lines ignored:
//!
//! ```text
//! # tgtd 1.0.85
//! login.chap.sha256   fail   tgtd numbers SHA-1 as CHAP_A 7 (IANA: 7 is SHA-256)
//! scsi.unmap.basic    skip   no thin provisioning on a plain file backing store
//! ```

use std::collections::HashMap;

use crate::outcome::Verdict;
use crate::runner::Record;

/// One listed deviation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The test id.
    pub id: String,
    /// The verdict expected instead of a pass.
    pub verdict: Verdict,
    /// Why this target behaves so.
    pub explanation: String,
    /// Where it is in the file.
    pub line: usize,
}

/// A file's entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    entries: Vec<Expectation>,
}

/// A malformed expected-results file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// The line number (1-based).
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A difference between the run and the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The test id.
    pub id: String,
    /// What the file says (pass when unlisted).
    pub expected: Verdict,
    /// What happened (`None`: the listed test does not exist).
    pub actual: Option<Verdict>,
    /// The test's reason, or the file's explanation for an unknown id.
    pub detail: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.actual {
            None => write!(
                f,
                "{}: listed as {} but there is no such test",
                self.id, self.expected
            ),
            Some(Verdict::Pass) if self.expected != Verdict::Pass => write!(
                f,
                "{}: expected failure now passes (listed as {}: {}); remove it from the expected-results file",
                self.id, self.expected, self.detail
            ),
            Some(actual) => {
                write!(f, "{}: expected {}, got {}", self.id, self.expected, actual)?;
                if !self.detail.is_empty() {
                    write!(f, " ({})", self.detail)?;
                }
                Ok(())
            }
        }
    }
}

impl Expectations {
    /// Parses a file's text.
    pub fn parse(text: &str) -> Result<Expectations, ParseError> {
        let mut entries: Vec<Expectation> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            // Columns are aligned with any run of blanks.
            let (id, rest) = content
                .split_once(char::is_whitespace)
                .unwrap_or((content, ""));
            let rest = rest.trim_start();
            let (verdict_word, explanation) =
                rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let id = id.to_owned();
            let explanation = explanation.trim().to_owned();
            let verdict = Verdict::parse(verdict_word).ok_or_else(|| ParseError {
                line,
                reason: format!("{verdict_word:?} is not pass, fail, skip or error"),
            })?;
            if verdict != Verdict::Pass && explanation.is_empty() {
                return Err(ParseError {
                    line,
                    reason: format!("{id}: a deviation needs its explanation"),
                });
            }
            if entries.iter().any(|e| e.id == id) {
                return Err(ParseError {
                    line,
                    reason: format!("{id} is listed twice"),
                });
            }
            entries.push(Expectation {
                id,
                verdict,
                explanation,
                line,
            });
        }
        Ok(Expectations { entries })
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[Expectation] {
        &self.entries
    }

    /// The entry for `id`.
    pub fn get(&self, id: &str) -> Option<&Expectation> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// What differs. `known` holds every test id of the suite: an entry
    /// naming none of them is a mismatch (a renamed test must not leave a
    /// stale line behind). Records skipped by the run's own options are
    /// not compared, nor entries for tests this run did not select.
    pub fn compare(&self, records: &[Record], known: &[String]) -> Vec<Mismatch> {
        let mut out = Vec::new();
        for e in &self.entries {
            if !known.iter().any(|k| k == &e.id) {
                out.push(Mismatch {
                    id: e.id.clone(),
                    expected: e.verdict,
                    actual: None,
                    detail: e.explanation.clone(),
                });
            }
        }
        let listed: HashMap<&str, &Expectation> =
            self.entries.iter().map(|e| (e.id.as_str(), e)).collect();
        for r in records.iter().filter(|r| !r.gated) {
            let entry = listed.get(r.id.as_str());
            let expected = entry.map_or(Verdict::Pass, |e| e.verdict);
            let actual = r.outcome.verdict();
            if actual != expected {
                let detail = match (actual, entry) {
                    (Verdict::Pass, Some(e)) => e.explanation.clone(),
                    _ => r.outcome.reason().to_owned(),
                };
                out.push(Mismatch {
                    id: r.id.clone(),
                    expected,
                    actual: Some(actual),
                    detail,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::Outcome;

    fn record(id: &str, outcome: Outcome, gated: bool) -> Record {
        Record {
            id: id.into(),
            section: String::new(),
            summary: String::new(),
            outcome,
            duration: Duration::ZERO,
            gated,
        }
    }

    #[test]
    fn parse_and_compare() {
        let file =
            "# comment\n\nlogin.a    fail   known: numbers SHA-1 as 7\nscsi.b skip no UNMAP\n";
        let e = Expectations::parse(file).unwrap();
        assert_eq!(e.entries().len(), 2);
        assert_eq!(e.get("login.a").unwrap().line, 3);
        let known: Vec<String> = ["login.a", "scsi.b", "ff.c", "ff.d"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let same = [
            record("login.a", Outcome::Fail("x".into()), false),
            record("scsi.b", Outcome::Skip("y".into()), false),
            record("ff.c", Outcome::Pass, false),
            record("ff.d", Outcome::Skip("no --dataloss".into()), true),
        ];
        assert!(e.compare(&same, &known).is_empty());
        let changed = [
            record("login.a", Outcome::Pass, false),
            record("ff.c", Outcome::Fail("new".into()), false),
        ];
        let m = e.compare(&changed, &known);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].to_string(),
            "login.a: expected failure now passes (listed as fail: known: numbers SHA-1 as 7); remove it from the expected-results file"
        );
        assert_eq!(m[1].to_string(), "ff.c: expected pass, got fail (new)");
        let stale = Expectations::parse("gone.x.y fail old\n").unwrap();
        assert_eq!(stale.compare(&[], &known).len(), 1);
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(Expectations::parse("a.b.c maybe why\n").is_err());
        assert!(Expectations::parse("a.b.c fail\n").is_err());
        assert!(Expectations::parse("a.b.c fail x\na.b.c skip y\n").is_err());
    }
}
