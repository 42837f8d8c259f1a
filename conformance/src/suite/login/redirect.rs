//! Login redirection (RFC 7143 §11.13.5 status class 1, §13.8
//! TargetAddress). Runs on the `--redirect-url` target, one configured to
//! redirect its logins; without it the tests are skipped with that reason.

use std::sync::Arc;

use crate::context::Ctx;
use crate::endpoint::Endpoint;
use crate::ensure;
use crate::outcome::{TestResult, fail, pass, skip};
use crate::probe::{LoginEnd, LoginReport};
use crate::registry::TestCase;

/// The redirect tests.
pub fn tests() -> Vec<TestCase> {
    vec![
        TestCase::new(
            "login.redirect.status_and_address",
            "RFC 7143 §11.13.5, §13.8",
            "a redirected login is answered with status 0101 or 0102 and a well-formed TargetAddress",
            status_and_address,
        ),
        TestCase::new(
            "login.redirect.connection_closed",
            "RFC 7143 §11.13.5",
            "after a redirect (status class 1) the target closes the TCP connection",
            connection_closed,
        ),
        TestCase::new(
            "login.redirect.address_leads_to_target",
            "RFC 7143 §11.13.5, §13.8",
            "a login at the redirect's TargetAddress, with the same TargetName, reaches full feature phase (within three redirects)",
            address_leads_to_target,
        ),
    ]
}

/// Redirects followed before a chain counts as a loop.
const MAX_REDIRECTS: usize = 3;

const NO_REDIRECT: &str =
    "no --redirect-url given: a target configured to redirect its logins is needed";

async fn redirected_login(
    ctx: &Ctx,
    ep: &Endpoint,
) -> Result<(crate::probe::Probe, LoginReport), crate::ProbeError> {
    let mut probe = ctx.connect(ep).await?;
    let report = probe.login(&ctx.spec(ep)).await?;
    Ok((probe, report))
}

/// The TargetAddress values of a refused login's last response.
fn redirect_addresses(report: &LoginReport) -> Vec<String> {
    report
        .last()
        .map(|r| crate::probe::text::decode(&r.data))
        .unwrap_or_default()
        .into_iter()
        .filter(|kv| kv.key == "TargetAddress")
        .map(|kv| kv.value)
        .collect()
}

async fn status_and_address(ctx: Arc<Ctx>) -> TestResult {
    let Some(ep) = ctx.config.redirected.clone() else {
        return skip(NO_REDIRECT);
    };
    let (probe, report) = redirected_login(&ctx, &ep).await?;
    if report.ok() {
        ctx.close(probe).await;
        return fail(format!(
            "the --redirect-url target {} let the login reach full feature phase",
            ep.target
        ));
    }
    let status = match report.end {
        LoginEnd::Refused(s) => s,
        _ => return fail(format!("expected a redirect, but {}", report.describe())),
    };
    ensure!(
        status.class == 1 && (status.detail == 1 || status.detail == 2),
        "expected status 0101 (moved temporarily) or 0102 (moved permanently), got {status}"
    );
    // A refused response's keys are not among the report's answers.
    let addresses = redirect_addresses(&report);
    ensure!(
        !addresses.is_empty(),
        "the redirect response ({status}) carries no TargetAddress"
    );
    for a in addresses {
        if let Err(e) = iscsi_proto::text::TargetAddress::parse(&a) {
            return fail(format!("TargetAddress={a:?} does not parse: {e}"));
        }
    }
    pass()
}

async fn connection_closed(ctx: Arc<Ctx>) -> TestResult {
    let Some(ep) = ctx.config.redirected.clone() else {
        return skip(NO_REDIRECT);
    };
    let (mut probe, report) = redirected_login(&ctx, &ep).await?;
    match report.status() {
        Some(s) if s.class == 1 => {}
        _ => {
            if report.ok() {
                ctx.close(probe).await;
            }
            return fail(format!("expected a redirect, but {}", report.describe()));
        }
    }
    let (closed, seen) = probe.wait_closed(ctx.config.pdu_timeout).await;
    ensure!(
        closed,
        "the connection is still open {:?} after the redirect{}",
        ctx.config.pdu_timeout,
        if seen.is_empty() {
            String::new()
        } else {
            format!(" ({} more PDUs came)", seen.len())
        }
    );
    pass()
}

async fn address_leads_to_target(ctx: Arc<Ctx>) -> TestResult {
    let Some(first) = ctx.config.redirected.clone() else {
        return skip(NO_REDIRECT);
    };
    let mut ep = first.clone();
    let mut hops = Vec::new();
    loop {
        let (probe, report) = redirected_login(&ctx, &ep).await?;
        if report.ok() {
            ctx.close(probe).await;
            ensure!(
                !hops.is_empty(),
                "the --redirect-url target {} let the login reach full feature phase without a redirect",
                first.target
            );
            return pass();
        }
        let status = match report.status() {
            Some(s) if s.class == 1 => s,
            _ if hops.is_empty() => {
                return fail(format!("expected a redirect, but {}", report.describe()));
            }
            _ => {
                return fail(format!(
                    "after the redirect to {}, the login there {}",
                    hops.join(" then "),
                    report.describe()
                ));
            }
        };
        if hops.len() == MAX_REDIRECTS {
            return fail(format!(
                "still redirected ({status}) after {MAX_REDIRECTS} redirects: {}",
                hops.join(" then ")
            ));
        }
        let Some(address) = redirect_addresses(&report).into_iter().next() else {
            return fail(format!(
                "the redirect response ({status}) carries no TargetAddress"
            ));
        };
        let parsed = match iscsi_proto::text::TargetAddress::parse(&address) {
            Ok(a) => a,
            Err(e) => return fail(format!("TargetAddress={address:?} does not parse: {e}")),
        };
        hops.push(address);
        ep = Endpoint {
            portal: parsed.into(),
            ..first.clone()
        };
    }
}
