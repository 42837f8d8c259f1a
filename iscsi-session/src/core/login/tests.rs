//! Sans-IO tests of the login state machine: Login Responses in, Login
//! Requests out.
//!
//! Each test plays the target by hand: it builds Login Responses with
//! [`Target`] and reads our Login Requests back as key=value pairs. CHAP
//! answers are recomputed here with the digest crates directly, never with
//! `ChapAlgorithm::response`, so that a wrong formula cannot check itself.

use iscsi_proto::text::pairs::find;
use proptest::prelude::*;
use rand::SeedableRng;

use super::*;
use crate::core::config::{ChapCredentials, OperationalPreferences};
use iscsi_proto::text::{KeyValue, parse_pairs};

const TARGET: &str = "iqn.2001-04.com.example:disk1";
const INITIATOR: &str = "iqn.2024-01.io.riscsi:host1";
const USER: &str = "alice";
const SECRET: &str = "alice-secret-1";
const TARGET_USER: &str = "target-bob";
const TARGET_SECRET: &str = "bob-secret-22";
const SEED: u64 = 7;

fn config() -> SessionConfig {
    SessionConfig::new(Portal::new("192.0.2.10", 3260), TARGET, INITIATOR)
}

fn one_way_chap() -> SessionConfig {
    SessionConfig {
        chap: Some(ChapConfig::one_way(ChapCredentials::new(USER, SECRET))),
        ..config()
    }
}

fn mutual_chap() -> SessionConfig {
    SessionConfig {
        chap: Some(ChapConfig::mutual(
            ChapCredentials::new(USER, SECRET),
            ChapCredentials::new(TARGET_USER, TARGET_SECRET),
        )),
        ..config()
    }
}

/// The target's text, written byte by byte without any checks: a hostile
/// target is not bound by our encoder's limits.
fn text<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Bytes {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref().as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_ref().as_bytes());
        out.push(0);
    }
    Bytes::from(out)
}

/// The pairs of one of our Login Requests.
fn pairs(req: &LoginRequest) -> Vec<KeyValue> {
    parse_pairs(&req.data, TextLimits::DEFAULT).expect("our login text parses")
}

fn value(req: &LoginRequest, key: &str) -> Option<String> {
    find(&pairs(req), key).map(str::to_owned)
}

/// Hex as RFC 7143 §6.1 binary values write it, done here by hand.
fn hex(bytes: &[u8]) -> String {
    let digits: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("0x{digits}")
}

fn unhex(text: &str) -> Vec<u8> {
    let digits = text.strip_prefix("0x").expect("our CHAP values are 0x hex");
    assert_eq!(digits.len() % 2, 0, "odd hex digit count in {text}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// RFC 1994 §4.1: Response = H(Identifier || secret || Challenge).
fn chap_response<D: sha2::Digest>(identifier: u8, secret: &str, challenge: &[u8]) -> Vec<u8> {
    let mut hash = D::new();
    hash.update([identifier]);
    hash.update(secret.as_bytes());
    hash.update(challenge);
    hash.finalize().to_vec()
}

fn sent(step: Result<LoginStep, Error>) -> LoginRequest {
    match step {
        Ok(LoginStep::Send(req)) => req,
        other => panic!("expected a Login Request, got {other:?}"),
    }
}

fn done(step: Result<LoginStep, Error>) -> LoginDone {
    match step {
        Ok(LoginStep::Done(done)) => done,
        other => panic!("expected the end of the login, got {other:?}"),
    }
}

fn failed(step: Result<LoginStep, Error>) -> Error {
    match step {
        Err(e) => e,
        Ok(other) => panic!("expected a login failure, got {other:?}"),
    }
}

/// The target's side of one login: numbering and the response header.
struct Target {
    isid: Isid,
    stat_sn: u32,
}

impl Target {
    fn response(
        &mut self,
        csg: Stage,
        next: Option<Stage>,
        continue_: bool,
        data: Bytes,
    ) -> LoginResponse {
        let stat_sn = self.stat_sn;
        self.stat_sn += 1;
        LoginResponse {
            transit: next.is_some(),
            continue_,
            csg,
            nsg: next.unwrap_or(csg),
            version_max: ISCSI_VERSION,
            version_active: ISCSI_VERSION,
            isid: self.isid,
            tsih: 0,
            itt: Itt(0),
            stat_sn,
            exp_cmd_sn: 1,
            max_cmd_sn: 16,
            status: LoginStatus::SUCCESS,
            data,
        }
    }

    /// A complete (C=0) response.
    fn says<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        csg: Stage,
        next: Option<Stage>,
        pairs: &[(K, V)],
    ) -> LoginResponse {
        self.response(csg, next, false, text(pairs))
    }

    /// The last response: into full feature phase with a TSIH.
    fn finishes<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        tsih: u16,
        pairs: &[(K, V)],
    ) -> LoginResponse {
        LoginResponse {
            tsih,
            ..self.says(Stage::Operational, Some(Stage::FullFeature), pairs)
        }
    }

    fn refuses(&mut self, status: LoginStatus, pairs: &[(&str, &str)]) -> LoginResponse {
        LoginResponse {
            status,
            ..self.says(Stage::Security, None, pairs)
        }
    }
}

/// One login under test and the target it talks to.
struct Exchange {
    login: Login,
    target: Target,
}

impl Exchange {
    /// Starts a login; returns it with our first Login Request.
    fn start(config: SessionConfig) -> (Exchange, LoginRequest) {
        let ctx = PathContext {
            portal: config.portal.clone(),
            target: config.target_name.clone().unwrap_or_default(),
        };
        let target = Target {
            isid: config.isid(),
            stat_sn: 500,
        };
        let mut login = Login::new(Arc::new(config), ctx, 0, 1, StdRng::seed_from_u64(SEED));
        let first = login.start().expect("the first request builds");
        (Exchange { login, target }, first)
    }

    /// Starts a credentials check ([`Login::check_credentials_only`]).
    fn start_check(config: SessionConfig) -> (Exchange, LoginRequest) {
        let ctx = PathContext {
            portal: config.portal.clone(),
            target: config.target_name.clone().unwrap_or_default(),
        };
        let target = Target {
            isid: config.isid(),
            stat_sn: 500,
        };
        let mut login = Login::new(Arc::new(config), ctx, 0, 1, StdRng::seed_from_u64(SEED))
            .check_credentials_only();
        let first = login.start().expect("the first request builds");
        (Exchange { login, target }, first)
    }

    fn feed(&mut self, resp: LoginResponse) -> Result<LoginStep, Error> {
        self.login.handle_response(resp)
    }

    /// Plain login up to our operational offers: returns that request.
    fn through_security(config: SessionConfig) -> (Exchange, LoginRequest) {
        let (mut x, _) = Exchange::start(config);
        let resp = x.target.says(
            Stage::Security,
            Some(Stage::Operational),
            &[("AuthMethod", "None")],
        );
        let req = sent(x.feed(resp));
        assert_eq!(req.csg, Stage::Operational);
        (x, req)
    }

    /// CHAP login up to the target's challenge: feeds AuthMethod=CHAP, checks
    /// our CHAP_A, then feeds `challenge` and returns what that gives.
    fn challenged(
        config: SessionConfig,
        challenge: &[(&str, &str)],
    ) -> (Exchange, Result<LoginStep, Error>) {
        let (mut x, _) = Exchange::start(config);
        let resp = x
            .target
            .says(Stage::Security, None, &[("AuthMethod", "CHAP")]);
        let chap_a = sent(x.feed(resp));
        assert!(value(&chap_a, "CHAP_A").is_some(), "CHAP_A offered");
        let resp = x.target.says(Stage::Security, None, challenge);
        let step = x.feed(resp);
        (x, step)
    }
}

/// A target's answers to our operational offers: each offer echoed (the
/// first item of a list), `MaxRecvDataSegmentLength` replaced by the target's
/// own declaration, then `overrides` applied.
fn answers(offers: &LoginRequest, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pairs(offers)
        .into_iter()
        .filter(|kv| kv.key != "MaxRecvDataSegmentLength")
        .map(|kv| {
            let first = kv.value.split(',').next().unwrap_or_default().to_owned();
            (kv.key, first)
        })
        .collect();
    out.push(("MaxRecvDataSegmentLength".into(), "65536".into()));
    for (key, val) in overrides {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = (*val).to_owned(),
            None => out.push(((*key).to_owned(), (*val).to_owned())),
        }
    }
    out
}

