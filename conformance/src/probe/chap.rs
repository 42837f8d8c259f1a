//! The initiator side of CHAP (RFC 7143 §12.1.3) as the probe plays it:
//! honestly, or with one deliberate mistake for the negative tests.

use iscsi_proto::text::KeyValue;
use iscsi_proto::text::value::{format_binary, parse_binary};
use iscsi_session::core::chap::OurChallenge;
use iscsi_session::{ChapAlgorithm, ChapCredentials, Secret};

/// What the probe gets wrong on purpose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    /// Nothing: a correct exchange.
    #[default]
    None,
    /// The response is computed with another secret.
    WrongSecret,
    /// CHAP_N names another user (the response uses the right secret).
    User(String),
    /// The response hashes CHAP_I + 1.
    Identifier,
    /// The response is cut to half its length.
    Truncate,
    /// The response is all zero bytes of the right length.
    Zeros,
    /// CHAP_R is sent but empty-valued (`CHAP_R=`).
    EmptyValue,
    /// No CHAP_R at all (CHAP_N only).
    OmitResponse,
    /// Mutual CHAP whose challenge is the target's own (CHAP_I and CHAP_C
    /// reflected): RFC 7143 §12.1.3 says the target MUST close the connection.
    ReflectChallenge,
    /// A response captured earlier, replayed against a fresh challenge.
    Replay(Vec<u8>),
    /// Mutual CHAP with a challenge of this many bytes.
    ChallengeLength(usize),
}

/// How the probe authenticates.
#[derive(Clone, Debug)]
pub struct ChapPlan {
    /// The CHAP_A offer, sent as given (e.g. `"7,6,5"`, `"99"`).
    pub algorithms: String,
    /// CHAP_N and the secret.
    pub credentials: ChapCredentials,
    /// Mutual CHAP: the target must answer with these.
    pub mutual: Option<ChapCredentials>,
    /// Hash with this algorithm whatever CHAP_A the target chose: tells
    /// a target that numbers algorithms its own way.
    pub hash_as: Option<ChapAlgorithm>,
    /// The deliberate mistake, if any.
    pub tamper: Tamper,
}

impl ChapPlan {
    /// Honest one-way (or mutual, when `mutual` is given) CHAP with MD5.
    pub fn md5(credentials: ChapCredentials, mutual: Option<ChapCredentials>) -> ChapPlan {
        ChapPlan {
            algorithms: "5".into(),
            credentials,
            mutual,
            hash_as: None,
            tamper: Tamper::None,
        }
    }
}

/// The target's challenge, as the report keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetChallenge {
    /// The CHAP_A value the target chose, as sent.
    pub algorithm: String,
    /// CHAP_I.
    pub identifier: u8,
    /// CHAP_C, decoded.
    pub challenge: Vec<u8>,
    /// The response the probe computed (before tampering), for replay tests.
    pub response: Vec<u8>,
}

/// Why the probe cannot answer a challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeProblem {
    /// CHAP_A is missing, `Reject`, or a number the probe cannot hash.
    Algorithm(String),
    /// CHAP_I is missing or not 0..255.
    Identifier(String),
    /// CHAP_C is missing or not a binary value.
    Challenge(String),
}

impl std::fmt::Display for ChallengeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeProblem::Algorithm(v) => write!(f, "CHAP_A answer {v:?} cannot be used"),
            ChallengeProblem::Identifier(v) => write!(f, "CHAP_I {v:?} is not 0..255"),
            ChallengeProblem::Challenge(v) => write!(f, "CHAP_C is {v}"),
        }
    }
}

/// What the probe sends and expects after reading the challenge.
#[derive(Debug)]
pub struct ChapAnswer {
    /// CHAP_N, CHAP_R and, for mutual CHAP, CHAP_I and CHAP_C.
    pub keys: Vec<KeyValue>,
    /// The challenge as read.
    pub challenge: TargetChallenge,
    /// Our mutual challenge and the algorithm to check the answer with.
    pub ours: Option<(ChapAlgorithm, OurChallenge)>,
}

