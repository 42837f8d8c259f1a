//! CHAP (RFC 7143 §12.1.3, RFC 1994): the algorithms, the target's
//! refusal of every wrong answer, fresh challenges, and mutual CHAP. Needs
//! the URL's CHAP credentials; without them every test here is skipped
//! with that reason.

use std::sync::Arc;

use iscsi_proto::pdu::LoginStatus;
use iscsi_session::{ChapAlgorithm, ChapCredentials};

use crate::context::Ctx;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::chap::{ChapPlan, Tamper};
use crate::probe::{Auth, LoginEnd, LoginReport, LoginSpec};
use crate::registry::TestCase;
use crate::suite::login::basic::attempt;
use crate::suite::support::{refused_or_closed, refused_with};

const SECTION: &str = "RFC 7143 §12.1.3";

/// The CHAP tests.
pub fn tests() -> Vec<TestCase> {
    let mut out = vec![
        TestCase::new(
            "login.chap.md5",
            SECTION,
            "CHAP_A=5 (MD5) with the right secret reaches full feature phase",
            |c| algorithm(c, ChapAlgorithm::Md5),
        ),
        TestCase::new(
            "login.chap.sha1",
            "RFC 7143 §12.1.3, IANA CHAP algorithm 6",
            "CHAP_A=6 (SHA-1): chosen as 6 and hashed with SHA-1, or refused with CHAP_A=Reject",
            |c| algorithm(c, ChapAlgorithm::Sha1),
        ),
        TestCase::new(
            "login.chap.sha256",
            "RFC 7143 §12.1.3, IANA CHAP algorithm 7",
            "CHAP_A=7 (SHA-256): chosen as 7 and hashed with SHA-256, or refused with CHAP_A=Reject",
            |c| algorithm(c, ChapAlgorithm::Sha256),
        ),
        TestCase::new(
            "login.chap.choice_from_list",
            SECTION,
            "offered CHAP_A=7,6,5 the target picks one of them and the login completes",
            choice_from_list,
        ),
        TestCase::new(
            "login.chap.unknown_algorithm",
            SECTION,
            "CHAP_A=99 alone is answered CHAP_A=Reject or refused",
            unknown_algorithm,
        ),
        TestCase::new(
            "login.chap.challenge_fresh",
            SECTION,
            "two logins get different CHAP challenges",
            challenge_fresh,
        ),
        TestCase::new(
            "login.chap.challenge_length",
            "RFC 1994 §2.2, RFC 7143 §12.1.3",
            "the challenge is at least 16 bytes (RFC 7143 recommends the hash length)",
            challenge_length,
        ),
        TestCase::new(
            "login.chap.replay_refused",
            SECTION,
            "a response computed for an earlier challenge is refused with 0201",
            replay,
        ),
        TestCase::new(
            "login.chap.auth_none_refused",
            "RFC 7143 §12",
            "AuthMethod=None alone is refused with 0201 when the target requires CHAP",
            auth_none_refused,
        ),
        TestCase::new(
            "login.chap.mutual",
            SECTION,
            "mutual CHAP: the target answers our challenge with its name and the right response",
            mutual,
        ),
        TestCase::new(
            "login.chap.mutual_reflected_challenge",
            SECTION,
            "mutual CHAP with the target's own challenge reflected back is refused (the target MUST NOT answer it)",
            reflected,
        ),
    ];
    let tampers: [(&str, &str, Tamper, bool); 7] = [
        (
            "wrong_secret",
            "a response computed with another secret",
            Tamper::WrongSecret,
            true,
        ),
        (
            "wrong_user",
            "CHAP_N naming a user the target does not know",
            Tamper::User("conformance-nobody".into()),
            true,
        ),
        (
            "wrong_identifier",
            "a response hashed over CHAP_I + 1",
            Tamper::Identifier,
            true,
        ),
        (
            "truncated_response",
            "a response cut to half its length",
            Tamper::Truncate,
            true,
        ),
        (
            "zero_response",
            "a response of zero bytes of the right length",
            Tamper::Zeros,
            true,
        ),
        (
            "empty_response",
            "an empty CHAP_R",
            Tamper::EmptyValue,
            false,
        ),
        (
            "missing_response",
            "CHAP_N without CHAP_R",
            Tamper::OmitResponse,
            false,
        ),
    ];
    for (name, what, tamper, strict) in tampers {
        out.push(TestCase::new(
            format!("login.chap.{name}"),
            SECTION,
            format!(
                "{what} is refused{}",
                if strict {
                    " with 0201 (authentication failure)"
                } else {
                    ""
                }
            ),
            move |c| {
                let tamper = tamper.clone();
                async move { tampered(c, tamper, strict).await }
            },
        ));
    }
    out
}