/// RFC 7143 §6.3.1 (first request), §6.3.3 (operational stage), §13.13
/// (MaxBurstLength: Min), §13.10 (InitialR2T: Or), §13.12 (declarations).
/// UNH-IOL: Login #1.1, Login #2.1, Login #3.1, Login #4.2, Login #5.1, Login #7.1, Login #10.1, Login #11.1, Login #13.2, Login #14.1, Login #15.1, Login #16.1, Login #16.3, Login #17.1, Login #18.1, Login #19.1, Login #20.1, Login #21.1, Login #22.1
#[test]
fn plain_login_offers_config_and_computes_outcome_from_both_sides() {
    let mut cfg = config();
    cfg.operational.max_burst_length = 1_048_576;
    cfg.operational.first_burst_length = 131_072;
    cfg.operational.max_recv_data_segment_length = 131_072;
    cfg.operational.default_time2retain = 7;
    let isid = cfg.isid();
    let (mut x, first) = Exchange::start(cfg);

    assert_eq!(first.csg, Stage::Security);
    assert!(first.transit && !first.continue_);
    assert_eq!(first.nsg, Stage::Operational);
    assert_eq!((first.isid, first.tsih, first.cmd_sn), (isid, 0, 1));
    assert_eq!(value(&first, "InitiatorName").as_deref(), Some(INITIATOR));
    assert_eq!(value(&first, "SessionType").as_deref(), Some("Normal"));
    assert_eq!(value(&first, "TargetName").as_deref(), Some(TARGET));
    assert_eq!(value(&first, "AuthMethod").as_deref(), Some("None"));

    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[("AuthMethod", "None"), ("TargetPortalGroupTag", "1")],
    );
    let offers = sent(x.feed(resp));
    assert_eq!(offers.csg, Stage::Operational);
    assert!(offers.transit);
    assert_eq!(offers.nsg, Stage::FullFeature);
    // §6.3: ExpStatSN acknowledges the response just received.
    assert_eq!(offers.exp_stat_sn, 501);
    for (key, expected) in [
        // The target picks (§13.1); one that does not care picks None.
        ("HeaderDigest", "None,CRC32C"),
        ("DataDigest", "None,CRC32C"),
        ("MaxRecvDataSegmentLength", "131072"),
        ("InitialR2T", "No"),
        ("ImmediateData", "Yes"),
        ("MaxBurstLength", "1048576"),
        ("FirstBurstLength", "131072"),
        ("MaxOutstandingR2T", "1"),
        ("MaxConnections", "1"),
        ("DataPDUInOrder", "Yes"),
        ("DataSequenceInOrder", "Yes"),
        ("ErrorRecoveryLevel", "0"),
        ("DefaultTime2Wait", "2"),
        ("DefaultTime2Retain", "7"),
    ] {
        assert_eq!(value(&offers, key).as_deref(), Some(expected), "{key}");
    }

    let target_answers = answers(
        &offers,
        &[
            ("MaxBurstLength", "65536"),
            ("FirstBurstLength", "16384"),
            ("InitialR2T", "Yes"),
            ("MaxRecvDataSegmentLength", "32768"),
        ],
    );
    let last = LoginResponse {
        exp_cmd_sn: 1,
        max_cmd_sn: 40,
        ..x.target.finishes(0x1234, &target_answers)
    };
    let outcome = done(x.feed(last));
    assert_eq!(outcome.tsih, 0x1234);
    assert_eq!(outcome.chap_algorithm, None, "no CHAP");
    assert_eq!(
        (outcome.cmd_sn, outcome.exp_cmd_sn, outcome.max_cmd_sn),
        (1, 1, 40)
    );
    assert_eq!(outcome.exp_stat_sn, 502);
    let p = &outcome.params;
    assert_eq!(p.max_burst_length, 65536);
    assert_eq!(p.first_burst_length, 16384);
    assert!(p.initial_r2t, "InitialR2T is OR: the target's Yes wins");
    assert!(p.immediate_data);
    assert_eq!(p.max_recv_data_segment_length, 131_072);
    assert_eq!(p.max_xmit_data_segment_length, 32768);
    assert_eq!(p.default_time2retain, 7);
    assert_eq!(p.header_digest, Digest::None);
}

/// RFC 7143 §12.1.3: one-way CHAP with MD5.
/// UNH-IOL: Login #22.1, CHAP #1.1, CHAP #2.1
#[test]
fn one_way_chap_md5_answers_with_rfc1994_response() {
    let (mut x, first) = Exchange::start(one_way_chap());
    assert_eq!(value(&first, "AuthMethod").as_deref(), Some("CHAP,None"));
    assert!(!first.transit, "we wait for the target to pick the method");

    let resp = x
        .target
        .says(Stage::Security, None, &[("AuthMethod", "CHAP")]);
    let chap_a = sent(x.feed(resp));
    assert_eq!(value(&chap_a, "CHAP_A").as_deref(), Some("5"));
    assert!(!chap_a.transit);

    let challenge: Vec<u8> = (0u8..16).map(|b| b.wrapping_mul(37)).collect();
    let resp = x.target.says(
        Stage::Security,
        None,
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "17"),
            ("CHAP_C", &hex(&challenge)),
        ],
    );
    let answer = sent(x.feed(resp));
    assert_eq!(value(&answer, "CHAP_N").as_deref(), Some(USER));
    let response = unhex(&value(&answer, "CHAP_R").expect("CHAP_R sent"));
    assert_eq!(response, chap_response::<md5::Md5>(17, SECRET, &challenge));
    assert_eq!(response.len(), 16);
    assert!(
        value(&answer, "CHAP_I").is_none(),
        "one-way: no challenge of ours"
    );
    assert!(value(&answer, "CHAP_C").is_none());
    assert!(answer.transit);
    assert_eq!(answer.nsg, Stage::Operational);

    // The target accepts and moves on: our operational offers follow.
    let resp = x
        .target
        .says::<&str, &str>(Stage::Security, Some(Stage::Operational), &[]);
    let offers = sent(x.feed(resp));
    assert_eq!(offers.csg, Stage::Operational);
    assert!(value(&offers, "MaxBurstLength").is_some());
}

/// RFC 7143 §6.1 (binary values may be base64, `0b`) and §12.1.3.
#[test]
fn chap_challenge_in_base64_is_accepted() {
    // Bytes 0..=15 in base64, written out by hand.
    let (_, step) = Exchange::challenged(
        one_way_chap(),
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "3"),
            ("CHAP_C", "0bAAECAwQFBgcICQoLDA0ODw=="),
        ],
    );
    let answer = sent(step);
    let challenge: Vec<u8> = (0u8..16).collect();
    assert_eq!(
        unhex(&value(&answer, "CHAP_R").expect("CHAP_R sent")),
        chap_response::<md5::Md5>(3, SECRET, &challenge)
    );
}

/// RFC 7143 §12.1.3: challenges up to 1024 bytes.
/// UNH-IOL: CHAP #3.1
#[test]
fn chap_challenge_of_1024_bytes_is_accepted() {
    let challenge: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    let (_, step) = Exchange::challenged(
        one_way_chap(),
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "200"),
            ("CHAP_C", &hex(&challenge)),
        ],
    );
    let answer = sent(step);
    assert_eq!(
        unhex(&value(&answer, "CHAP_R").expect("CHAP_R sent")),
        chap_response::<md5::Md5>(200, SECRET, &challenge)
    );
}

/// Feeds a challenge with these CHAP_I and CHAP_C values; returns the error.
fn refused_challenge(identifier: &str, challenge: &str) -> Error {
    let (_, step) = Exchange::challenged(
        one_way_chap(),
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", identifier),
            ("CHAP_C", challenge),
        ],
    );
    failed(step)
}

/// CHAP_C values one byte over the limit, in hex and in base64.
fn oversized_challenges() -> [String; 2] {
    // 1025 bytes of 0x5a: 341 groups of three, then two.
    let base64 = format!("0b{}Wlo=", "Wlpa".repeat(341));
    [hex(&[0x5a; 1025]), base64]
}

const INVALID_IDENTIFIERS: [&str; 3] = ["256", "-1", "0x100"];

/// RFC 7143 §12.1.3: a challenge over 1024 bytes is refused (the login
/// fails for good), in hex and in base64 alike.
/// UNH-IOL: CHAP #3.3
#[test]
fn chap_challenge_of_1025_bytes_is_refused() {
    for challenge in oversized_challenges() {
        let err = refused_challenge("1", &challenge);
        assert!(
            err.is_permanent_login_failure(),
            "{} chars: {err:?}",
            challenge.len()
        );
    }
}

/// RFC 7143 §12.1.3: CHAP_I is one byte (0..=255).
/// UNH-IOL: CHAP #2.2
#[test]
fn chap_identifier_out_of_range_is_refused() {
    for identifier in INVALID_IDENTIFIERS {
        let err = refused_challenge(identifier, "0x0102030405060708");
        assert!(
            err.is_permanent_login_failure(),
            "CHAP_I={identifier}: {err:?}"
        );
    }
}

