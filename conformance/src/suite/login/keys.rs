//! Every negotiable RFC 7143 §13 key offered at its bounds, at its default
//! and out of range: one test per key per case, generated from a table.
//! An offer inside the range must be answered with a value the key's result
//! function allows (§6.2.2, §13); an offer outside it must be answered
//! `Reject` or end the login (§6.2.1, §6.3), never be taken as given.

use std::sync::Arc;

use crate::context::Ctx;
use crate::outcome::{TestResult, fail, pass};
use crate::probe::LoginEnd;
use crate::probe::negotiated::parse_number;
use crate::registry::TestCase;

/// How the target must combine our offer with its own value.
#[derive(Clone, Copy, Debug)]
enum Rule {
    /// The answer is at most the offer (§13: "Min").
    Min,
    /// The answer is at least the offer ("Max").
    Max,
    /// Boolean OR: an offered Yes must be answered Yes.
    Or,
    /// Boolean AND: an offered No must be answered No.
    And,
    /// A list: the answer is one of the offered values.
    List,
    /// A declaration: no answer is due; the login must go on.
    Declare,
}

/// One negotiable key.
#[derive(Clone, Copy, Debug)]
struct Key {
    name: &'static str,
    section: &'static str,
    rule: Rule,
    /// Numeric keys: the range.
    range: Option<(u64, u64)>,
    default: &'static str,
}

const fn num(
    name: &'static str,
    section: &'static str,
    rule: Rule,
    min: u64,
    max: u64,
    default: &'static str,
) -> Key {
    Key {
        name,
        section,
        rule,
        range: Some((min, max)),
        default,
    }
}

const fn flag(name: &'static str, section: &'static str, rule: Rule, default: &'static str) -> Key {
    Key {
        name,
        section,
        rule,
        range: None,
        default,
    }
}

const MAX_24: u64 = (1 << 24) - 1;

const KEYS: &[Key] = &[
    num("MaxConnections", "RFC 7143 §13.2", Rule::Min, 1, 65535, "1"),
    num(
        "MaxRecvDataSegmentLength",
        "RFC 7143 §13.12",
        Rule::Declare,
        512,
        MAX_24,
        "8192",
    ),
    num(
        "MaxBurstLength",
        "RFC 7143 §13.13",
        Rule::Min,
        512,
        MAX_24,
        "262144",
    ),
    num(
        "FirstBurstLength",
        "RFC 7143 §13.14",
        Rule::Min,
        512,
        MAX_24,
        "65536",
    ),
    num(
        "DefaultTime2Wait",
        "RFC 7143 §13.15",
        Rule::Max,
        0,
        3600,
        "2",
    ),
    num(
        "DefaultTime2Retain",
        "RFC 7143 §13.16",
        Rule::Min,
        0,
        3600,
        "20",
    ),
    num(
        "MaxOutstandingR2T",
        "RFC 7143 §13.17",
        Rule::Min,
        1,
        65535,
        "1",
    ),
    num(
        "ErrorRecoveryLevel",
        "RFC 7143 §13.20",
        Rule::Min,
        0,
        2,
        "0",
    ),
    flag("InitialR2T", "RFC 7143 §13.10", Rule::Or, "Yes"),
    flag("ImmediateData", "RFC 7143 §13.11", Rule::And, "Yes"),
    flag("DataPDUInOrder", "RFC 7143 §13.18", Rule::Or, "Yes"),
    flag("DataSequenceInOrder", "RFC 7143 §13.19", Rule::Or, "Yes"),
    flag("HeaderDigest", "RFC 7143 §13.1", Rule::List, "None"),
    flag("DataDigest", "RFC 7143 §13.1", Rule::List, "None"),
];

/// What an offer must lead to.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Accepted, with an answer the rule allows.
    Accept,
    /// `Reject`, or the login ends.
    Refuse,
}