fn credentials(ctx: &Ctx) -> Option<(ChapCredentials, Option<ChapCredentials>)> {
    let ep = ctx.primary();
    ep.initiator_chap()
        .map(|c| (c.clone(), ep.target_chap().cloned()))
}

const NO_CHAP: &str = "the URL gives no CHAP credentials (iscsi://user%secret@host/...)";

fn spec_with(ctx: &Ctx, plan: ChapPlan) -> LoginSpec {
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.auth = Auth::Chap(plan);
    spec.auth_method = Some("CHAP".into());
    spec
}

/// Our plan for this target: mutual CHAP whenever the URL gives the
/// target's credentials (a target that requires it refuses one-way CHAP).
fn plan(creds: (ChapCredentials, Option<ChapCredentials>), algorithms: &str) -> ChapPlan {
    ChapPlan {
        algorithms: algorithms.into(),
        credentials: creds.0,
        mutual: creds.1,
        hash_as: None,
        tamper: Tamper::None,
    }
}

async fn run(ctx: &Ctx, spec: &LoginSpec) -> Result<LoginReport, crate::ProbeError> {
    let (probe, report) = attempt(ctx, spec).await?;
    if report.ok() {
        ctx.close(probe).await;
    }
    Ok(report)
}

async fn algorithm(ctx: Arc<Ctx>, algorithm: ChapAlgorithm) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    let code = algorithm.code().to_string();
    let report = run(&ctx, &spec_with(&ctx, plan(creds, &code))).await?;
    let chosen = report.answer("CHAP_A").map(str::to_owned);
    match chosen.as_deref() {
        Some("Reject") => skip(format!(
            "the target does not offer {} (CHAP_A=Reject)",
            algorithm.name()
        )),
        Some(c) if c == code => {
            ensure!(
                report.ok(),
                "CHAP_A={code} chosen, our {} response refused: {}",
                algorithm.name(),
                report.describe()
            );
            pass()
        }
        Some(other) => fail(format!(
            "offered only CHAP_A={code}, the target chose {other:?}"
        )),
        None => fail(format!("no CHAP_A answer: {}", report.describe())),
    }
}

async fn choice_from_list(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    let report = run(&ctx, &spec_with(&ctx, plan(creds, "7,6,5"))).await?;
    match report.answer("CHAP_A") {
        Some("5" | "6" | "7") => {
            ensure!(
                report.ok(),
                "CHAP_A={:?} chosen, then {}",
                report.answer("CHAP_A"),
                report.describe()
            );
            pass()
        }
        other => fail(format!(
            "offered CHAP_A=7,6,5, the target answered {other:?}"
        )),
    }
}

async fn unknown_algorithm(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    let report = run(&ctx, &spec_with(&ctx, plan(creds, "99"))).await?;
    ensure!(!report.ok(), "CHAP_A=99 led to full feature phase");
    if report.answer("CHAP_A") == Some("Reject") {
        return pass();
    }
    match report.answer("CHAP_A") {
        Some(v) if v != "Reject" && report.challenge.is_some() => {
            fail(format!("CHAP_A=99 was answered {v:?} with a challenge"))
        }
        _ => refused_or_closed(&report),
    }
}

async fn challenge_of(
    ctx: &Ctx,
    creds: &(ChapCredentials, Option<ChapCredentials>),
) -> Result<Option<crate::probe::chap::TargetChallenge>, crate::ProbeError> {
    let report = run(ctx, &spec_with(ctx, plan(creds.clone(), "5"))).await?;
    Ok(report.challenge)
}