/// RFC 7143 §12.1.3: the refusals above are failed authentications, as
/// `Login::answer_challenge` means them to be. They come out as
/// `Error::Negotiation` today, because the key table rejects the values
/// (in `TextAssembler::push` or `Negotiation::receive`) before
/// `answer_challenge` sees them.
#[test]
fn malformed_chap_values_are_authentication_errors() {
    for challenge in oversized_challenges() {
        let err = refused_challenge("1", &challenge);
        assert!(
            matches!(err, Error::Authentication { .. }),
            "{} chars: {err:?}",
            challenge.len()
        );
    }
    for identifier in INVALID_IDENTIFIERS {
        let err = refused_challenge(identifier, "0x0102030405060708");
        assert!(
            matches!(err, Error::Authentication { .. }),
            "CHAP_I={identifier}: {err:?}"
        );
    }
}

/// The target's challenge in the mutual CHAP tests.
const MUTUAL_TARGET_CHALLENGE: &str = "0x00112233445566778899aabbccddeeff";

/// Mutual CHAP up to our answer: returns our identifier and challenge.
fn mutual_answer(config: SessionConfig) -> (Exchange, LoginRequest, u8, Vec<u8>) {
    let (x, step) = Exchange::challenged(
        config,
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "9"),
            ("CHAP_C", MUTUAL_TARGET_CHALLENGE),
        ],
    );
    let answer = sent(step);
    let identifier: u8 = value(&answer, "CHAP_I")
        .expect("mutual CHAP sends CHAP_I")
        .parse()
        .expect("CHAP_I is decimal");
    let challenge = unhex(&value(&answer, "CHAP_C").expect("mutual CHAP sends CHAP_C"));
    (x, answer, identifier, challenge)
}

/// RFC 7143 §12.1.3: mutual CHAP, the target proves itself.
/// UNH-IOL: CHAP #2.5, CHAP #4.1
#[test]
fn mutual_chap_sends_our_challenge_and_accepts_the_right_answer() {
    let (mut x, answer, identifier, challenge) = mutual_answer(mutual_chap());
    assert_eq!(value(&answer, "CHAP_N").as_deref(), Some(USER));
    assert_eq!(
        unhex(&value(&answer, "CHAP_R").expect("CHAP_R")),
        chap_response::<md5::Md5>(9, SECRET, &unhex(MUTUAL_TARGET_CHALLENGE))
    );
    assert_eq!(challenge.len(), crate::core::chap::OUR_CHALLENGE_LEN);
    assert!(answer.transit);

    let proof = hex(&chap_response::<md5::Md5>(
        identifier,
        TARGET_SECRET,
        &challenge,
    ));
    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[("CHAP_N", TARGET_USER), ("CHAP_R", proof.as_str())],
    );
    let offers = sent(x.feed(resp));
    assert_eq!(offers.csg, Stage::Operational);
    assert!(value(&offers, "MaxBurstLength").is_some());
    let last = x.target.finishes(7, &answers(&offers, &[]));
    assert_eq!(
        done(x.feed(last)).chap_algorithm,
        Some(ChapAlgorithm::Md5),
        "the algorithm the target picked is reported"
    );
}

/// RFC 7143 §12.1.3: a target that cannot prove itself is refused, and the
/// error never carries a secret.
/// UNH-IOL: CHAP #4.8, CHAP #5.1
#[test]
fn mutual_chap_refuses_a_wrong_or_missing_target_answer() {
    /// The target's last security text, from our identifier and challenge.
    type TargetText = fn(u8, &[u8]) -> Vec<(&'static str, String)>;
    let cases: [(&str, TargetText); 4] = [
        ("wrong CHAP_R", |id, ch| {
            let mut r = chap_response::<md5::Md5>(id, TARGET_SECRET, ch);
            r[0] ^= 1;
            vec![("CHAP_N", TARGET_USER.into()), ("CHAP_R", hex(&r))]
        }),
        ("CHAP_R with our own secret", |id, ch| {
            let r = chap_response::<md5::Md5>(id, SECRET, ch);
            vec![("CHAP_N", TARGET_USER.into()), ("CHAP_R", hex(&r))]
        }),
        ("wrong CHAP_N", |id, ch| {
            let r = chap_response::<md5::Md5>(id, TARGET_SECRET, ch);
            vec![("CHAP_N", "mallory".into()), ("CHAP_R", hex(&r))]
        }),
        ("missing CHAP_R", |_, _| {
            vec![("CHAP_N", TARGET_USER.into())]
        }),
    ];
    for (what, target_text) in cases {
        let (mut x, _, identifier, challenge) = mutual_answer(mutual_chap());
        let resp = x.target.says(
            Stage::Security,
            Some(Stage::Operational),
            &target_text(identifier, &challenge),
        );
        let err = failed(x.feed(resp));
        assert!(
            matches!(err, Error::Authentication { .. }),
            "{what}: {err:?}"
        );
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains(TARGET_SECRET),
            "{what}: a secret leaked into {shown}"
        );
    }
}

/// RFC 7143 §12.1.3: with mutual CHAP configured, `AuthMethod=None` is no
/// option: we offer CHAP alone and refuse a target that answers None.
#[test]
fn mutual_chap_refuses_a_target_choosing_no_authentication() {
    let (mut x, first) = Exchange::start(mutual_chap());
    assert_eq!(value(&first, "AuthMethod").as_deref(), Some("CHAP"));
    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[("AuthMethod", "None")],
    );
    let err = failed(x.feed(resp));
    assert!(err.is_permanent_login_failure(), "{err:?}");
    assert!(
        matches!(
            err,
            Error::Negotiation { .. } | Error::Authentication { .. }
        ),
        "{err:?}"
    );
}

/// RFC 7143 §12.1.3: a target replaying our own challenge (a reflection
/// attack) is refused before we answer it.
/// UNH-IOL: CHAP #3.7
#[test]
fn mutual_chap_refuses_a_reflected_challenge() {
    // The login draws its challenge from the same seeded generator.
    let ours = crate::core::chap::OurChallenge::generate(&mut StdRng::seed_from_u64(SEED));
    let (_, step) = Exchange::challenged(
        mutual_chap(),
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "1"),
            ("CHAP_C", &hex(&ours.challenge)),
        ],
    );
    let err = failed(step);
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
}

fn chap_with(algorithms: Vec<ChapAlgorithm>) -> SessionConfig {
    let mut cfg = one_way_chap();
    if let Some(chap) = cfg.chap.as_mut() {
        chap.algorithms = algorithms;
    }
    cfg
}

/// Up to our CHAP_A offer, with the configured algorithms.
fn algorithms_offered(cfg: SessionConfig) -> (Exchange, LoginRequest) {
    let (mut x, _) = Exchange::start(cfg);
    let resp = x
        .target
        .says(Stage::Security, None, &[("AuthMethod", "CHAP")]);
    let req = sent(x.feed(resp));
    (x, req)
}

/// RFC 7143 §12.1.3 and RFC 1994: CHAP_A lists our algorithms in preference
/// order; SHA-256 chosen gives a 32-byte SHA-256 response.
/// UNH-IOL: CHAP #1.1, Login #7.2
#[test]
fn chap_algorithms_are_offered_in_order_and_sha256_is_used_when_picked() {
    let all = vec![
        ChapAlgorithm::Sha256,
        ChapAlgorithm::Sha1,
        ChapAlgorithm::Md5,
    ];
    let (mut x, offer) = algorithms_offered(chap_with(all));
    assert_eq!(value(&offer, "CHAP_A").as_deref(), Some("7,6,5"));
    let challenge = [0xc3u8; 24];
    let resp = x.target.says(
        Stage::Security,
        None,
        &[
            ("CHAP_A", "7"),
            ("CHAP_I", "250"),
            ("CHAP_C", &hex(&challenge)),
        ],
    );
    let answer = sent(x.feed(resp));
    let response = unhex(&value(&answer, "CHAP_R").expect("CHAP_R"));
    assert_eq!(response.len(), 32);
    assert_eq!(
        response,
        chap_response::<sha2::Sha256>(250, SECRET, &challenge)
    );

    let (mut x, _) = algorithms_offered(chap_with(vec![ChapAlgorithm::Sha1]));
    let resp = x.target.says(
        Stage::Security,
        None,
        &[
            ("CHAP_A", "6"),
            ("CHAP_I", "4"),
            ("CHAP_C", &hex(&challenge)),
        ],
    );
    let answer = sent(x.feed(resp));
    assert_eq!(
        unhex(&value(&answer, "CHAP_R").expect("CHAP_R")),
        chap_response::<sha1::Sha1>(4, SECRET, &challenge)
    );
}

