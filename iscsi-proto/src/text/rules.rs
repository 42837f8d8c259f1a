//! The result functions of RFC 7143 §6.1 and §6.2 as pure functions: what a
//! responder answers, and which answers a proposer may accept.

use super::keys::{KeyDef, ResultFunction};
use super::value::{NONE, Value};

/// A responder's decision on one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selection {
    /// The outcome both sides will use.
    Agreed(Value),
    /// No acceptable value.
    Reject,
}

/// Computes the responder's answer to `offered` given our own value, with
/// the key's result function.
///
/// - Min/Max: the smaller/larger of the two numbers.
/// - And/Or: the boolean function of the two values.
/// - FirstAcceptable: the first offered value we support; `None` is only
///   chosen when offered (RFC 7143 §6.1).
pub(crate) fn select(def: &KeyDef, offered: &Value, ours: &Value) -> Selection {
    let agreed = match (def.result, offered, ours) {
        (ResultFunction::Min, Value::Number(o), Value::Number(u)) => Value::Number(*o.min(u)),
        (ResultFunction::Max, Value::Number(o), Value::Number(u)) => Value::Number(*o.max(u)),
        (ResultFunction::And, Value::Boolean(o), Value::Boolean(u)) => Value::Boolean(*o && *u),
        (ResultFunction::Or, Value::Boolean(o), Value::Boolean(u)) => Value::Boolean(*o || *u),
        (ResultFunction::FirstAcceptable, _, _) => {
            let (Some(offered), Some(supported)) = (offered.list_items(), ours.list_items()) else {
                return Selection::Reject;
            };
            match offered.into_iter().find(|item| supported.contains(item)) {
                Some(NONE) => Value::None,
                Some(item) => Value::List(vec![item.to_owned()]),
                None => return Selection::Reject,
            }
        }
        _ => return Selection::Reject,
    };
    Selection::Agreed(agreed)
}

/// Whether our offer alone decides the outcome (RFC 7143 §6.2: AND with
/// `No`, OR with `Yes`), so that an answer is optional.
pub(crate) fn decided_by_offer(def: &KeyDef, offered: &Value) -> bool {
    matches!(
        (def.result, offered),
        (ResultFunction::And, Value::Boolean(false)) | (ResultFunction::Or, Value::Boolean(true))
    )
}

