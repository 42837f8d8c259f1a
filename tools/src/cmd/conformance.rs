//! `riscsi conformance URL [URL2]`: the target conformance suite of the
//! iscsi-conformance crate, with its table on stdout, JUnit XML on
//! request, and an expected-results file to compare against.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use iscsi_conformance::probe::Probe;
use iscsi_conformance::registry::Shard;
use iscsi_conformance::report::junit::RunInfo;
use iscsi_conformance::{Endpoint, Expectations, SuiteConfig, TestCase, registry, report, runner};
use iscsi_session::IscsiUrl;

use super::Context;
use crate::auth;
use crate::cli::{AuthArgs, InitiatorArgs};
use crate::error::{CliError, Result};
use crate::printable::printable;

#[derive(Debug, Args)]
pub struct ConformanceArgs {
    /// The LU under test: iscsi://[user[%secret]@]host[:port]/target-iqn/lun
    /// (digest and target_user options as for other commands).
    #[arg(required_unless_present = "list")]
    pub url: Option<String>,
    /// The same LU through a second portal, for the multipath family.
    pub url2: Option<String>,
    /// Run only the tests this selects: a test id, a prefix ending at a dot
    /// (login, login.chap) or a glob (*.md5); repeatable.
    #[arg(short = 't', long = "test", value_name = "FAMILY.GROUP.TEST")]
    pub tests: Vec<String>,
    /// Report the tests this selects as skipped without running them (a
    /// test known to crash the target would end the run); repeatable.
    #[arg(short = 'x', long = "exclude", value_name = "FAMILY.GROUP.TEST")]
    pub exclude: Vec<String>,
    /// Run one part K of N of the selection (every Nth test from the Kth),
    /// to spread a slow target's run over N targets of the same kind at
    /// once; each part needs its own target.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// List the selected tests with the section each checks, and run nothing.
    #[arg(long)]
    pub list: bool,
    /// Also run the tests that write to the LU, reset it or change its
    /// reservations (the data on it are lost).
    #[arg(long)]
    pub dataloss: bool,
    /// Write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The target's known deviations, one `id verdict explanation` line
    /// each: the run fails only where it differs from them.
    #[arg(long, value_name = "FILE")]
    pub expected: Option<PathBuf>,
    /// How many tests run at once; tests that reset the LU or change
    /// reservations still run alone, after the others.
    #[arg(short = 'j', long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Seconds one PDU may take before the probe gives up.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub pdu_timeout: f64,
    /// Seconds of silence that mean "the target sends nothing".
    #[arg(long, default_value_t = 0.3, value_name = "SECONDS")]
    pub quiet: f64,
    /// A target configured to send NOP-In pings often (the ff.nop_in tests;
    /// without it they wait for pings on the LU under test).
    #[arg(long, value_name = "URL")]
    pub ping_url: Option<String>,
    /// Seconds the ff.nop_in tests wait for one ping from the target.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    pub nop_in_wait: f64,
    /// A target configured to redirect its logins (the login.redirect
    /// tests; skipped without it).
    #[arg(long, value_name = "URL")]
    pub redirect_url: Option<String>,
    #[command(flatten)]
    pub initiator: InitiatorArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
}

fn seconds(what: &str, v: f64) -> Result<Duration> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(CliError::usage(format!(
            "--{what} {v} is not between 0 and 3600 seconds"
        )))
    }
}

fn endpoint(arg: &str, args: &ConformanceArgs) -> Result<Endpoint> {
    let mut url: IscsiUrl = arg.parse()?;
    auth::apply(&mut url, &args.auth, auth::env_secret)?;
    Endpoint::from_url(&url).map_err(|e| CliError::usage(e.to_string()))
}

/// The tests `-t` and `--shard` select.
fn selection(args: &ConformanceArgs) -> Result<Vec<TestCase>> {
    let tests = registry::select(registry::all(), &args.tests);
    if tests.is_empty() {
        return Err(CliError::usage("no test matches the -t patterns"));
    }
    Ok(match args.shard {
        Some(shard) => shard.take(tests),
        None => tests,
    })
}

/// `--list`: needs no target and no initiator name.
pub fn list(args: &ConformanceArgs) -> Result<()> {
    let tests = selection(args)?;
    let mut out = String::new();
    for t in &tests {
        let mut flags = Vec::new();
        if t.destructive {
            flags.push("dataloss");
        }
        if t.needs_second_path {
            flags.push("url2");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", flags.join(", "))
        };
        out.push_str(&format!(
            "{:<56} {:<34} {}{flags}\n",
            t.id, t.section, t.summary
        ));
    }
    let mut per_family: Vec<(String, usize)> = Vec::new();
    for t in &tests {
        match per_family.iter_mut().find(|(f, _)| f == t.family()) {
            Some((_, n)) => *n += 1,
            None => per_family.push((t.family().to_owned(), 1)),
        }
    }
    let counts: Vec<String> = per_family.iter().map(|(f, n)| format!("{f} {n}")).collect();
    out.push_str(&format!("\n{} tests: {}\n", tests.len(), counts.join(", ")));
    print!("{out}");
    Ok(())
}

