//! CHAP on discovery sessions (RFC 7143 §12.1.3, §13.21; §11.13.5 for the
//! refusals). The URL's credentials are used; a target that lets a
//! discovery session in with AuthMethod=None does not require CHAP there,
//! and every test here is skipped with that reason.

use std::sync::Arc;

use iscsi_proto::pdu::LoginStatus;
use iscsi_proto::text::KeyValue;
use iscsi_session::ChapCredentials;

use crate::context::Ctx;
use crate::ensure;
use crate::error::ProbeError;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::chap::{ChapPlan, Tamper};
use crate::probe::{Auth, LoginReport, LoginSpec, Probe};
use crate::registry::TestCase;
use crate::suite::login::basic::attempt;
use crate::suite::support::refused_with;

/// The discovery CHAP tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "login.discovery_chap.auth_none_refused",
            "RFC 7143 §12, §11.13.5",
            "a discovery login offering only AuthMethod=None is refused with 0201 where discovery needs CHAP",
            auth_none_refused,
        ),
        TestCase::new(
            "login.discovery_chap.md5",
            "RFC 7143 §12.1.3, §13.21",
            "a discovery login with the right CHAP (MD5) answer reaches full feature phase and SendTargets answers",
            md5,
        ),
        TestCase::new(
            "login.discovery_chap.wrong_secret",
            "RFC 7143 §12.1.3, §11.13.5",
            "a discovery login whose CHAP response uses another secret is refused with 0201",
            wrong_secret,
        ),
        TestCase::new(
            "login.discovery_chap.mutual",
            "RFC 7143 §12.1.3",
            "mutual CHAP on a discovery session: the target answers our challenge with the right response",
            mutual,
        ),
    ]
}

const NO_CHAP: &str = "the URL gives no CHAP credentials (iscsi://user%secret@host/...)";

const NOT_REQUIRED: &str = "the target lets discovery sessions in with AuthMethod=None: it does not require CHAP on discovery";

type Credentials = (ChapCredentials, Option<ChapCredentials>);

fn discovery_spec(ctx: &Ctx, auth: Auth, method: &str) -> LoginSpec {
    let mut spec = LoginSpec::discovery(ctx.initiator(), auth);
    spec.auth_method = Some(method.into());
    spec
}

fn chap_spec(creds: Credentials, ctx: &Ctx, tamper: Tamper) -> LoginSpec {
    let plan = ChapPlan {
        algorithms: "5".into(),
        credentials: creds.0,
        mutual: creds.1,
        hash_as: None,
        tamper,
    };
    discovery_spec(ctx, Auth::Chap(plan), "CHAP")
}

async fn run(ctx: &Ctx, spec: &LoginSpec) -> Result<(Option<Probe>, LoginReport), ProbeError> {
    let (probe, report) = attempt(ctx, spec).await?;
    Ok((report.ok().then_some(probe), report))
}

/// The credentials, or the reason the tests here do not apply: none in
/// the URL, or a target that does not require CHAP on discovery.
async fn prerequisites(ctx: &Ctx) -> Result<Result<Credentials, String>, ProbeError> {
    let ep = ctx.primary();
    let Some(initiator) = ep.initiator_chap().cloned() else {
        return Ok(Err(NO_CHAP.into()));
    };
    let creds = (initiator, ep.target_chap().cloned());
    let (probe, _) = run(ctx, &discovery_spec(ctx, Auth::None, "None")).await?;
    if let Some(probe) = probe {
        ctx.close(probe).await;
        return Ok(Err(NOT_REQUIRED.into()));
    }
    Ok(Ok(creds))
}

async fn auth_none_refused(ctx: Arc<Ctx>) -> TestResult {
    if ctx.primary().initiator_chap().is_none() {
        return skip(NO_CHAP);
    }
    let (probe, report) = run(&ctx, &discovery_spec(&ctx, Auth::None, "None")).await?;
    if let Some(probe) = probe {
        ctx.close(probe).await;
        return skip(NOT_REQUIRED);
    }
    refused_with(&report, LoginStatus::AUTHENTICATION_FAILURE)
}

async fn md5(ctx: Arc<Ctx>) -> TestResult {
    let creds = match prerequisites(&ctx).await? {
        Ok(c) => c,
        Err(why) => return skip(why),
    };
    let (probe, report) = run(&ctx, &chap_spec(creds, &ctx, Tamper::None)).await?;
    let Some(mut probe) = probe else {
        return fail(format!(
            "the right CHAP answer on a discovery session: {}",
            report.describe()
        ));
    };
    let target = ctx.primary().target.clone();
    let answer = probe
        .text(false, &[KeyValue::new("SendTargets", "All")])
        .await;
    ctx.close(probe).await;
    let keys = answer?.keys;
    ensure!(
        keys.iter()
            .any(|kv| kv.key == "TargetName" && kv.value == target),
        "SendTargets=All after a CHAP discovery login does not list {target}"
    );
    pass()
}

async fn wrong_secret(ctx: Arc<Ctx>) -> TestResult {
    let creds = match prerequisites(&ctx).await? {
        Ok(c) => c,
        Err(why) => return skip(why),
    };
    let mutual = creds.1.is_some();
    let (probe, report) = run(&ctx, &chap_spec(creds, &ctx, Tamper::WrongSecret)).await?;
    if let Some(probe) = probe {
        ctx.close(probe).await;
        return fail("a wrong CHAP response let a discovery session into full feature phase");
    }
    if mutual && report.mutual.is_some() {
        return fail("the target answered our mutual challenge although our response was wrong");
    }
    refused_with(&report, LoginStatus::AUTHENTICATION_FAILURE)
}

async fn mutual(ctx: Arc<Ctx>) -> TestResult {
    let creds = match prerequisites(&ctx).await? {
        Ok(c) => c,
        Err(why) => return skip(why),
    };
    if creds.1.is_none() {
        return skip(
            "the URL gives no target credentials for mutual CHAP (target_user, target_password)",
        );
    }
    let (probe, report) = run(&ctx, &chap_spec(creds, &ctx, Tamper::None)).await?;
    if let Some(probe) = probe {
        ctx.close(probe).await;
    }
    match &report.mutual {
        Some(Ok(())) if report.ok() => pass(),
        Some(Ok(())) => fail(format!(
            "the target's answer was right, but {}",
            report.describe()
        )),
        Some(Err(why)) => fail(format!("mutual CHAP on discovery: {why}")),
        None => fail(format!(
            "no mutual CHAP answer on discovery: {}",
            report.describe()
        )),
    }
}
