//! The UNH-IOL "CHAP Test Suite for iSCSI Initiators", numbered as the plan
//! numbers them, described in our own words. The test station plays the
//! target: the CHAP_A, CHAP_I and CHAP_C items check how the initiator
//! treats the target's choice and challenge; the CHAP_N and CHAP_R items,
//! and the "offer" and "reflect" ones, are about mutual CHAP, where the
//! initiator challenges the target and checks its answer.

use super::{Item, Plan};

pub const PLAN: Plan = Plan {
    tag: "CHAP",
    title: "CHAP Test Suite for iSCSI Initiators",
    source: "version 3.1 (table of contents); the contents we could read stop at #5.3, so \
             later items, if any, are not listed",
    items: &[
        Item::new(
            "1.1",
            "CHAP_A: the target picks one of the offered algorithms",
            "12.1.3",
        ),
        Item::new(
            "1.2.1",
            "CHAP_A: a number that was not offered is refused",
            "12.1.3",
        ),
        Item::new(
            "1.2.2",
            "CHAP_A: a value that is not a number is refused",
            "12.1.3",
        ),
        Item::new(
            "1.3",
            "CHAP_A: the algorithm out of its place in the exchange",
            "12.1.3",
        ),
        Item::new(
            "2.1",
            "CHAP_I: a valid identifier is used in the response",
            "12.1.3",
        ),
        Item::new(
            "2.2",
            "CHAP_I: an identifier outside 0..255 is refused",
            "12.1.3",
        ),
        Item::new(
            "2.3",
            "CHAP_I: the identifier out of its place in the exchange",
            "12.1.3",
        ),
        Item::new(
            "2.4",
            "CHAP_I: the same identifier on two logins (informative)",
            "12.1.3",
        ),
        Item::new(
            "2.5",
            "CHAP_I: mutual CHAP, the initiator's own identifier",
            "12.1.3",
        ),
        Item::new(
            "2.6",
            "CHAP_I: different identifiers on different logins",
            "12.1.3",
        ),
        Item::new(
            "3.1",
            "CHAP_C: a large challenge (1024 bytes) is answered",
            "12.1.3",
        ),
        Item::new("3.2", "CHAP_C: a small challenge is answered", "12.1.3"),
        Item::new(
            "3.3",
            "CHAP_C: a challenge over 1024 bytes is refused",
            "12.1.3",
        ),
        Item::new("3.4", "CHAP_C: an empty challenge is refused", "12.1.3"),
        Item::new(
            "3.5",
            "CHAP_C: the challenge out of its place in the exchange",
            "12.1.3",
        ),
        Item::new(
            "3.6.1",
            "CHAP_C: the same challenge on parallel logins (informative)",
            "12.1.3",
        ),
        Item::new(
            "3.6.2",
            "CHAP_C: the same challenge on successive logins (informative)",
            "12.1.3",
        ),
        Item::new(
            "3.6.3",
            "CHAP_C: mutual CHAP, the initiator's challenges differ on parallel logins",
            "12.1.3",
        ),
        Item::new(
            "3.6.4",
            "CHAP_C: mutual CHAP, the initiator's challenges differ on successive logins",
            "12.1.3",
        ),
        Item::new(
            "3.7",
            "CHAP_C: a target sending back the initiator's own challenge is refused",
            "12.1.3",
        ),
        Item::new(
            "3.8",
            "CHAP_C: mutual CHAP, the initiator does not send back the target's challenge",
            "12.1.3",
        ),
        Item::new(
            "4.1",
            "CHAP_N: the target's right name is accepted",
            "12.1.3",
        ),
        Item::new("4.2", "CHAP_N: a long name", "12.1.3"),
        Item::new("4.3", "CHAP_N: a short name", "12.1.3"),
        Item::new(
            "4.4",
            "CHAP_N: a name over the length limit is refused",
            "12.1.3, 6.1",
        ),
        Item::new(
            "4.5",
            "CHAP_N: the name out of its place in the exchange",
            "12.1.3",
        ),
        Item::new(
            "4.6",
            "CHAP_N: the target sending back the initiator's name",
            "12.1.3",
        ),
        Item::new("4.7", "CHAP_N: the same name on both sides", "12.1.3"),
        Item::new(
            "4.8",
            "CHAP_N: a name other than the configured one is refused",
            "12.1.3",
        ),
        Item::new(
            "5.1",
            "CHAP_R: a wrong response from the target is refused",
            "12.1.3",
        ),
        Item::new(
            "5.2",
            "CHAP_R: a response longer than the hash is refused",
            "12.1.3",
        ),
        Item::new(
            "5.3",
            "CHAP_R: a response shorter than the hash is refused",
            "12.1.3",
        ),
    ],
};
