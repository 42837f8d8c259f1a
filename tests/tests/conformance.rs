//! `riscsi conformance` against a throwaway tgtd and istgt, each with two
//! portals (the multipath family) and mutual CHAP, every family and
//! `--dataloss`: the run must match the target's expected-results file
//! (conformance/expected/), and the JUnit XML must hold every test of the
//! suite, with every skip explained there, so that nothing is skipped or
//! dropped silently.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use iscsi_conformance::Expectations;
use riscsi_tests::prelude::*;
use riscsi_tests::{ToolCommand, riscsi_binary};

const RUN_TIMEOUT: Duration = Duration::from_secs(240);
const INITIATOR: &str = "iqn.2026-12.test.riscsi:conformance";
const PING_IQN: &str = "iqn.2026-12.test.riscsi:conformance-ping";
const REDIRECT_IQN: &str = "iqn.2026-12.test.riscsi:conformance-redirect";

fn expected_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/expected")
        .join(name)
}

/// `id -> (verdict, message)` from the JUnit XML.
fn junit_results(xml: &str) -> HashMap<String, (String, String)> {
    let doc = roxmltree::Document::parse(xml).expect("the JUnit file is XML");
    let mut out = HashMap::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let id = case
            .attribute("name")
            .expect("a testcase has a name")
            .to_owned();
        let child = case.children().find(|c| {
            c.has_tag_name("failure") || c.has_tag_name("error") || c.has_tag_name("skipped")
        });
        let (verdict, message) = match child {
            None => ("pass".to_owned(), String::new()),
            Some(c) => {
                let word = match c.tag_name().name() {
                    "failure" => "fail",
                    "error" => "error",
                    _ => "skip",
                };
                (
                    word.to_owned(),
                    c.attribute("message").unwrap_or_default().to_owned(),
                )
            }
        };
        assert!(
            out.insert(id.clone(), (verdict, message)).is_none(),
            "{id} appears twice"
        );
    }
    out
}

/// How one target is run.
struct Plan<'a> {
    /// Tests known to crash this target: reported as skipped (and listed so
    /// in its expected file) rather than ending the run.
    excluded: &'a [&'a str],
    /// `-t` selections; empty for the whole suite.
    selected: &'a [&'a str],
    /// `--shard K/N`, when this run is one part of the suite.
    shard: Option<&'a str>,
    jobs: &'a str,
    /// The whole `riscsi conformance` run.
    timeout: Duration,
}

fn run_suite(url: &str, url2: &str, expected: &Path, dir: &Path, plan: &Plan) -> Vec<String> {
    run_suite_with(url, url2, expected, dir, plan, &[])
}

/// The test ids of a `riscsi conformance --list`.
fn list_ids(listing: &str) -> Vec<String> {
    listing
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// [`run_suite`] with more arguments (the targets of the ping and redirect
/// tests). Returns the ids of the tests it ran.
fn run_suite_with(
    url: &str,
    url2: &str,
    expected: &Path,
    dir: &Path,
    plan: &Plan,
    extra: &[String],
) -> Vec<String> {
    let junit = dir.join("conformance.xml");
    let binary = riscsi_binary().unwrap();
    let mut command = ToolCommand::at(&binary, "riscsi")
        .args([
            "conformance",
            url,
            url2,
            "--dataloss",
            "--pdu-timeout",
            "2",
            "--quiet",
            "0.2",
        ])
        .arg("--junit")
        .arg(junit.to_string_lossy().to_string())
        .arg("--expected")
        .arg(expected.to_string_lossy().to_string())
        .args(["--initiator-name", INITIATOR])
        .args(["--jobs", plan.jobs]);
    for id in plan.excluded {
        command = command.args(["-x", id]);
    }
    for pattern in plan.selected {
        command = command.args(["-t", pattern]);
    }
    if let Some(shard) = plan.shard {
        command = command.args(["--shard", shard]);
    }
    command = command.args(extra.iter().map(String::as_str));
    let output = command.run(plan.timeout).unwrap();
    assert!(
        output.status.success(),
        "riscsi conformance differs from {}:\n{}\n{}",
        expected.display(),
        output.stdout,
        output.stderr
    );
    let mut list = ToolCommand::at(&binary, "riscsi").args(["conformance", "--list"]);
    for pattern in plan.selected {
        list = list.args(["-t", pattern]);
    }
    if let Some(shard) = plan.shard {
        list = list.args(["--shard", shard]);
    }
    let listing = list.run_ok(RUN_TIMEOUT).unwrap();
    let all = list_ids(&listing.stdout);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let results = junit_results(&xml);
    assert_eq!(
        results.len(),
        all.len(),
        "the JUnit file holds every test of --list"
    );
    let file = Expectations::parse(&std::fs::read_to_string(expected).unwrap()).unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &all {
        let (verdict, message) = results
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} is missing from the JUnit file"));
        let listed = file.get(id.as_str()).map_or("pass", |e| e.verdict.as_str());
        // The run compared itself already; the XML must say the same.
        assert_eq!(
            verdict, listed,
            "{id}: JUnit says {verdict} ({message}), the expected file {listed}"
        );
        if verdict == "skip" {
            assert!(!message.is_empty(), "{id} is skipped without a reason");
        }
        *counts.entry(verdict.as_str()).or_default() += 1;
    }
    println!("{}: {counts:?}", expected.display());
    all
}