/// RFC 7143 §12.1.3: a target without any of our algorithms answers
/// CHAP_A=Reject, or (some targets) fails the login right away.
/// UNH-IOL: CHAP #1.2.1
#[test]
fn chap_algorithm_refusal_is_reported_as_such() {
    let all = || {
        chap_with(vec![
            ChapAlgorithm::Sha256,
            ChapAlgorithm::Sha1,
            ChapAlgorithm::Md5,
        ])
    };
    let (mut x, _) = algorithms_offered(all());
    let resp = x
        .target
        .says(Stage::Security, None, &[("CHAP_A", "Reject")]);
    match failed(x.feed(resp)) {
        Error::ChapAlgorithmRejected { offered, .. } => {
            assert_eq!(offered, "SHA-256,SHA-1,MD5");
        }
        other => panic!("expected ChapAlgorithmRejected, got {other:?}"),
    }

    let (mut x, _) = algorithms_offered(all());
    let resp = x.target.refuses(LoginStatus::INITIATOR_ERROR, &[]);
    let err = failed(x.feed(resp));
    assert!(
        matches!(err, Error::ChapAlgorithmRejected { .. }),
        "{err:?}"
    );

    // Picking one we did not offer is no choice at all.
    let (mut x, _) = algorithms_offered(chap_with(vec![ChapAlgorithm::Md5]));
    let resp = x.target.says(
        Stage::Security,
        None,
        &[("CHAP_A", "7"), ("CHAP_I", "1"), ("CHAP_C", "0x0102")],
    );
    assert!(x.feed(resp).is_err());
}

/// RFC 7143 §11.13.5: status 0201 is an authentication failure.
#[test]
fn authentication_failure_status_is_an_authentication_error() {
    let challenge = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let (mut x, step) = Exchange::challenged(
        one_way_chap(),
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "1"),
            ("CHAP_C", &hex(&challenge)),
        ],
    );
    sent(step);
    let resp = x.target.refuses(LoginStatus::AUTHENTICATION_FAILURE, &[]);
    let err = failed(x.feed(resp));
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(SECRET));

    // Without CHAP too: 0201 is about credentials whatever the stage.
    let (mut x, _) = Exchange::start(config());
    let resp = x.target.refuses(LoginStatus::AUTHENTICATION_FAILURE, &[]);
    let err = failed(x.feed(resp));
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
}

/// What tgtd answers (measured with tgt 1.0.85): a bare 0201 whether it does
/// not know our user name or our secret is wrong. The error names the user,
/// never the secret.
#[test]
fn a_refused_chap_response_names_our_user() {
    let (mut x, step) = Exchange::challenged(
        one_way_chap(),
        &[
            ("CHAP_A", "5"),
            ("CHAP_I", "1"),
            ("CHAP_C", "0x0102030405060708"),
        ],
    );
    sent(step);
    let resp = x.target.refuses(LoginStatus::AUTHENTICATION_FAILURE, &[]);
    let err = failed(x.feed(resp));
    assert_eq!(
        err.to_string(),
        "CHAP authentication with iqn.2001-04.com.example:disk1 at 192.0.2.10:3260 failed: \
         the target refused our user name \"alice\" or its secret (status 0201)"
    );
    assert_eq!(x.login.diagnosis(), None, "nothing left to find out");

    // Without credentials, tgtd answers our AuthMethod=None with Reject and 0201.
    let (mut x, _) = Exchange::start(config());
    let resp = x.target.refuses(
        LoginStatus::AUTHENTICATION_FAILURE,
        &[("AuthMethod", "Reject")],
    );
    let err = failed(x.feed(resp));
    assert!(
        err.to_string().ends_with(
            "the target requires authentication and no CHAP credentials were given (status 0201)"
        ),
        "{err}"
    );
    // And a target without CHAP accounts answers AuthMethod=CHAP the same way.
    let (mut x, _) = Exchange::start(mutual_chap());
    let resp = x.target.refuses(
        LoginStatus::AUTHENTICATION_FAILURE,
        &[("AuthMethod", "Reject")],
    );
    let err = failed(x.feed(resp));
    assert!(
        err.to_string().ends_with(
            "the target refused to authenticate with CHAP (status 0201): it may have no CHAP \
             account for this target"
        ),
        "{err}"
    );
}

/// Mutual CHAP sends our response and our challenge in one PDU, and tgtd
/// refuses both a wrong secret and a missing outgoing account with the same
/// bare 0201: the error says both, and the login flags the case for a
/// credentials check.
#[test]
fn a_refusal_after_our_mutual_challenge_is_flagged_for_a_check() {
    let (mut x, _, _, _) = mutual_answer(mutual_chap());
    let resp = x.target.refuses(LoginStatus::AUTHENTICATION_FAILURE, &[]);
    let err = failed(x.feed(resp));
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(err.is_permanent_login_failure());
    assert!(
        err.to_string().ends_with(
            "the target refused the login after we challenged it for mutual CHAP (status \
             0201): either our user name \"alice\" or its secret is wrong, or it has no \
             outgoing (mutual) account for this target"
        ),
        "{err}"
    );
    assert_eq!(
        x.login.diagnosis(),
        Some(ChapDiagnosis::RefusedAfterMutualChallenge)
    );
    assert!(!format!("{err} {err:?}").contains(SECRET));
}

/// The credentials check: CHAP alone offered, the challenge answered
/// without one of ours, and the login ends at the target's verdict either
/// way, never reaching operational negotiation.
#[test]
fn a_credentials_check_stops_at_the_verdict_on_our_response() {
    let start = || {
        let (mut x, first) = Exchange::start_check(mutual_chap());
        assert_eq!(value(&first, "AuthMethod").as_deref(), Some("CHAP"));
        let resp = x
            .target
            .says(Stage::Security, None, &[("AuthMethod", "CHAP")]);
        sent(x.feed(resp));
        let resp = x.target.says(
            Stage::Security,
            None,
            &[
                ("CHAP_A", "5"),
                ("CHAP_I", "3"),
                ("CHAP_C", MUTUAL_TARGET_CHALLENGE),
            ],
        );
        let answer = sent(x.feed(resp));
        assert_eq!(value(&answer, "CHAP_N").as_deref(), Some(USER));
        assert_eq!(
            unhex(&value(&answer, "CHAP_R").expect("CHAP_R")),
            chap_response::<md5::Md5>(3, SECRET, &unhex(MUTUAL_TARGET_CHALLENGE))
        );
        assert_eq!(value(&answer, "CHAP_I"), None, "no challenge of ours");
        assert_eq!(value(&answer, "CHAP_C"), None, "no challenge of ours");
        x
    };

    let mut x = start();
    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[] as &[(&str, &str)],
    );
    let err = failed(x.feed(resp));
    assert_eq!(x.login.diagnosis(), Some(ChapDiagnosis::OursAccepted));
    assert!(
        err.to_string().ends_with(
            "the target refused the login after we challenged it for mutual CHAP, though it \
             accepts our user name \"alice\" and secret: it may have no outgoing (mutual) \
             account for this target"
        ),
        "{err}"
    );

    let mut x = start();
    let resp = x.target.refuses(LoginStatus::AUTHENTICATION_FAILURE, &[]);
    let err = failed(x.feed(resp));
    assert_eq!(x.login.diagnosis(), Some(ChapDiagnosis::OursRefused));
    assert!(
        err.to_string()
            .ends_with("the target refused our user name \"alice\" or its secret (status 0201)"),
        "{err}"
    );
}

/// RFC 7143 §11.13.5 (0101 moved temporarily, 0102 moved permanently) and
/// §13.8 (TargetAddress with an IPv6 literal and a portal group tag).
/// UNH-IOL: Login #23.1
#[test]
fn redirects_name_the_new_portal_and_their_permanence() {
    for (status, permanent) in [
        (LoginStatus::TARGET_MOVED_TEMPORARILY, false),
        (LoginStatus::TARGET_MOVED_PERMANENTLY, true),
    ] {
        let (mut x, _) = Exchange::start(config());
        let resp = x
            .target
            .refuses(status, &[("TargetAddress", "[::1]:3261,1")]);
        match x.feed(resp) {
            Ok(LoginStep::Redirect {
                portal,
                permanent: got,
            }) => {
                assert_eq!(portal, Portal::new("::1", 3261));
                assert_eq!(got, permanent);
            }
            other => panic!("expected a redirect, got {other:?}"),
        }
    }
    // A redirect that does not say where to is a negotiation failure.
    let (mut x, _) = Exchange::start(config());
    let resp = x.target.refuses(LoginStatus::TARGET_MOVED_TEMPORARILY, &[]);
    assert!(matches!(failed(x.feed(resp)), Error::Negotiation { .. }));
}

