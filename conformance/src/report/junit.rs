//! JUnit XML, the format CI systems read: one `<testsuite>` per family,
//! one `<testcase>` per test, `<skipped>` for skips (never counted as
//! passes), `<failure>` and `<error>` with the reason.
//!
//! Written by hand rather than through a crate: the format is a dozen
//! elements and attributes, and escaping five characters is all it needs;
//! a dependency would bring more than it saves.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Counts;
use crate::outcome::Outcome;
use crate::runner::Record;

/// Describes the run in `<properties>`.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// `name=value` pairs: target, portals, initiator, options.
    pub properties: Vec<(String, String)>,
}

/// The whole document.
pub fn render(records: &[Record], info: &RunInfo) -> String {
    let mut families: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in records {
        families
            .entry(r.id.split('.').next().unwrap_or_default())
            .or_default()
            .push(r);
    }
    let all = Counts::of(records);
    let total_time: f64 = records.iter().map(|r| r.duration.as_secs_f64()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"riscsi conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        all.total(),
        all.fail,
        all.error,
        all.skip,
        total_time
    );
    for (family, rs) in &families {
        let c = Counts::of(rs.iter().copied());
        let time: f64 = rs.iter().map(|r| r.duration.as_secs_f64()).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(family),
            c.total(),
            c.fail,
            c.error,
            c.skip,
            time
        );
        if !info.properties.is_empty() {
            out.push_str("    <properties>\n");
            for (name, value) in &info.properties {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    escape(name),
                    escape(value)
                );
            }
            out.push_str("    </properties>\n");
        }
        for r in rs {
            testcase(&mut out, r);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, r: &Record) {
    let classname = match r.id.rmatch_indices('.').next() {
        Some((i, _)) => &r.id[..i],
        None => &r.id,
    };
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
        escape(&r.id),
        escape(classname),
        r.duration.as_secs_f64()
    );
    let (element, reason) = match &r.outcome {
        Outcome::Pass => {
            let _ = writeln!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>",
                escape(&r.section)
            );
            return;
        }
        Outcome::Fail(reason) => ("failure", reason),
        Outcome::Skip(reason) => ("skipped", reason),
        Outcome::Error(reason) => ("error", reason),
    };
    let _ = writeln!(
        out,
        ">\n      <{element} message=\"{}\">{}: {}</{element}>\n    </testcase>",
        escape(reason),
        escape(&r.section),
        escape(reason)
    );
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry at
/// all (most control characters) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(id: &str, outcome: Outcome) -> Record {
        Record {
            id: id.into(),
            section: "RFC 7143 §13.13".into(),
            summary: String::new(),
            outcome,
            duration: Duration::from_millis(5),
            gated: false,
        }
    }

    #[test]
    fn parses_and_counts_skips_as_skips() {
        let records = [
            record("login.keys.a", Outcome::Pass),
            record(
                "login.keys.b",
                Outcome::Skip("not <offered> & \"so\"\u{1}".into()),
            ),
            record("scsi.read.c", Outcome::Fail("got 24h/00h".into())),
            record("scsi.read.d", Outcome::Error("timed out".into())),
        ];
        let info = RunInfo {
            properties: vec![("target".into(), "iqn.x:y".into())],
        };
        let xml = render(&records, &info);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("tests"), Some("4"));
        assert_eq!(root.attribute("skipped"), Some("1"));
        assert_eq!(root.attribute("failures"), Some("1"));
        assert_eq!(root.attribute("errors"), Some("1"));
        let skipped: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("skipped"))
            .collect();
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            skipped[0].attribute("message"),
            Some("not <offered> & \"so\"\u{fffd}")
        );
        let suites: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[0].attribute("name"), Some("login"));
        let case = doc
            .descendants()
            .find(|n| n.attribute("name") == Some("scsi.read.c"))
            .unwrap();
        assert_eq!(case.attribute("classname"), Some("scsi.read"));
        assert!(case.children().any(|n| n.has_tag_name("failure")));
    }
}
