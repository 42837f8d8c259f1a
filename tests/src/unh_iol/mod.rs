//! riscsi's coverage of the UNH-IOL iSCSI initiator test plans.
//!
//! The plans' items live in one table per plan (`ffp`, `login`,
//! `chap`), each item either testable or not applicable with the reason.
//! The tests say what they cover themselves, beside their code, with a line
//! in their doc comment:
//!
//! ```text
//! /// UNH-IOL: FFP #3.1, Login #4.2
//! ```
//!
//! [`scan`] collects those tags from the workspace sources, and [`render`]
//! turns plans and tags into CONFORMANCE.md; the `conformance_matrix` test
//! checks the committed file is current and every tag is sound.

mod chap;
mod error;
mod ffp;
mod login;
mod render;
mod scan;

pub use error::MatrixError;
pub use render::{Totals, render, totals};
pub use scan::{Citation, scan};

/// The plans, in the order CONFORMANCE.md shows them.
pub const PLANS: &[Plan] = &[ffp::PLAN, login::PLAN, chap::PLAN];

/// One UNH-IOL test plan.
#[derive(Debug)]
pub struct Plan {
    /// How tags name the plan: `FFP`, `Login`, `CHAP`.
    pub tag: &'static str,
    pub title: &'static str,
    /// Which version, and how complete our list of its items is.
    pub source: &'static str,
    pub items: &'static [Item],
}

impl Plan {
    pub fn item(&self, number: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.number == number)
    }
}

/// One test of a plan, by the plan's number.
#[derive(Debug)]
pub struct Item {
    pub number: &'static str,
    /// What it checks, in our words.
    pub title: &'static str,
    /// The RFC 7143 sections it rests on.
    pub rfc: &'static str,
    /// Why riscsi cannot be tested on it, when it cannot.
    pub not_applicable: Option<&'static str>,
}

impl Item {
    pub const fn new(number: &'static str, title: &'static str, rfc: &'static str) -> Item {
        Item {
            number,
            title,
            rfc,
            not_applicable: None,
        }
    }

    pub const fn not_applicable(self, reason: &'static str) -> Item {
        Item {
            not_applicable: Some(reason),
            ..self
        }
    }
}

/// Finds the plan a tag names.
pub fn plan(tag: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|plan| plan.tag == tag)
}

/// Every way the tags disagree with the plans: unknown items, tags on
/// not-applicable items, duplicate numbers in a plan.
pub fn check(citations: &[Citation]) -> Vec<MatrixError> {
    let mut problems = Vec::new();
    for plan in PLANS {
        for (i, item) in plan.items.iter().enumerate() {
            if plan.items[..i]
                .iter()
                .any(|other| other.number == item.number)
            {
                problems.push(MatrixError::DuplicateItem {
                    plan: plan.tag,
                    number: item.number,
                });
            }
        }
    }
    for c in citations {
        match plan(&c.plan).and_then(|p| p.item(&c.number)) {
            None => problems.push(MatrixError::UnknownItem {
                citation: c.to_string(),
            }),
            Some(item) if item.not_applicable.is_some() => {
                problems.push(MatrixError::TaggedNotApplicable {
                    citation: c.to_string(),
                })
            }
            Some(_) => {}
        }
    }
    problems
}
