//! The UNH-IOL "Login Phase Test Suite for iSCSI Initiators", numbered as
//! the plan numbers them, described in our own words.

use super::{Item, Plan};

pub const PLAN: Plan = Plan {
    tag: "Login",
    title: "Login Phase Test Suite for iSCSI Initiators",
    source: "version 3.0 (table of contents); the contents we could read stop at #23.1, whose \
             title is cut after \"Tar\" (we cover every target key it can name), so later \
             items, if any, are not listed",
    items: &[
        Item::new("1.1", "a plain login reaches full feature phase", "6.3"),
        Item::new(
            "2.1",
            "TSIH is 0 in the leading login and the target's TSIH is used after",
            "11.12, 11.13",
        ),
        Item::new(
            "2.2",
            "a final Login Response without a valid TSIH is refused",
            "11.13",
        ),
        Item::new(
            "2.3",
            "TSIH of the session on a second connection's login",
            "11.12",
        )
        .not_applicable("riscsi offers MaxConnections=1: it never adds a connection to a session"),
        Item::new(
            "3.1",
            "the T bit and CSG/NSG move the login through its stages",
            "11.12, 6.3",
        ),
        Item::new(
            "3.2",
            "a target holding the T bit back is answered until it lets the login on",
            "6.3, 11.13",
        ),
        Item::new(
            "4.1",
            "a first Login Response with StatSN 0 is acknowledged (ExpStatSN)",
            "11.12, 4.2.2.2",
        ),
        Item::new(
            "4.2",
            "a first Login Response with a non-zero StatSN is acknowledged",
            "11.12, 4.2.2.2",
        ),
        Item::new(
            "5.1",
            "ExpStatSN acknowledges the last StatSN through the login",
            "11.12",
        ),
        Item::new("6.1", "no key is negotiated twice", "6.2"),
        Item::new(
            "6.2",
            "a target answering ImmediateData twice, in separate PDUs, is refused",
            "6.2",
        ),
        Item::new("6.3", "a key twice in the same PDU is refused", "6.2, 6.1"),
        Item::new(
            "7.1",
            "Login Request fields (version, ISID, CID, CmdSN, names)",
            "11.12",
        ),
        Item::new(
            "7.2",
            "list-valued keys are offered as lists and answered from them",
            "6.2.1",
        ),
        Item::new(
            "7.3",
            "an AuthMethod answer that was not offered is refused",
            "12.1, 6.2.1",
        ),
        Item::new(
            "7.4",
            "a FirstBurstLength answer above the offer is refused",
            "13.14, 6.2.2",
        ),
        Item::new(
            "7.5",
            "an ImmediateData answer that is not Yes or No is refused",
            "13.11, 6.2.2",
        ),
        Item::new(
            "7.6",
            "an unknown key from the target gets NotUnderstood",
            "6.2",
        ),
        Item::new(
            "8.1",
            "a PDU that is not a Login Response during login ends the login",
            "6.3, 7.7",
        ),
        Item::new("9.1", "HeaderDigest and DataDigest are offered", "13.1"),
        Item::new("9.2", "the target's digest answers are applied", "13.1"),
        Item::new("9.3", "CRC32C digests work once agreed", "13.1, 11.2.1"),
        Item::new("10.1", "MaxConnections", "13.2"),
        Item::new(
            "11.1",
            "InitiatorName and TargetName in the first request",
            "13.4, 13.5, 6.3.1",
        ),
        Item::new(
            "12.1",
            "marker keys (obsolete in RFC 7143) are refused or answered No",
            "13",
        ),
        Item::new(
            "13.1",
            "Boolean keys: the OR and AND result functions",
            "6.2.2",
        ),
        Item::new("13.2", "a legal Boolean answer is taken", "6.2.2"),
        Item::new("13.3", "an illegal Boolean answer is refused", "6.2.2"),
        Item::new(
            "14.1",
            "MaxRecvDataSegmentLength is declared and the target's is obeyed",
            "13.12",
        ),
        Item::new(
            "15.1",
            "MaxBurstLength: the minimum of both offers",
            "13.13",
        ),
        Item::new("16.1", "FirstBurstLength below MaxBurstLength", "13.14"),
        Item::new(
            "16.2",
            "FirstBurstLength above MaxBurstLength is never used",
            "13.14",
        ),
        Item::new("16.3", "FirstBurstLength offered by the initiator", "13.14"),
        Item::new("17.1", "DefaultTime2Retain", "13.16"),
        Item::new("18.1", "DefaultTime2Wait", "13.15"),
        Item::new("19.1", "MaxOutstandingR2T", "13.17"),
        Item::new("20.1", "ErrorRecoveryLevel", "13.20"),
        Item::new("21.1", "SessionType (Normal and Discovery)", "13.21"),
        Item::new("22.1", "AuthMethod", "12.1"),
        Item::new(
            "23.1",
            "a \"Tar...\" key (the title is cut there in the contents we read): the target's \
             declarations TargetAlias, TargetPortalGroupTag and TargetAddress",
            "13.6, 13.8, 13.9",
        ),
    ],
};