/// The cases of one key: (case name, offered value, what must follow).
fn cases(key: &Key) -> Vec<(&'static str, String, Want)> {
    let mut out = Vec::new();
    match (key.range, key.rule) {
        (Some((min, max)), _) => {
            out.push(("min", min.to_string(), Want::Accept));
            out.push(("max", max.to_string(), Want::Accept));
            out.push(("default", key.default.to_owned(), Want::Accept));
            out.push(("hex", format!("0x{max:x}"), Want::Accept));
            if min > 0 {
                out.push(("below_min", (min - 1).to_string(), Want::Refuse));
            }
            out.push(("above_max", (max + 1).to_string(), Want::Refuse));
            out.push(("not_a_number", "many".to_owned(), Want::Refuse));
            out.push(("empty", String::new(), Want::Refuse));
        }
        (None, Rule::List) => {
            out.push(("none", "None".to_owned(), Want::Accept));
            out.push(("crc32c_none", "CRC32C,None".to_owned(), Want::Accept));
            out.push(("none_crc32c", "None,CRC32C".to_owned(), Want::Accept));
            out.push(("unknown_then_none", "X-bogus,None".to_owned(), Want::Accept));
            out.push(("unknown_only", "MD5".to_owned(), Want::Refuse));
        }
        (None, _) => {
            out.push(("yes", "Yes".to_owned(), Want::Accept));
            out.push(("no", "No".to_owned(), Want::Accept));
            out.push(("invalid", "Maybe".to_owned(), Want::Refuse));
            out.push(("lowercase", "yes".to_owned(), Want::Refuse));
        }
    }
    out
}

/// The generated tests.
pub fn tests() -> Vec<TestCase> {
    let mut out = Vec::new();
    for key in KEYS {
        for (case, value, want) in cases(key) {
            let id = format!("login.key.{}_{case}", snake(key.name));
            let summary = match want {
                Want::Accept => format!(
                    "{}={value:?} is accepted and answered as §13 allows",
                    key.name
                ),
                Want::Refuse => format!("{}={value:?} is answered Reject or refused", key.name),
            };
            let key = *key;
            out.push(TestCase::new(id, key.section, summary, move |ctx| {
                let value = value.clone();
                async move { offer(ctx, key, value, want).await }
            }));
        }
    }
    out
}

/// `MaxRecvDataSegmentLength` -> `max_recv_data_segment_length`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    let bytes = name.as_bytes();
    for (i, &c) in bytes.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (bytes[i - 1].is_ascii_lowercase() || bytes[i - 1].is_ascii_digit());
            let next_lower = bytes.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && bytes[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase() as char);
        } else {
            out.push(c as char);
        }
    }
    out.replace("r2_t", "r2t")
}

async fn offer(ctx: Arc<Ctx>, key: Key, value: String, want: Want) -> TestResult {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep).set(key.name, &value);
    if let Some(first) = first_burst_within(key, &value) {
        spec = spec.set("FirstBurstLength", &first);
    }
    let mut probe = ctx.connect(&ep).await?;
    let report = probe.login(&spec).await?;
    let answer = report.answer(key.name).map(str::to_owned);
    match want {
        Want::Refuse => {
            if answer.as_deref() == Some("Reject") {
                if report.ok() {
                    ctx.close(probe).await;
                }
                return pass();
            }
            match &report.end {
                LoginEnd::Refused(status) if status.class >= 2 => return pass(),
                LoginEnd::Broken(_) => return pass(),
                LoginEnd::Refused(status) => {
                    return fail(format!("{}={value:?} led to {status}", key.name));
                }
                LoginEnd::Stopped(why) => return fail(format!("login stopped: {why}")),
                LoginEnd::FullFeature => {}
            }
            ctx.close(probe).await;
            match answer {
                Some(a) => fail(format!(
                    "{}={value:?} is outside RFC 7143's range, yet the target answered {a:?} and the login completed",
                    key.name
                )),
                None => fail(format!(
                    "{}={value:?} is outside RFC 7143's range, yet the target sent no Reject and the login completed",
                    key.name
                )),
            }
        }
        Want::Accept => {
            if !report.ok() {
                return fail(format!(
                    "{}={value:?} is valid, but {}",
                    key.name,
                    report.describe()
                ));
            }
            let verdict = judge(key, &value, answer.as_deref());
            // The session must work with what was agreed (digests included).
            let ping = probe
                .ping(true, bytes::Bytes::from_static(b"conformance"))
                .await;
            ctx.close(probe).await;
            if let Err(problem) = verdict {
                return fail(problem);
            }
            match ping {
                Ok(nop) if &nop.data[..] == b"conformance" => pass(),
                Ok(_) => fail("after the login, a NOP-Out ping was answered without its data"),
                Err(e) => fail(format!("after the login, a ping failed: {e}")),
            }
        }
    }
}