/// Checks that `answer` is an outcome the result function allows for our
/// offer. The answer has already been checked against the key's range.
/// Returns why it is illegal otherwise.
pub(crate) fn check_answer(
    def: &KeyDef,
    offered: &Value,
    answer: &Value,
) -> Result<(), &'static str> {
    match (def.result, offered, answer) {
        (ResultFunction::Min, Value::Number(o), Value::Number(a)) => {
            if a <= o {
                Ok(())
            } else {
                Err("Min answer larger than our offer")
            }
        }
        (ResultFunction::Max, Value::Number(o), Value::Number(a)) => {
            if a >= o {
                Ok(())
            } else {
                Err("Max answer smaller than our offer")
            }
        }
        (ResultFunction::And, Value::Boolean(o), Value::Boolean(a)) => {
            if *o || !*a {
                Ok(())
            } else {
                Err("AND answer Yes to our No")
            }
        }
        (ResultFunction::Or, Value::Boolean(o), Value::Boolean(a)) => {
            if !*o || *a {
                Ok(())
            } else {
                Err("OR answer No to our Yes")
            }
        }
        (ResultFunction::FirstAcceptable, _, _) => {
            let offered = offered.list_items().unwrap_or_default();
            match answer.list_items().as_deref() {
                Some([one]) if offered.contains(one) => Ok(()),
                Some([_]) => Err("list answer is not one of the offered values"),
                _ => Err("list answer must be exactly one value"),
            }
        }
        _ => Err("answer has the wrong type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::keys::lookup;
    use proptest::prelude::*;

    fn def(name: &str) -> &'static KeyDef {
        lookup(name).expect("known key")
    }

    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn numeric_functions() {
        let mbl = def("MaxBurstLength");
        assert_eq!(
            select(mbl, &Value::Number(16_777_215), &Value::Number(262_144)),
            Selection::Agreed(Value::Number(262_144))
        );
        let t2w = def("DefaultTime2Wait");
        assert_eq!(
            select(t2w, &Value::Number(2), &Value::Number(5)),
            Selection::Agreed(Value::Number(5))
        );
    }

    #[test]
    fn boolean_functions() {
        let ir2t = def("InitialR2T");
        let imm = def("ImmediateData");
        let (y, n) = (Value::Boolean(true), Value::Boolean(false));
        assert_eq!(select(ir2t, &n, &y), Selection::Agreed(y.clone()));
        assert_eq!(select(ir2t, &n, &n), Selection::Agreed(n.clone()));
        assert_eq!(select(imm, &y, &n), Selection::Agreed(n.clone()));
        assert_eq!(select(imm, &y, &y), Selection::Agreed(y.clone()));
        assert!(decided_by_offer(imm, &n));
        assert!(decided_by_offer(ir2t, &y));
        assert!(!decided_by_offer(imm, &y));
    }

    #[test]
    fn list_function() {
        let hd = def("HeaderDigest");
        assert_eq!(
            select(hd, &list(&["CRC32C", "None"]), &Value::None),
            Selection::Agreed(Value::None)
        );
        assert_eq!(
            select(hd, &list(&["CRC32C", "None"]), &list(&["None", "CRC32C"])),
            Selection::Agreed(list(&["CRC32C"]))
        );
        // None is only chosen when offered.
        assert_eq!(
            select(hd, &list(&["CRC32C"]), &Value::None),
            Selection::Reject
        );
    }

    #[test]
    fn answer_checks() {
        let mbl = def("MaxBurstLength");
        assert!(check_answer(mbl, &Value::Number(1000), &Value::Number(512)).is_ok());
        assert!(check_answer(mbl, &Value::Number(1000), &Value::Number(1001)).is_err());
        let t2w = def("DefaultTime2Wait");
        assert!(check_answer(t2w, &Value::Number(2), &Value::Number(1)).is_err());
        let imm = def("ImmediateData");
        assert!(check_answer(imm, &Value::Boolean(false), &Value::Boolean(true)).is_err());
        assert!(check_answer(imm, &Value::Boolean(true), &Value::Boolean(false)).is_ok());
        let ir2t = def("InitialR2T");
        assert!(check_answer(ir2t, &Value::Boolean(true), &Value::Boolean(false)).is_err());
        let hd = def("HeaderDigest");
        let offer = list(&["CRC32C", "None"]);
        assert!(check_answer(hd, &offer, &Value::None).is_ok());
        assert!(check_answer(hd, &offer, &list(&["CRC32C"])).is_ok());
        assert!(check_answer(hd, &list(&["CRC32C"]), &Value::None).is_err());
        assert!(check_answer(hd, &offer, &offer).is_err());
        assert!(check_answer(mbl, &Value::Number(1), &Value::Boolean(true)).is_err());
    }

    proptest! {
        // Whatever the responder selects, the proposer accepts.
        #[test]
        fn selections_always_pass_the_answer_check(o in 512u64..16_777_216, u in 512u64..16_777_216,
                                                   bo: bool, bu: bool) {
            for name in ["MaxBurstLength", "DefaultTime2Wait"] {
                let d = def(name);
                if let Selection::Agreed(a) = select(d, &Value::Number(o), &Value::Number(u)) {
                    prop_assert!(check_answer(d, &Value::Number(o), &a).is_ok());
                }
            }
            for name in ["InitialR2T", "ImmediateData"] {
                let d = def(name);
                if let Selection::Agreed(a) = select(d, &Value::Boolean(bo), &Value::Boolean(bu)) {
                    prop_assert!(check_answer(d, &Value::Boolean(bo), &a).is_ok());
                }
            }
        }
    }
}