/// RFC 7143 §6.2.2 and §13.13: a Min answer above our offer is illegal.
#[test]
fn answer_outside_the_result_function_is_a_negotiation_error() {
    let mut cfg = config();
    cfg.operational.max_burst_length = 262_144;
    let (mut x, offers) = Exchange::through_security(cfg);
    let bad = answers(&offers, &[("MaxBurstLength", "1048576")]);
    let resp = x.target.finishes(1, &bad);
    let err = failed(x.feed(resp));
    assert!(matches!(err, Error::Negotiation { .. }), "{err:?}");
}

/// RFC 7143 §11.13 (C bit) and §6.3: a continued response is acknowledged
/// with an empty request, and the pieces are joined, even mid-pair.
#[test]
fn continued_target_text_is_acknowledged_and_assembled() {
    let (mut x, _) = Exchange::start(config());
    let whole = text(&[("AuthMethod", "None"), ("TargetAlias", "disk-one")]);
    let cut = 7; // inside "AuthMethod"
    let first = x
        .target
        .response(Stage::Security, None, true, whole.slice(..cut));
    let ack = sent(x.feed(first));
    assert!(ack.data.is_empty());
    assert!(!ack.transit && !ack.continue_);
    assert_eq!(ack.csg, Stage::Security);

    let rest = x.target.response(
        Stage::Security,
        Some(Stage::Operational),
        false,
        whole.slice(cut..),
    );
    let offers = sent(x.feed(rest));
    assert_eq!(offers.csg, Stage::Operational);
    assert!(value(&offers, "MaxBurstLength").is_some());
}

/// RFC 7143 §6.3 and §11.12.2: our own text over one 8192-byte segment goes
/// out in pieces with C=1, each acknowledged by an empty response, T only on
/// the last. Our configuration alone cannot exceed 8192 bytes (names are
/// capped at 223 bytes); answering a target's many vendor keys can.
#[test]
fn our_text_over_one_segment_is_sent_in_pieces() {
    let (mut x, offers) = Exchange::through_security(config());
    let vendor_keys: Vec<String> = (0..150)
        .map(|i| format!("X-com.example.{i:04}.{}", "k".repeat(40)))
        .collect();
    let mut target_text = answers(&offers, &[]);
    target_text.extend(vendor_keys.iter().map(|k| (k.clone(), "v".to_owned())));
    let whole = text(&target_text);
    assert!(whole.len() > LOGIN_SEGMENT);

    // The target's own text is in two pieces too; it stays in the stage.
    let first = x
        .target
        .response(Stage::Operational, None, true, whole.slice(..LOGIN_SEGMENT));
    let ack = sent(x.feed(first));
    assert!(ack.data.is_empty());
    let rest = x.target.response(
        Stage::Operational,
        None,
        false,
        whole.slice(LOGIN_SEGMENT..),
    );
    let piece1 = sent(x.feed(rest));
    assert_eq!(piece1.data.len(), LOGIN_SEGMENT);
    assert!(piece1.continue_ && !piece1.transit);

    let empty = x
        .target
        .response(Stage::Operational, None, false, Bytes::new());
    let piece2 = sent(x.feed(empty));
    assert!(!piece2.continue_ && piece2.transit);
    assert_eq!(piece2.nsg, Stage::FullFeature);

    let mut ours = piece1.data.to_vec();
    ours.extend_from_slice(&piece2.data);
    let answered = parse_pairs(&ours, TextLimits::DEFAULT).expect("our text parses whole");
    let keys: Vec<&str> = answered.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, vendor_keys);
    assert!(answered.iter().all(|kv| kv.value == "NotUnderstood"));

    let last = x.target.finishes::<&str, &str>(9, &[]);
    assert_eq!(done(x.feed(last)).tsih, 9);
}

/// RFC 7143 §6.3.3: a target may stay in the operational stage (T=0) and
/// offer keys of its own; we answer and ask again to move on.
/// UNH-IOL: Login #3.2
#[test]
fn target_offer_in_the_operational_stage_is_answered() {
    let (mut x, offers) = Exchange::through_security(config());
    let mut target_text = answers(&offers, &[]);
    target_text.push(("TaskReporting".into(), "ResponseFence,RFC3720".into()));
    let resp = x.target.says(Stage::Operational, None, &target_text);
    let reply = sent(x.feed(resp));
    assert_eq!(reply.csg, Stage::Operational);
    assert!(reply.transit);
    assert_eq!(reply.nsg, Stage::FullFeature);
    assert_eq!(
        pairs(&reply),
        vec![KeyValue::new("TaskReporting", "RFC3720")]
    );
    let last = x.target.finishes::<&str, &str>(3, &[]);
    assert_eq!(done(x.feed(last)).tsih, 3);
}