/// The FirstBurstLength to offer beside a valid MaxBurstLength below
/// FirstBurstLength's default (65536): RFC 7143 §13.14 forbids
/// FirstBurstLength above MaxBurstLength, so the default alone would make
/// the offer invalid (istgt 0.4 resets the connection over it).
fn first_burst_within(key: Key, value: &str) -> Option<String> {
    let n: u64 = value.parse().ok()?;
    let in_range = key.range.is_some_and(|(min, _)| n >= min);
    (key.name == "MaxBurstLength" && in_range && n < 65536).then(|| n.to_string())
}

/// Whether the answer to a valid offer is one the rule allows.
fn judge(key: Key, offer: &str, answer: Option<&str>) -> Result<(), String> {
    let name = key.name;
    if let Rule::Declare = key.rule {
        // The target declares its own value, or none: both are fine, but a
        // Reject of a valid declaration is not.
        return match answer {
            Some("Reject") | Some("NotUnderstood") | Some("Irrelevant") => Err(format!(
                "{name}={offer:?} is valid, the target answered {answer:?}"
            )),
            _ => Ok(()),
        };
    }
    let Some(answer) = answer else {
        return Err(format!(
            "{name} was offered, the target did not answer it (§6.2: the responder MUST answer)"
        ));
    };
    match key.rule {
        Rule::Min | Rule::Max => {
            let (min, max) = key.range.unwrap_or((0, u64::MAX));
            let ours = parse_number(offer).unwrap_or(0);
            let theirs = parse_number(answer)
                .ok_or_else(|| format!("{name}={offer}: the answer {answer:?} is not a number"))?;
            if !(min..=max).contains(&theirs) {
                return Err(format!(
                    "{name}={offer}: the answer {theirs} is outside {min}..{max}"
                ));
            }
            match key.rule {
                Rule::Min if theirs > ours => Err(format!(
                    "{name} is negotiated by Min: offered {ours}, the answer {theirs} is larger"
                )),
                Rule::Max if theirs < ours => Err(format!(
                    "{name} is negotiated by Max: offered {ours}, the answer {theirs} is smaller"
                )),
                _ => Ok(()),
            }
        }
        Rule::Or | Rule::And => {
            if answer != "Yes" && answer != "No" {
                return Err(format!(
                    "{name}={offer}: the answer {answer:?} is neither Yes nor No"
                ));
            }
            match (key.rule, offer) {
                (Rule::Or, "Yes") if answer != "Yes" => Err(format!(
                    "{name} is negotiated by OR: offered Yes, answered {answer}"
                )),
                (Rule::And, "No") if answer != "No" => Err(format!(
                    "{name} is negotiated by AND: offered No, answered {answer}"
                )),
                _ => Ok(()),
            }
        }
        Rule::List => {
            if offer.split(',').any(|v| v == answer) && !answer.starts_with("X-") {
                Ok(())
            } else {
                Err(format!(
                    "{name}={offer}: the answer {answer:?} is not one of the offered values"
                ))
            }
        }
        Rule::Declare => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_rules() {
        assert_eq!(
            snake("MaxRecvDataSegmentLength"),
            "max_recv_data_segment_length"
        );
        assert_eq!(snake("MaxOutstandingR2T"), "max_outstanding_r2t");
        assert_eq!(snake("DataPDUInOrder"), "data_pdu_in_order");
        assert_eq!(snake("DefaultTime2Wait"), "default_time2_wait");
        let burst = KEYS[2];
        assert!(judge(burst, "4096", Some("4096")).is_ok());
        assert!(judge(burst, "4096", Some("8192")).is_err());
        assert!(judge(burst, "4096", Some("100")).is_err());
        assert!(judge(burst, "4096", None).is_err());
        let wait = KEYS[4];
        assert!(judge(wait, "2", Some("1")).is_err());
        let r2t = KEYS[8];
        assert!(judge(r2t, "Yes", Some("No")).is_err());
        assert!(judge(r2t, "No", Some("Yes")).is_ok());
        let imm = KEYS[9];
        assert!(judge(imm, "No", Some("Yes")).is_err());
        let hd = KEYS[12];
        assert!(judge(hd, "None,CRC32C", Some("CRC32C")).is_ok());
        assert!(judge(hd, "X-bogus,None", Some("X-bogus")).is_err());
        assert!(judge(hd, "None", Some("CRC32C")).is_err());
    }
}