async fn challenge_fresh(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    let a = challenge_of(&ctx, &creds).await?;
    let b = challenge_of(&ctx, &creds).await?;
    match (a, b) {
        (Some(a), Some(b)) => {
            ensure!(
                a.challenge != b.challenge,
                "two logins got the same {}-byte CHAP_C",
                a.challenge.len()
            );
            pass()
        }
        _ => fail("a login with CHAP_A=5 got no challenge"),
    }
}

async fn challenge_length(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    match challenge_of(&ctx, &creds).await? {
        Some(c) => {
            ensure!(
                c.challenge.len() >= 16,
                "CHAP_C is {} bytes",
                c.challenge.len()
            );
            pass()
        }
        None => fail("a login with CHAP_A=5 got no challenge"),
    }
}

async fn replay(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    let Some(first) = challenge_of(&ctx, &creds).await? else {
        return fail("a login with CHAP_A=5 got no challenge");
    };
    let mut p = plan(creds, "5");
    p.tamper = Tamper::Replay(first.response.clone());
    let report = run(&ctx, &spec_with(&ctx, p)).await?;
    if report
        .challenge
        .as_ref()
        .is_some_and(|c| c.challenge == first.challenge && c.identifier == first.identifier)
    {
        return fail("the second login got the first one's challenge again, so a replay succeeds");
    }
    refused_with(&report, LoginStatus::AUTHENTICATION_FAILURE)
}

async fn auth_none_refused(ctx: Arc<Ctx>) -> TestResult {
    if credentials(&ctx).is_none() {
        return skip(NO_CHAP);
    }
    let ep = ctx.primary().clone();
    let mut spec = ctx.spec(&ep);
    spec.auth = Auth::None;
    spec.auth_method = Some("None".into());
    let report = run(&ctx, &spec).await?;
    if report.ok() {
        return skip(
            "the target accepts AuthMethod=None: it does not require CHAP, though the URL gives credentials",
        );
    }
    refused_with(&report, LoginStatus::AUTHENTICATION_FAILURE)
}

async fn mutual(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    if creds.1.is_none() {
        return skip(
            "the URL gives no target credentials for mutual CHAP (target_user, target_password)",
        );
    }
    let p = plan(creds, "5");
    let report = run(&ctx, &spec_with(&ctx, p)).await?;
    match &report.mutual {
        Some(Ok(())) if report.ok() => pass(),
        Some(Ok(())) => fail(format!(
            "the target's answer was right, but {}",
            report.describe()
        )),
        Some(Err(why)) => fail(format!("mutual CHAP: {why}")),
        None => fail(format!("no mutual CHAP answer: {}", report.describe())),
    }
}

async fn reflected(ctx: Arc<Ctx>) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    if creds.1.is_none() {
        return skip(
            "the URL gives no target credentials for mutual CHAP (target_user, target_password)",
        );
    }
    let mut p = plan(creds, "5");
    p.tamper = Tamper::ReflectChallenge;
    let report = run(&ctx, &spec_with(&ctx, p)).await?;
    ensure!(
        !report.ok(),
        "the target answered its own challenge and completed the login"
    );
    if matches!(report.end, LoginEnd::Stopped(_)) && report.mutual.is_some() {
        return fail("the target sent a CHAP_R for its own reflected challenge");
    }
    refused_or_closed(&report)
}

async fn tampered(ctx: Arc<Ctx>, tamper: Tamper, strict: bool) -> TestResult {
    let Some(creds) = credentials(&ctx) else {
        return skip(NO_CHAP);
    };
    let mutual = creds.1.is_some();
    let mut p = plan(creds, "5");
    p.tamper = tamper;
    let report = run(&ctx, &spec_with(&ctx, p)).await?;
    ensure!(
        !report.ok(),
        "a wrong CHAP answer reached full feature phase"
    );
    if mutual && report.mutual.is_some() {
        return fail("the target answered our mutual challenge although our response was wrong");
    }
    if strict {
        refused_with(&report, LoginStatus::AUTHENTICATION_FAILURE)
    } else {
        match report.status() {
            Some(LoginStatus::AUTHENTICATION_FAILURE) => pass(),
            _ => refused_or_closed(&report),
        }
    }
}
