//! Collects the `/// UNH-IOL:` tags from the workspace's Rust sources.

use std::fmt;
use std::fs;
use std::path::Path;

use super::MatrixError;

/// The source trees whose tests may carry tags, relative to the workspace.
const TREES: &[&str] = &[
    "iscsi-proto/src",
    "iscsi-session/src",
    "iscsi-multipath/src",
    "nbd/src",
    "tools/src",
    "tests/src",
    "tests/tests",
];

const TAG: &str = "/// UNH-IOL:";

/// One test claiming one plan item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub plan: String,
    pub number: String,
    /// The file, relative to the workspace, with `/` separators.
    pub path: String,
    /// The test function's name.
    pub test: String,
    /// The tag's line (1-based).
    pub line: usize,
}

impl Citation {
    /// `path::test`, as CONFORMANCE.md names the test.
    pub fn test_path(&self) -> String {
        format!("{}::{}", self.path, self.test)
    }
}

impl fmt::Display for Citation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({}) claims {} #{}",
            self.path, self.line, self.test, self.plan, self.number
        )
    }
}

/// Every tag under `workspace`, in file then line order; malformed tags
/// and tags not on a test are errors.
pub fn scan(workspace: &Path) -> Result<Vec<Citation>, Vec<MatrixError>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for tree in TREES {
        collect_rust_files(&workspace.join(tree), &mut files, &mut errors);
    }
    files.sort();
    let mut citations = Vec::new();
    for file in files {
        let text = match fs::read_to_string(&file) {
            Ok(text) => text,
            Err(source) => {
                errors.push(MatrixError::Read { path: file, source });
                continue;
            }
        };
        let relative = file
            .strip_prefix(workspace)
            .unwrap_or(&file)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        scan_text(&relative, &text, &mut citations, &mut errors);
    }
    if errors.is_empty() {
        Ok(citations)
    } else {
        Err(errors)
    }
}

fn collect_rust_files(
    dir: &Path,
    files: &mut Vec<std::path::PathBuf>,
    errors: &mut Vec<MatrixError>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(MatrixError::Read {
                path: dir.to_path_buf(),
                source,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(&path, files, errors);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The tags of one file.
fn scan_text(path: &str, text: &str, citations: &mut Vec<Citation>, errors: &mut Vec<MatrixError>) {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix(TAG) else {
            continue;
        };
        let line_no = i + 1;
        let Some(items) = parse_items(rest) else {
            errors.push(MatrixError::Malformed {
                path: path.to_owned(),
                line: line_no,
                text: line.trim().to_owned(),
            });
            continue;
        };
        let Some(test) = test_after(&lines[i + 1..]) else {
            errors.push(MatrixError::NotOnATest {
                path: path.to_owned(),
                line: line_no,
            });
            continue;
        };
        for (plan, number) in items {
            citations.push(Citation {
                plan,
                number,
                path: path.to_owned(),
                test: test.clone(),
                line: line_no,
            });
        }
    }
}

/// `FFP #3.1, Login #4.2.` as (plan, number) pairs; `None` if any part
/// does not read as one.
fn parse_items(text: &str) -> Option<Vec<(String, String)>> {
    let text = text.trim().trim_end_matches('.');
    let mut items = Vec::new();
    for part in text.split(',') {
        let (plan, number) = part.trim().split_once(" #")?;
        let number = number.trim();
        let well_formed = !plan.is_empty()
            && plan.chars().all(|c| c.is_ascii_alphabetic())
            && !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !well_formed {
            return None;
        }
        items.push((plan.to_owned(), number.to_owned()));
    }
    (!items.is_empty()).then_some(items)
}

/// The name of the test function the lines after a tag declare: the rest
/// of the doc comment and the attributes come first, one of them a test
/// attribute.
fn test_after(lines: &[&str]) -> Option<String> {
    let mut is_test = false;
    for line in lines {
        let line = line.trim();
        if line.starts_with("///") || line.is_empty() {
            continue;
        }
        if line.starts_with("#[") {
            is_test |= line.starts_with("#[test]") || line.starts_with("#[tokio::test");
            continue;
        }
        let name = line
            .strip_prefix("async fn ")
            .or_else(|| line.strip_prefix("fn "))?;
        let name: String = name
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return (is_test && !name.is_empty()).then_some(name);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_with_their_test() {
        let text = "/// Does a thing.\n/// UNH-IOL: FFP #3.1, Login #4.2.\n#[tokio::test]\nasync fn a_thing() {}\n";
        let mut citations = Vec::new();
        let mut errors = Vec::new();
        scan_text("t.rs", text, &mut citations, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<_> = citations
            .iter()
            .map(|c| (c.plan.as_str(), c.number.as_str(), c.test.as_str(), c.line))
            .collect();
        assert_eq!(
            got,
            [("FFP", "3.1", "a_thing", 2), ("Login", "4.2", "a_thing", 2)]
        );
    }

    #[test]
    fn bad_tags_are_errors() {
        for text in [
            "/// UNH-IOL: FFP 3.1\n#[test]\nfn t() {}\n",
            "/// UNH-IOL:\n#[test]\nfn t() {}\n",
            "/// UNH-IOL: FFP #3.1\nfn helper() {}\n",
            "/// UNH-IOL: FFP #3.1\nconst X: u8 = 0;\n",
        ] {
            let mut citations = Vec::new();
            let mut errors = Vec::new();
            scan_text("t.rs", text, &mut citations, &mut errors);
            assert_eq!(errors.len(), 1, "{text:?}: {errors:?}");
            assert!(citations.is_empty());
        }
    }
}