/// Reads CHAP_A, CHAP_I, CHAP_C and builds the answer.
pub fn answer(
    plan: &ChapPlan,
    chap_a: Option<&str>,
    chap_i: Option<&str>,
    chap_c: Option<&str>,
) -> Result<ChapAnswer, ChallengeProblem> {
    let a = chap_a.unwrap_or("<absent>");
    let code = a.parse::<u64>().ok();
    let algorithm = plan
        .hash_as
        .or_else(|| code.and_then(ChapAlgorithm::from_code))
        .ok_or_else(|| ChallengeProblem::Algorithm(a.to_owned()))?;
    let i = chap_i.unwrap_or("<absent>");
    let identifier = iscsi_proto::text::value::parse_number(i)
        .ok()
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| ChallengeProblem::Identifier(i.to_owned()))?;
    let challenge = match chap_c {
        None => return Err(ChallengeProblem::Challenge("absent".into())),
        Some(c) => parse_binary(c)
            .map_err(|e| ChallengeProblem::Challenge(format!("not binary: {}", e.reason())))?,
    };
    let secret = &plan.credentials.secret;
    let honest = algorithm.response(identifier, secret, &challenge);
    let response = match &plan.tamper {
        Tamper::WrongSecret => {
            let mut wrong = secret.expose().to_vec();
            wrong.push(b'!');
            algorithm.response(identifier, &Secret::new(wrong), &challenge)
        }
        Tamper::Identifier => algorithm.response(identifier.wrapping_add(1), secret, &challenge),
        Tamper::Truncate => honest[..honest.len() / 2].to_vec(),
        Tamper::Zeros => vec![0; honest.len()],
        Tamper::Replay(old) => old.clone(),
        _ => honest.clone(),
    };
    let user = match &plan.tamper {
        Tamper::User(u) => u.clone(),
        _ => plan.credentials.username.clone(),
    };
    let mut keys = vec![KeyValue::new("CHAP_N", user)];
    match plan.tamper {
        Tamper::OmitResponse => {}
        Tamper::EmptyValue => keys.push(KeyValue::new("CHAP_R", "")),
        _ => keys.push(KeyValue::new("CHAP_R", format_binary(&response))),
    }
    let ours = plan.mutual.as_ref().map(|_| {
        let mut mine = OurChallenge::generate(&mut rand::thread_rng());
        match plan.tamper {
            Tamper::ReflectChallenge => {
                mine.identifier = identifier;
                mine.challenge = challenge.clone();
            }
            Tamper::ChallengeLength(n) => {
                mine.challenge = (0..n).map(|_| rand::random::<u8>()).collect();
            }
            _ => {}
        }
        keys.push(KeyValue::new("CHAP_I", mine.identifier.to_string()));
        keys.push(KeyValue::new("CHAP_C", format_binary(&mine.challenge)));
        (algorithm, mine)
    });
    Ok(ChapAnswer {
        keys,
        challenge: TargetChallenge {
            algorithm: a.to_owned(),
            identifier,
            challenge,
            response: honest,
        },
        ours,
    })
}

/// Checks the target's mutual CHAP answer: `Ok` or why not. Never shows
/// the values.
pub fn verify_target(
    expected: &ChapCredentials,
    algorithm: ChapAlgorithm,
    ours: &OurChallenge,
    chap_n: Option<&str>,
    chap_r: Option<&str>,
) -> Result<(), String> {
    match chap_n {
        Some(n) if n == expected.username => {}
        Some(n) => {
            return Err(format!(
                "the target named itself {n:?}, not {:?}",
                expected.username
            ));
        }
        None => return Err("the target sent no CHAP_N".into()),
    }
    let r = chap_r.ok_or("the target sent no CHAP_R")?;
    let bytes =
        parse_binary(r).map_err(|e| format!("its CHAP_R is not binary ({})", e.reason()))?;
    if ours.verify(algorithm, &expected.secret, &bytes) {
        Ok(())
    } else {
        Err(format!(
            "its CHAP_R ({} bytes) does not match {} over our challenge",
            bytes.len(),
            algorithm.name()
        ))
    }
}
