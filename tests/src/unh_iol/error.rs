//! What can be wrong with the coverage tags.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A tag line that does not parse.
    #[error(
        "{path}:{line}: malformed UNH-IOL tag {text:?} (expected e.g. `/// UNH-IOL: FFP #3.1, Login #4.2`)"
    )]
    Malformed {
        path: String,
        line: usize,
        text: String,
    },

    /// A tag not followed by a test function.
    #[error("{path}:{line}: UNH-IOL tag is not on a #[test] or #[tokio::test] function")]
    NotOnATest { path: String, line: usize },

    #[error("{citation}: no such item in the plan")]
    UnknownItem { citation: String },

    #[error("{citation}: the item is marked not applicable, yet a test claims it")]
    TaggedNotApplicable { citation: String },

    #[error("{plan} #{number} is listed twice")]
    DuplicateItem {
        plan: &'static str,
        number: &'static str,
    },
}