#[test]
fn tgtd_matches_its_expected_results() {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(16 << 20))
        // tid 2 sends NOP-In pings every second (ff.nop_in), tid 3
        // redirects its logins (login.redirect) to `moved` below.
        .target(TargetSpec::new().iqn(PING_IQN))
        .target(TargetSpec::new().iqn(REDIRECT_IQN))
        .chap("conf-user", "conf-secret-0001")
        .mutual_chap("conf-target", "conf-target-secret-1")
        // tgtd accounts are global: discovery uses the same ones.
        .discovery_chap("conf-user", "conf-secret-0001")
        .discovery_mutual_chap("conf-target", "conf-target-secret-1")
        .start()
        .unwrap();
    let lun = tgt.first_lun().number;
    let portals = tgt.portals().to_vec();
    let url = tgt.libiscsi_url(portals[0], lun);
    let url2 = tgt.libiscsi_url(portals[1], lun);
    // Thin provisioning, so that UNMAP is offered (scsi.unmap).
    tgt.tgtadm(&[
        "--op",
        "update",
        "--mode",
        "logicalunit",
        "--tid",
        "1",
        "--lun",
        &lun.to_string(),
        "--params",
        "thin_provisioning=1",
    ])
    .unwrap();
    for (name, value) in [("nop_interval", "1"), ("nop_count", "5")] {
        tgt.tgtadm(&[
            "--op", "update", "--mode", "target", "--tid", "2", "--name", name, "--value", value,
        ])
        .unwrap();
    }
    // The redirect leads to a second tgtd that serves the redirected
    // target (a target moved to another array): tgtd redirects a login on
    // every portal of its own, so the destination cannot be one of them.
    let moved = Tgt::builder()
        .portal("127.0.0.2")
        .iqn(REDIRECT_IQN)
        .lun(LunSpec::new(1 << 20))
        .chap("conf-user", "conf-secret-0001")
        .mutual_chap("conf-target", "conf-target-secret-1")
        .start()
        .unwrap();
    let redirect_to = moved.portals()[0];
    for (name, value) in [
        ("RedirectAddress", redirect_to.ip().to_string()),
        ("RedirectPort", redirect_to.port().to_string()),
        ("RedirectReason", "Temporary".to_owned()),
    ] {
        tgt.tgtadm(&[
            "--op", "update", "--mode", "target", "--tid", "3", "--name", name, "--value", &value,
        ])
        .unwrap();
    }
    let plan = Plan {
        // tgtd 1.0.85 exits on MODE SENSE with ALLOCATION LENGTH 0;
        // its answer to UNMAP past the end varies from run to run.
        excluded: &[
            "scsi.alloc.mode_sense6_0",
            "scsi.alloc.mode_sense10_0",
            "scsi.unmap.past_end",
        ],
        selected: &[],
        shard: None,
        jobs: "4",
        timeout: RUN_TIMEOUT,
    };
    let extra = [
        "--ping-url".into(),
        tgt.libiscsi_target_url(portals[0], PING_IQN, 0),
        "--nop-in-wait".into(),
        "3".into(),
        "--redirect-url".into(),
        tgt.libiscsi_target_url(portals[0], REDIRECT_IQN, 0),
    ];
    run_suite_with(
        &url,
        &url2,
        &expected_file("tgtd.expected"),
        tgt.dir(),
        &plan,
        &extra,
    );
}