pub async fn run(ctx: &Context, args: ConformanceArgs) -> Result<()> {
    let tests = selection(&args)?;
    let url = args
        .url
        .as_deref()
        .ok_or_else(|| CliError::usage("the URL of the LU under test is required"))?;
    let primary = endpoint(url, &args)?;
    let mut config = SuiteConfig::new(primary, ctx.initiator_name.clone());
    if let Some(u2) = &args.url2 {
        config.secondary = Some(endpoint(u2, &args)?);
    }
    config.dataloss = args.dataloss;
    config.excluded = args.exclude.clone();
    config.jobs = usize::from(args.jobs);
    config.pdu_timeout = seconds("pdu-timeout", args.pdu_timeout)?;
    config.quiet_period = seconds("quiet", args.quiet)?;
    config.nop_in_wait = seconds("nop-in-wait", args.nop_in_wait)?;
    if let Some(u) = &args.ping_url {
        config.pinging = Some(endpoint(u, &args)?);
    }
    if let Some(u) = &args.redirect_url {
        config.redirected = Some(endpoint(u, &args)?);
    }
    // The ping tests wait for up to three pings, then answer one of theirs.
    config.test_timeout = (config.pdu_timeout * 6)
        .max(Duration::from_secs(10))
        .max(config.nop_in_wait * 4 + config.pdu_timeout);
    let expectations = match &args.expected {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| CliError::File {
                what: "cannot read the expected-results file",
                path: path.clone(),
                source,
            })?;
            Some(
                Expectations::parse(&text)
                    .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?,
            )
        }
        None => None,
    };
    reachable(&config).await?;
    let info = RunInfo {
        properties: vec![
            ("target".into(), config.primary.target.clone()),
            ("portal".into(), config.primary.portal.to_string()),
            ("lun".into(), config.primary.lun.to_string()),
            (
                "second_portal".into(),
                config
                    .secondary
                    .as_ref()
                    .map(|s| s.portal.to_string())
                    .unwrap_or_default(),
            ),
            ("initiator".into(), config.initiator_name.clone()),
            ("dataloss".into(), config.dataloss.to_string()),
            (
                "shard".into(),
                args.shard.map(|s| s.to_string()).unwrap_or_default(),
            ),
        ],
    };
    // Each line already escapes what came from the target.
    let records = runner::run(config, &tests, |r| println!("{}", report::table::line(r))).await;
    println!();
    print!("{}", report::table::summary(&records));
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit::render(&records, &info)).map_err(|source| {
            CliError::File {
                what: "cannot write the JUnit file",
                path: path.clone(),
                source,
            }
        })?;
    }
    match expectations {
        Some(expected) => {
            let known: Vec<String> = registry::all().into_iter().map(|t| t.id).collect();
            let mismatches = expected.compare(&records, &known);
            let listed = records
                .iter()
                .filter(|r| !r.gated && expected.get(&r.id).is_some())
                .count();
            if mismatches.is_empty() {
                println!(
                    "as expected: every result matches the expected-results file ({listed} known deviations)"
                );
                Ok(())
            } else {
                for m in &mismatches {
                    println!("UNEXPECTED {}", printable(&m.to_string()));
                }
                Err(CliError::Conformance(format!(
                    "{} results differ from the expected-results file",
                    mismatches.len()
                )))
            }
        }
        None => {
            let bad = records
                .iter()
                .filter(|r| {
                    matches!(
                        r.outcome.verdict(),
                        iscsi_conformance::Verdict::Fail | iscsi_conformance::Verdict::Error
                    )
                })
                .count();
            if bad == 0 {
                Ok(())
            } else {
                Err(CliError::Conformance(format!(
                    "{bad} tests failed or could not finish"
                )))
            }
        }
    }
}

/// Every portal the run will use answers a TCP connection: an unreachable
/// target is one line, not every test ending in the same error.
async fn reachable(config: &SuiteConfig) -> Result<()> {
    let endpoints = [
        Some(&config.primary),
        config.secondary.as_ref(),
        config.pinging.as_ref(),
        config.redirected.as_ref(),
    ];
    for endpoint in endpoints.into_iter().flatten() {
        if let Err(e) = Probe::connect(endpoint, config.pdu_timeout).await {
            return Err(CliError::Conformance(format!(
                "{e}; no test was run (is the target up and the URL right?)"
            )));
        }
    }
    Ok(())
}