/// RFC 7143 §6.3: the login is bounded; a target that never lets it end is
/// refused after MAX_LOGIN_EXCHANGES responses.
#[test]
fn endless_login_fails_after_the_exchange_limit() {
    let (mut x, _) = Exchange::through_security(config());
    let mut accepted = 1; // the security stage response
    let err = loop {
        let resp = x.target.says::<&str, &str>(Stage::Operational, None, &[]);
        match x.feed(resp) {
            Ok(LoginStep::Send(req)) => {
                assert!(req.transit, "we keep asking to move on");
                accepted += 1;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
        assert!(accepted <= MAX_LOGIN_EXCHANGES, "no limit enforced");
    };
    assert_eq!(accepted, MAX_LOGIN_EXCHANGES);
    assert!(matches!(err, Error::Negotiation { .. }), "{err:?}");
}

/// RFC 7143 §13.1: a required CRC32C digest that the target refuses fails
/// the login, whether it answers None or Reject.
#[test]
fn required_header_digest_refused_is_a_negotiation_error() {
    for refusal in ["None", "Reject"] {
        let mut cfg = config();
        cfg.operational.header_digest = DigestPreference::Crc32c;
        let (mut x, offers) = Exchange::through_security(cfg);
        assert_eq!(value(&offers, "HeaderDigest").as_deref(), Some("CRC32C"));
        let resp = x
            .target
            .finishes(1, &answers(&offers, &[("HeaderDigest", refusal)]));
        let err = failed(x.feed(resp));
        assert!(
            matches!(err, Error::Negotiation { .. }),
            "{refusal}: {err:?}"
        );
    }
}

/// RFC 7143 §13.1: each preference is offered as configured, most preferred
/// first, for both digests and in discovery sessions too.
/// UNH-IOL: Login #7.2, Login #9.1, Login #21.1
#[test]
fn digest_preferences_are_offered_as_lists() {
    for (pref, offer) in [
        (DigestPreference::None, "None"),
        (DigestPreference::Crc32c, "CRC32C"),
        (DigestPreference::PreferCrc32c, "CRC32C,None"),
        (DigestPreference::PreferNone, "None,CRC32C"),
    ] {
        for discovery in [false, true] {
            let mut cfg = if discovery {
                SessionConfig::discovery(Portal::new("192.0.2.10", 3260), INITIATOR)
            } else {
                config()
            };
            cfg.operational.header_digest = pref;
            cfg.operational.data_digest = pref;
            let (_, offers) = Exchange::through_security(cfg);
            assert_eq!(value(&offers, "HeaderDigest").as_deref(), Some(offer));
            assert_eq!(value(&offers, "DataDigest").as_deref(), Some(offer));
        }
    }
    assert_eq!(
        OperationalPreferences::default().header_digest,
        DigestPreference::PreferNone
    );
    assert_eq!(
        OperationalPreferences::default().data_digest,
        DigestPreference::PreferNone
    );
}

/// RFC 7143 §13.1: with the default None,CRC32C offer a target that
/// requires digests picks CRC32C, and one that does not care picks None.
/// UNH-IOL: Login #9.2
#[test]
fn default_digest_offer_lets_the_target_choose() {
    for (header, data) in [("CRC32C", "CRC32C"), ("None", "None"), ("CRC32C", "None")] {
        let (mut x, offers) = Exchange::through_security(config());
        let resp = x.target.finishes(
            1,
            &answers(&offers, &[("HeaderDigest", header), ("DataDigest", data)]),
        );
        let p = done(x.feed(resp)).params;
        assert_eq!(
            (p.header_digest.as_str(), p.data_digest.as_str()),
            (header, data)
        );
    }
}

/// The error a login ends with when the target answers `overrides` to the
/// offers of `cfg`.
fn refused_with(cfg: SessionConfig, overrides: &[(&str, &str)]) -> Error {
    let (mut x, offers) = Exchange::through_security(cfg);
    let resp = x.target.finishes(1, &answers(&offers, overrides));
    failed(x.feed(resp))
}

/// The negotiation error's message; panics on another error.
#[track_caller]
fn negotiation_message(err: &Error) -> String {
    assert!(matches!(err, Error::Negotiation { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(
        msg.contains("192.0.2.10:3260") && msg.contains(TARGET),
        "{msg}"
    );
    msg
}

/// RFC 7143 §6.2 leaves the default in force after `Reject`, `Irrelevant`
/// or `NotUnderstood`, but istgt answers `HeaderDigest=Reject` to `None`
/// and frames with digests anyway: for the digests such an answer fails the
/// login, naming the key, our offer and the answer; a None-only offer gets
/// the hint to let the target choose.
#[test]
fn digest_refusals_fail_the_login_naming_key_and_values() {
    for key in ["HeaderDigest", "DataDigest"] {
        for answer in ["Reject", "Irrelevant", "NotUnderstood"] {
            for (pref, offered) in [
                (DigestPreference::PreferNone, "None,CRC32C"),
                (DigestPreference::None, "None"),
            ] {
                let mut cfg = config();
                cfg.operational.header_digest = pref;
                cfg.operational.data_digest = pref;
                let err = refused_with(cfg, &[(key, answer)]);
                let msg = negotiation_message(&err);
                assert!(
                    msg.contains(&format!(
                        "{key}: we offered \"{offered}\", the target answered \"{answer}\""
                    )),
                    "{msg}"
                );
                assert!(msg.contains("framing"), "{msg}");
                let url_key = if key == "HeaderDigest" {
                    "header_digest=none_crc32c"
                } else {
                    "data_digest=none_crc32c"
                };
                assert_eq!(msg.contains(url_key), offered == "None", "{msg}");
            }
        }
    }
    // Discovery sessions negotiate digests too (§13.1 applies to them).
    let cfg = SessionConfig::discovery(Portal::new("192.0.2.10", 3260), INITIATOR);
    let (mut x, offers) = Exchange::through_security(cfg);
    let resp = x
        .target
        .finishes(1, &answers(&offers, &[("DataDigest", "Reject")]));
    let err = failed(x.feed(resp));
    assert!(err.to_string().contains("DataDigest"), "{err}");
}

/// RFC 7143 §6.2.2: an answer that is not one of the values offered is a
/// protocol error, reported with both sides' values.
#[test]
fn out_of_list_digest_answers_fail_the_login() {
    for (pref, offered, answer) in [
        (DigestPreference::None, "None", "CRC32C"),
        (DigestPreference::Crc32c, "CRC32C", "None"),
        (DigestPreference::PreferNone, "None,CRC32C", "MD5"),
        (DigestPreference::PreferNone, "None,CRC32C", "None,CRC32C"),
    ] {
        let mut cfg = config();
        cfg.operational.data_digest = pref;
        let err = refused_with(cfg, &[("DataDigest", answer)]);
        let msg = negotiation_message(&err);
        assert!(
            msg.contains(&format!(
                "DataDigest: we offered \"{offered}\", the target answered \"{answer}\""
            )),
            "{msg}"
        );
    }
}

/// The same rule for the other keys that matter: a refused InitialR2T=No
/// leaves the target free to wait for unsolicited data we would not send; a
/// MaxBurstLength outside the key's range or above our offer is illegal.
/// UNH-IOL: Login #20.1
#[test]
fn refusals_of_other_keys_that_matter_fail_the_login() {
    for (key, answer, says) in [
        (
            "InitialR2T",
            "Reject",
            "InitialR2T: we offered \"No\", the target answered \"Reject\"",
        ),
        (
            "InitialR2T",
            "Irrelevant",
            "the target answered \"Irrelevant\"",
        ),
        (
            "MaxBurstLength",
            "Reject",
            "MaxBurstLength: we offered \"16777215\"",
        ),
        (
            "MaxBurstLength",
            "16777216",
            "the target answered \"16777216\"",
        ),
        ("MaxBurstLength", "0", "the target answered \"0\""),
        (
            "FirstBurstLength",
            "Irrelevant",
            "FirstBurstLength: we offered \"262144\"",
        ),
        ("MaxOutstandingR2T", "NotUnderstood", "MaxOutstandingR2T"),
        ("ErrorRecoveryLevel", "Reject", "ErrorRecoveryLevel"),
        ("DataSequenceInOrder", "No", "DataSequenceInOrder"),
    ] {
        let err = refused_with(config(), &[(key, answer)]);
        let msg = negotiation_message(&err);
        assert!(msg.contains(says), "{key}={answer}: {msg}");
        assert!(msg.contains(key), "{msg}");
    }
    let mut cfg = config();
    cfg.operational.max_burst_length = 262_144;
    cfg.operational.first_burst_length = 65_536;
    let err = refused_with(cfg, &[("MaxBurstLength", "1048576")]);
    let msg = negotiation_message(&err);
    assert!(
        msg.contains("MaxBurstLength: we offered \"262144\", the target answered \"1048576\""),
        "{msg}"
    );
}

/// What does not fail: an offer that decides alone (§6.2: ImmediateData=No,
/// InitialR2T=Yes) is in force on both sides whatever the answer; §13.14
/// makes FirstBurstLength irrelevant without unsolicited data; the
/// Time2Wait/Time2Retain keys only time a reconnect.
#[test]
fn refusals_that_leave_no_doubt_are_accepted() {
    let mut cfg = config();
    cfg.operational.initial_r2t = true;
    cfg.operational.immediate_data = false;
    let (mut x, offers) = Exchange::through_security(cfg);
    let resp = x.target.finishes(
        1,
        &answers(
            &offers,
            &[
                ("InitialR2T", "Reject"),
                ("ImmediateData", "Irrelevant"),
                ("FirstBurstLength", "Irrelevant"),
                ("DefaultTime2Wait", "Reject"),
                ("DefaultTime2Retain", "Irrelevant"),
            ],
        ),
    );
    let p = done(x.feed(resp)).params;
    assert!(
        p.initial_r2t && !p.immediate_data,
        "our offers stay in force"
    );
    assert_eq!(p.default_time2wait, 2, "the RFC default");
}

/// RFC 7143 §11.13.4: the final response carries the TSIH the target chose.
/// UNH-IOL: Login #2.2
#[test]
fn final_response_without_tsih_is_refused() {
    let (mut x, offers) = Exchange::through_security(config());
    let resp = x.target.finishes(0, &answers(&offers, &[]));
    assert!(matches!(failed(x.feed(resp)), Error::Negotiation { .. }));
}

/// A hostile target's login text: plausible pairs or raw bytes.
fn hostile_text() -> impl Strategy<Value = Bytes> {
    let key = prop::sample::select(vec![
        "AuthMethod",
        "CHAP_A",
        "CHAP_I",
        "CHAP_C",
        "CHAP_N",
        "CHAP_R",
        "HeaderDigest",
        "MaxBurstLength",
        "FirstBurstLength",
        "MaxRecvDataSegmentLength",
        "InitialR2T",
        "ErrorRecoveryLevel",
        "TaskReporting",
        "TargetAddress",
        "TargetPortalGroupTag",
        "X-com.example.key",
    ]);
    let value = prop_oneof![
        prop::sample::select(vec![
            "CHAP",
            "None",
            "5",
            "7",
            "Reject",
            "0x00",
            "0b",
            "CRC32C",
            "Yes",
            "No",
            "512",
            "16777216",
            "[::1]:3260,1",
            "NotUnderstood",
            TARGET_USER,
        ])
        .prop_map(String::from),
        "[ -~]{0,40}",
    ];
    prop_oneof![
        prop::collection::vec((key, value), 0..6).prop_map(|pairs| text(&pairs)),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
    ]
}

/// One hostile Login Response: header fields and text.
fn hostile_response() -> impl Strategy<Value = (Stage, Option<Stage>, bool, LoginStatus, Bytes)> {
    let stage = prop::sample::select(vec![
        Stage::Security,
        Stage::Operational,
        Stage::FullFeature,
    ]);
    let status = prop_oneof![
        8 => Just(LoginStatus::SUCCESS),
        1 => (0u8..4, any::<u8>()).prop_map(|(class, detail)| LoginStatus { class, detail }),
    ];
    (
        stage.clone(),
        prop::option::of(stage),
        any::<bool>(),
        status,
        hostile_text(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Hostile input: whatever a target answers, the login never panics,
    /// ends within the exchange limit, and no error shows a secret.
    #[test]
    fn hostile_login_responses_never_panic(
        mutual in any::<bool>(),
        responses in prop::collection::vec(hostile_response(), 1..40),
    ) {
        let (mut x, _) = Exchange::start(if mutual { mutual_chap() } else { one_way_chap() });
        let mut accepted = 0;
        for (csg, next, continue_, status, data) in responses {
            let resp = LoginResponse {
                status,
                tsih: 7,
                ..x.target.response(csg, next, continue_ && next.is_none(), data)
            };
            match x.feed(resp) {
                Ok(LoginStep::Send(_)) => accepted += 1,
                Ok(_) => break,
                Err(e) => {
                    let shown = format!("{e} {e:?}");
                    prop_assert!(!shown.contains(SECRET) && !shown.contains(TARGET_SECRET));
                    break;
                }
            }
        }
        prop_assert!(accepted <= MAX_LOGIN_EXCHANGES);
    }
}

// ---- UNH-IOL initiator plans: login and CHAP items not covered above ----

/// RFC 7143 §11.12 and §4.2.2.2: ExpStatSN acknowledges the StatSN of
/// each Login Response, also when the target starts numbering at 0.
/// UNH-IOL: Login #4.1, Login #5.1
#[test]
fn login_responses_numbered_from_zero_are_acknowledged() {
    let (mut x, _) = Exchange::start(config());
    x.target.stat_sn = 0;
    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[("AuthMethod", "None")],
    );
    let offers = sent(x.feed(resp));
    assert_eq!(offers.exp_stat_sn, 1, "acknowledges StatSN 0");
    let last = x.target.finishes(5, &answers(&offers, &[]));
    assert_eq!(last.stat_sn, 1);
    assert_eq!(done(x.feed(last)).exp_stat_sn, 2);
}

/// RFC 7143 §6.2: a key is negotiated once per login. A target answering
/// ImmediateData again in a later response, or twice in one, is refused.
/// UNH-IOL: Login #6.2, Login #6.3
#[test]
fn a_key_answered_twice_fails_the_login() {
    let (mut x, offers) = Exchange::through_security(config());
    let resp = x
        .target
        .says(Stage::Operational, None, &answers(&offers, &[]));
    let again = sent(x.feed(resp));
    assert!(again.transit, "we ask to move on");
    let resp = x.target.finishes(3, &[("ImmediateData", "Yes")]);
    let err = failed(x.feed(resp));
    assert!(err.is_permanent_login_failure(), "{err:?}");
    assert!(err.to_string().contains("ImmediateData"), "{err}");

    let (mut x, offers) = Exchange::through_security(config());
    let mut twice = answers(&offers, &[]);
    twice.push(("ImmediateData".into(), "Yes".into()));
    let resp = x.target.finishes(3, &twice);
    let err = failed(x.feed(resp));
    assert!(err.to_string().contains("ImmediateData"), "{err}");
}

/// RFC 7143 §12.1 and §6.2.1: the target must choose an AuthMethod from
/// our list; any other choice ends the login.
/// UNH-IOL: Login #7.3, Login #22.1
#[test]
fn an_auth_method_we_did_not_offer_fails_the_login() {
    for (cfg, chosen) in [
        (one_way_chap(), "SRP"),
        (one_way_chap(), "KRB5"),
        (config(), "CHAP"),
    ] {
        let (mut x, first) = Exchange::start(cfg);
        let offered = value(&first, "AuthMethod").expect("AuthMethod offered");
        assert!(!offered.split(',').any(|m| m == chosen));
        let resp = x.target.says(
            Stage::Security,
            Some(Stage::Operational),
            &[("AuthMethod", chosen)],
        );
        let err = failed(x.feed(resp));
        assert!(err.is_permanent_login_failure(), "{chosen}: {err:?}");
    }
}

/// RFC 7143 §6.2.2, §13.11 and §13.14: an answer outside what the key
/// allows is refused: a Boolean that is not exactly Yes or No (the values
/// are case-sensitive), a FirstBurstLength above our offer (its result is
/// the minimum).
/// UNH-IOL: Login #7.4, Login #7.5, Login #13.3
#[test]
fn illegal_boolean_and_numeric_answers_fail_the_login() {
    for (key, answer) in [
        ("ImmediateData", "Maybe"),
        ("ImmediateData", "yes"),
        ("InitialR2T", "1"),
        ("FirstBurstLength", "16777215"),
    ] {
        let err = refused_with(config(), &[(key, answer)]);
        let msg = negotiation_message(&err);
        assert!(msg.contains(key), "{key}={answer}: {msg}");
        assert!(err.is_permanent_login_failure(), "{key}={answer}: {err:?}");
    }
}

/// RFC 7143 obsoletes the marker keys of RFC 3720: offered by a target,
/// they are never agreed to.
/// UNH-IOL: Login #12.1
#[test]
fn marker_keys_offered_by_the_target_are_not_agreed() {
    let (mut x, offers) = Exchange::through_security(config());
    let mut target_text = answers(&offers, &[]);
    target_text.push(("OFMarker".into(), "Yes".into()));
    target_text.push(("IFMarker".into(), "Yes".into()));
    let resp = x.target.says(Stage::Operational, None, &target_text);
    let reply = sent(x.feed(resp));
    for key in ["OFMarker", "IFMarker"] {
        let answer = find(&pairs(&reply), key).map(str::to_owned);
        assert!(
            matches!(answer.as_deref(), Some("No" | "Reject" | "NotUnderstood")),
            "{key}: {answer:?}"
        );
    }
    let last = x.target.finishes::<&str, &str>(3, &[]);
    assert_eq!(done(x.feed(last)).tsih, 3);
}

/// RFC 7143 §12.1.3: CHAP_A is a number from our list; a name is refused.
/// UNH-IOL: CHAP #1.2.2
#[test]
fn a_chap_algorithm_that_is_not_a_number_is_refused() {
    for algorithm in ["MD5", "five", ""] {
        let (_, step) = Exchange::challenged(
            one_way_chap(),
            &[
                ("CHAP_A", algorithm),
                ("CHAP_I", "1"),
                ("CHAP_C", "0x0102030405060708"),
            ],
        );
        let err = failed(step);
        assert!(err.is_permanent_login_failure(), "{algorithm:?}: {err:?}");
    }
}

/// RFC 7143 §12.1.3: CHAP_A, CHAP_I and CHAP_C come together in the
/// target's answer to our CHAP_A offer. A challenge without the algorithm,
/// or CHAP_I or CHAP_C missing from it, is refused rather than answered.
/// UNH-IOL: CHAP #1.3, CHAP #2.3, CHAP #3.5
#[test]
fn chap_keys_missing_from_the_challenge_fail_the_login() {
    let cases: [&[(&str, &str)]; 3] = [
        &[("CHAP_I", "1"), ("CHAP_C", "0x0102030405060708")],
        &[("CHAP_A", "5"), ("CHAP_C", "0x0102030405060708")],
        &[("CHAP_A", "5"), ("CHAP_I", "1")],
    ];
    for challenge in cases {
        let (_, step) = Exchange::challenged(one_way_chap(), challenge);
        let err = failed(step);
        assert!(
            matches!(
                err,
                Error::Authentication { .. } | Error::ChapAlgorithmRejected { .. }
            ),
            "{challenge:?}: {err:?}"
        );
    }
}

/// RFC 7143 §12.1.3: CHAP keys sent ahead of their step (the challenge in
/// the response that picks AuthMethod, before we offered CHAP_A) are not
/// answered: the login ends there, naming the key.
/// UNH-IOL: CHAP #1.3, CHAP #2.3, CHAP #3.5
#[test]
fn a_challenge_ahead_of_our_algorithm_offer_fails_the_login() {
    for (early, key) in [
        (&[("CHAP_I", "1")][..], "CHAP_I"),
        (&[("CHAP_C", "0x0102030405060708")][..], "CHAP_C"),
        (
            &[
                ("CHAP_A", "5"),
                ("CHAP_I", "1"),
                ("CHAP_C", "0x0102030405060708"),
            ][..],
            "CHAP_I",
        ),
    ] {
        let (mut x, _) = Exchange::start(one_way_chap());
        let mut text = vec![("AuthMethod", "CHAP")];
        text.extend_from_slice(early);
        let resp = x.target.says(Stage::Security, None, &text);
        let err = failed(x.feed(resp));
        assert!(
            matches!(err, Error::Authentication { .. }),
            "{early:?}: {err:?}"
        );
        assert!(err.to_string().contains(key), "{early:?}: {err}");
    }
}

/// RFC 7143 §12.1.3: a one-byte challenge is answered; an empty one is
/// refused (there is nothing to prove knowledge of the secret against).
/// UNH-IOL: CHAP #3.2, CHAP #3.4
#[test]
fn small_chap_challenges_are_answered_and_empty_ones_refused() {
    let (_, step) = Exchange::challenged(
        one_way_chap(),
        &[("CHAP_A", "5"), ("CHAP_I", "4"), ("CHAP_C", "0x2a")],
    );
    let answer = sent(step);
    assert_eq!(
        unhex(&value(&answer, "CHAP_R").expect("CHAP_R sent")),
        chap_response::<md5::Md5>(4, SECRET, &[0x2a])
    );
    for empty in ["", "0x", "0b"] {
        let err = refused_challenge("4", empty);
        assert!(err.is_permanent_login_failure(), "{empty:?}: {err:?}");
    }
}

/// RFC 7143 §12.1.3 and RFC 1994 §4.1: each answer is computed from that
/// login's identifier and challenge. A target repeating them, on logins
/// one after the other or interleaved, gets the same right answer each
/// time (the plan marks detecting the repeat informative; we do not keep
/// the target's past challenges); other values give other answers.
/// UNH-IOL: CHAP #2.4, CHAP #2.6, CHAP #3.6.1, CHAP #3.6.2
#[test]
fn chap_answers_follow_each_logins_identifier_and_challenge() {
    let challenge: Vec<u8> = (0u8..16).collect();
    let other: Vec<u8> = (100u8..116).collect();
    let answer = |identifier: u8, challenge: &[u8]| {
        let (_, step) = Exchange::challenged(
            one_way_chap(),
            &[
                ("CHAP_A", "5"),
                ("CHAP_I", &identifier.to_string()),
                ("CHAP_C", &hex(challenge)),
            ],
        );
        unhex(&value(&sent(step), "CHAP_R").expect("CHAP_R sent"))
    };
    let first = answer(8, &challenge);
    assert_eq!(first, chap_response::<md5::Md5>(8, SECRET, &challenge));
    assert_eq!(answer(8, &challenge), first, "the same challenge again");
    assert_eq!(
        answer(9, &challenge),
        chap_response::<md5::Md5>(9, SECRET, &challenge)
    );
    assert_ne!(answer(9, &challenge), first);
    assert_eq!(
        answer(8, &other),
        chap_response::<md5::Md5>(8, SECRET, &other)
    );

    // Two logins in parallel, challenged alike.
    let (mut a, _) = Exchange::start(one_way_chap());
    let (mut b, _) = Exchange::start(one_way_chap());
    for x in [&mut a, &mut b] {
        let resp = x
            .target
            .says(Stage::Security, None, &[("AuthMethod", "CHAP")]);
        sent(x.feed(resp));
    }
    for x in [&mut a, &mut b] {
        let resp = x.target.says(
            Stage::Security,
            None,
            &[
                ("CHAP_A", "5"),
                ("CHAP_I", "8"),
                ("CHAP_C", &hex(&challenge)),
            ],
        );
        let r = unhex(&value(&sent(x.feed(resp)), "CHAP_R").expect("CHAP_R sent"));
        assert_eq!(r, first);
    }
}

/// Mutual CHAP with the target known as `target_user`, up to our answer.
fn mutual_as(target_user: &str) -> (Exchange, u8, Vec<u8>) {
    let cfg = SessionConfig {
        chap: Some(ChapConfig::mutual(
            ChapCredentials::new(USER, SECRET),
            ChapCredentials::new(target_user, TARGET_SECRET),
        )),
        ..config()
    };
    let (x, _, identifier, challenge) = mutual_answer(cfg);
    (x, identifier, challenge)
}

/// The target's proof for mutual CHAP, naming itself `name`.
fn target_proof(
    x: &mut Exchange,
    identifier: u8,
    challenge: &[u8],
    name: &str,
) -> Result<LoginStep, Error> {
    let proof = hex(&chap_response::<md5::Md5>(
        identifier,
        TARGET_SECRET,
        challenge,
    ));
    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[("CHAP_N", name), ("CHAP_R", proof.as_str())],
    );
    x.feed(resp)
}

/// RFC 7143 §12.1.3 and §6.1: the target's CHAP_N is a text value of up
/// to 255 bytes; one byte and 255 bytes are accepted when they are the
/// configured name, longer ones are refused, and so is a target that
/// names itself with our own name instead of its own.
/// UNH-IOL: CHAP #4.2, CHAP #4.3, CHAP #4.4, CHAP #4.6
#[test]
fn target_chap_names_are_checked_whole() {
    for name in ["t".to_owned(), "t".repeat(255)] {
        let (mut x, identifier, challenge) = mutual_as(&name);
        let offers = sent(target_proof(&mut x, identifier, &challenge, &name));
        assert_eq!(offers.csg, Stage::Operational, "{} bytes", name.len());
    }
    // Over the limit even when it is the configured name.
    let long = "t".repeat(256);
    let (mut x, identifier, challenge) = mutual_as(&long);
    let err = failed(target_proof(&mut x, identifier, &challenge, &long));
    assert!(err.is_permanent_login_failure(), "{err:?}");
    let (mut x, identifier, challenge) = mutual_as(TARGET_USER);
    let err = failed(target_proof(&mut x, identifier, &challenge, USER));
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
}

/// RFC 7143 §12.1.3: nothing forbids the two sides one CHAP name (the
/// secrets must differ): a target authenticating as our own user name,
/// configured so, is accepted.
/// UNH-IOL: CHAP #4.7
#[test]
fn the_same_chap_name_on_both_sides_is_accepted() {
    let (mut x, identifier, challenge) = mutual_as(USER);
    let offers = sent(target_proof(&mut x, identifier, &challenge, USER));
    assert_eq!(offers.csg, Stage::Operational);
}

/// RFC 7143 §12.1.3: the target's CHAP_N and CHAP_R answer our challenge;
/// sent with the target's own challenge, before ours exists, they are
/// refused instead of answered.
/// UNH-IOL: CHAP #4.5
#[test]
fn a_target_chap_name_ahead_of_our_challenge_fails_the_login() {
    for key in ["CHAP_N", "CHAP_R"] {
        let early = if key == "CHAP_N" {
            TARGET_USER
        } else {
            "0x00112233"
        };
        let (_, step) = Exchange::challenged(
            mutual_chap(),
            &[
                ("CHAP_A", "5"),
                ("CHAP_I", "9"),
                ("CHAP_C", MUTUAL_TARGET_CHALLENGE),
                (key, early),
            ],
        );
        let err = failed(step);
        assert!(
            matches!(err, Error::Authentication { .. }),
            "{key}: {err:?}"
        );
        assert!(err.to_string().contains(key), "{err}");
    }
}

/// RFC 7143 §12.1.3 and RFC 1994 §4.1: the target's CHAP_R is exactly
/// the hash: the right answer with a byte more, or a byte less, is wrong.
/// UNH-IOL: CHAP #5.2, CHAP #5.3
#[test]
fn target_chap_responses_of_the_wrong_length_are_refused() {
    let changes: [fn(&mut Vec<u8>); 2] = [
        |r| r.push(0),
        |r| {
            r.pop();
        },
    ];
    for change in changes {
        let (mut x, _, identifier, challenge) = mutual_answer(mutual_chap());
        let mut proof = chap_response::<md5::Md5>(identifier, TARGET_SECRET, &challenge);
        change(&mut proof);
        let resp = x.target.says(
            Stage::Security,
            Some(Stage::Operational),
            &[("CHAP_N", TARGET_USER), ("CHAP_R", hex(&proof).as_str())],
        );
        let err = failed(x.feed(resp));
        assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    }
}

/// RFC 7143 §13.6 and §13.9: the target's own declarations in the login,
/// TargetAlias and TargetPortalGroupTag, are taken without an answer (they
/// are declarative) and the login goes on; values outside what the keys
/// allow (an alias over 255 bytes, a tag over 65535) end it. TargetAddress,
/// the third "Target..." key a target sends, is in the redirect test above.
/// UNH-IOL: Login #23.1
#[test]
fn target_declarations_are_taken_and_checked() {
    let (mut x, _) = Exchange::start(config());
    let resp = x.target.says(
        Stage::Security,
        Some(Stage::Operational),
        &[
            ("AuthMethod", "None"),
            ("TargetAlias", "disk one"),
            ("TargetPortalGroupTag", "7"),
        ],
    );
    let offers = sent(x.feed(resp));
    for key in ["TargetAlias", "TargetPortalGroupTag"] {
        assert!(value(&offers, key).is_none(), "{key} answered");
    }
    let last = x.target.finishes(2, &answers(&offers, &[]));
    assert_eq!(done(x.feed(last)).tsih, 2);

    for (key, bad) in [
        ("TargetAlias", "a".repeat(256)),
        ("TargetPortalGroupTag", "65536".to_owned()),
    ] {
        let (mut x, _) = Exchange::start(config());
        let resp = x.target.says(
            Stage::Security,
            Some(Stage::Operational),
            &[("AuthMethod", "None"), (key, bad.as_str())],
        );
        let err = failed(x.feed(resp));
        assert!(err.is_permanent_login_failure(), "{key}: {err:?}");
    }
}