/// The whole suite against istgt, split over [`ISTGT_SHARDS`] daemons at
/// once. istgt 0.4 serves one login at a time and spends a second in each
/// (measured here, most of it asleep), and every test logs in afresh: what
/// a test checks (negotiation, CmdSN and StatSN from a new session,
/// logout, task management, UNIT ATTENTIONs after a reset) depends on the
/// session being its own. One daemon takes about nine minutes; shards on
/// daemons of their own (`--shard K/N`) wait side by side.
#[test]
fn istgt_matches_its_expected_results() {
    let runs: Vec<_> = (1..=ISTGT_SHARDS)
        .map(|k| {
            std::thread::Builder::new()
                .name(format!("istgt-shard-{k}"))
                .spawn(move || istgt_shard(k))
                .unwrap()
        })
        .collect();
    let mut ran: Vec<String> = Vec::new();
    let mut failures = Vec::new();
    for (k, run) in (1..=ISTGT_SHARDS).zip(runs) {
        match run.join() {
            Ok(ids) => ran.extend(ids),
            Err(panic) => failures.push(format!(
                "shard {k}/{ISTGT_SHARDS}: {}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("panicked")
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The shards together are the whole suite, each test once.
    let listing = ToolCommand::at(riscsi_binary().unwrap(), "riscsi")
        .args(["conformance", "--list"])
        .run_ok(RUN_TIMEOUT)
        .unwrap();
    let mut all = list_ids(&listing.stdout);
    all.sort_unstable();
    ran.sort_unstable();
    assert_eq!(ran, all, "the istgt shards ran the whole suite once");
}

/// Runs shard `k` of [`ISTGT_SHARDS`] on an istgt of its own and returns
/// the ids it ran.
fn istgt_shard(k: usize) -> Vec<String> {
    let istgt = Istgt::builder()
        .portal("127.0.0.1")
        .portal("127.0.0.2")
        .lun(LunSpec::new(16 << 20))
        .chap("conf-user", "conf-secret-0001")
        .mutual_chap("conf-target", "conf-target-secret-1")
        .start()
        .unwrap();
    let lun = istgt.first_lun().number;
    let url = istgt.libiscsi_url(istgt.portals()[0], lun);
    let url2 = istgt.libiscsi_url(istgt.portals()[1], lun);
    let shard = format!("{k}/{ISTGT_SHARDS}");
    let plan = Plan {
        excluded: ISTGT_VARYING,
        selected: &[],
        shard: Some(&shard),
        jobs: "1",
        timeout: ISTGT_SHARD_TIMEOUT,
    };
    run_suite(
        &url,
        &url2,
        &expected_file("istgt.expected"),
        istgt.dir(),
        &plan,
    )
}

/// istgt daemons the suite is spread over: each spends its time asleep in
/// logins, so they need no core of their own.
const ISTGT_SHARDS: usize = 4;
/// Tests whose result against istgt varies from run to run: reported
/// skipped (and listed so in istgt.expected) rather than run.
const ISTGT_VARYING: &[&str] = &[
    "ff.tmf.abort_task_held",
    "login.session.same_cid_reinstates_connection",
];
/// About a second a test for a quarter of the suite, and a margin.
const ISTGT_SHARD_TIMEOUT: Duration = Duration::from_secs(480);
