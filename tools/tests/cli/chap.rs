//! CHAP from every place the tool takes it (URL, secret files, environment),
//! one-way and mutual; a wrong secret fails with one line; no secret is ever
//! printed, not even at trace level.

use riscsi_tests::portal_string;
use riscsi_tests::prelude::*;

use crate::support::{Outcome, Riscsi, riscsi, write_file};

const USER: &str = "alice";
const SECRET: &str = "alice-secret-5521";
const WRONG: &str = "mallory-guess-0917";
const TARGET_USER: &str = "array";
const TARGET_SECRET: &str = "array-secret-8812";
const TARGET_WRONG: &str = "forged-array-3306";
const ALL_SECRETS: &[&str] = &[SECRET, WRONG, TARGET_SECRET, TARGET_WRONG];

/// `host:port/iqn/lun` of the fixture's LUN, for building URLs.
fn volume_path(fixture: &impl Fixture) -> String {
    format!(
        "{}/{}/{}",
        portal_string(fixture.portals()[0]),
        fixture.iqn(),
        fixture.first_lun().number
    )
}

/// Runs the `inquiry` command line `build` makes with `--json`: quietly, then
/// at trace level both ways (`-vvv` and `RUST_LOG`). No secret may appear in
/// any of them, and all three must agree on success. Returns the quiet run.
fn inquiry_everywhere(build: impl Fn() -> Riscsi) -> Outcome {
    let quiet = build().args(["--json"]).run();
    for loud in [
        build().args(["--json", "-vvv"]).run(),
        build().args(["--json"]).env("RUST_LOG", "trace").run(),
    ] {
        assert_eq!(
            loud.status.success(),
            quiet.status.success(),
            "{}",
            loud.stderr
        );
        // The CHAP exchange itself is logged at debug level.
        assert!(
            loud.stderr.contains("DEBUG") && loud.stderr.contains("CHAP"),
            "debug logging is off?\n{}",
            loud.stderr
        );
        for secret in ALL_SECRETS {
            loud.assert_never_shows(secret);
        }
    }
    for secret in ALL_SECRETS {
        quiet.assert_never_shows(secret);
    }
    quiet
}

#[track_caller]
fn assert_logged_in_with_chap(outcome: &Outcome) {
    assert!(outcome.status.success(), "{}", outcome.stderr);
    assert_eq!(outcome.json()["session"]["auth_method"], "CHAP");
}

#[test]
fn one_way_chap_from_url_file_and_environment() {
    let tgt = Tgt::builder().chap(USER, SECRET).start().unwrap();
    let path = volume_path(&tgt);
    let dir = tempfile::tempdir().unwrap();
    let good_file = write_file(&dir, "good", format!("{SECRET}\n").as_bytes());
    let wrong_file = write_file(&dir, "wrong", format!("{WRONG}\n").as_bytes());
    let good_file = good_file.to_str().unwrap();
    let wrong_file = wrong_file.to_str().unwrap();

    let from_url = format!("iscsi://{USER}%{SECRET}@{path}");
    assert_logged_in_with_chap(&inquiry_everywhere(|| {
        riscsi(["inquiry", from_url.as_str()])
    }));

    let bare = format!("iscsi://{path}");
    assert_logged_in_with_chap(&inquiry_everywhere(|| {
        riscsi([
            "inquiry",
            bare.as_str(),
            "--chap-user",
            USER,
            "--chap-secret-file",
            good_file,
        ])
    }));

    let user_only = format!("iscsi://{USER}@{path}");
    assert_logged_in_with_chap(&inquiry_everywhere(|| {
        riscsi(["inquiry", user_only.as_str()]).env("RISCSI_CHAP_SECRET", SECRET)
    }));
    assert_logged_in_with_chap(&inquiry_everywhere(|| {
        riscsi(["inquiry", bare.as_str(), "--chap-user", USER]).env("RISCSI_CHAP_SECRET", SECRET)
    }));

    let wrong_url = format!("iscsi://{USER}%{WRONG}@{path}");
    let wrong_runs = [
        inquiry_everywhere(|| riscsi(["inquiry", wrong_url.as_str()])),
        inquiry_everywhere(|| {
            riscsi([
                "inquiry",
                bare.as_str(),
                "--chap-user",
                USER,
                "--chap-secret-file",
                wrong_file,
            ])
        }),
        inquiry_everywhere(|| {
            riscsi(["inquiry", user_only.as_str()]).env("RISCSI_CHAP_SECRET", WRONG)
        }),
        // No credentials at all.
        inquiry_everywhere(|| riscsi(["inquiry", bare.as_str()])),
    ];
    for run in &wrong_runs {
        run.one_error_line();
    }
}

#[test]
fn mutual_chap_from_url_file_and_environment() {
    let tgt = Tgt::builder()
        .chap(USER, SECRET)
        .mutual_chap(TARGET_USER, TARGET_SECRET)
        .start()
        .unwrap();
    let path = volume_path(&tgt);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = write_file(&dir, "initiator", SECRET.as_bytes());
    let target_file = write_file(&dir, "target", TARGET_SECRET.as_bytes());
    let forged_file = write_file(&dir, "forged", TARGET_WRONG.as_bytes());
    let secret_file = secret_file.to_str().unwrap();
    let target_file = target_file.to_str().unwrap();
    let forged_file = forged_file.to_str().unwrap();

    let from_url = format!(
        "iscsi://{USER}%{SECRET}@{path}?target_user={TARGET_USER}&target_password={TARGET_SECRET}"
    );
    assert_logged_in_with_chap(&inquiry_everywhere(|| {
        riscsi(["inquiry", from_url.as_str()])
    }));

    let bare = format!("iscsi://{path}");
    let with_files = |target_secret_file: &str| {
        riscsi([
            "inquiry",
            bare.as_str(),
            "--chap-user",
            USER,
            "--chap-secret-file",
            secret_file,
        ])
        .args(["--target-user", TARGET_USER])
        .args(["--target-secret-file", target_secret_file])
    };
    assert_logged_in_with_chap(&inquiry_everywhere(|| with_files(target_file)));

    let users_in_url = format!("iscsi://{USER}@{path}?target_user={TARGET_USER}");
    assert_logged_in_with_chap(&inquiry_everywhere(|| {
        riscsi(["inquiry", users_in_url.as_str()])
            .env("RISCSI_CHAP_SECRET", SECRET)
            .env("RISCSI_TARGET_SECRET", TARGET_SECRET)
    }));

    // The target cannot prove it knows these: the login must fail.
    let forged_url = format!(
        "iscsi://{USER}%{SECRET}@{path}?target_user={TARGET_USER}&target_password={TARGET_WRONG}"
    );
    let forged_runs = [
        inquiry_everywhere(|| riscsi(["inquiry", forged_url.as_str()])),
        inquiry_everywhere(|| with_files(forged_file)),
        inquiry_everywhere(|| {
            riscsi(["inquiry", users_in_url.as_str()])
                .env("RISCSI_CHAP_SECRET", SECRET)
                .env("RISCSI_TARGET_SECRET", TARGET_WRONG)
        }),
    ];
    for run in &forged_runs {
        run.one_error_line();
    }
}

/// Mutual CHAP against a target that has no outgoing account: tgtd refuses
/// it exactly as it refuses a wrong secret, and the one line says which it
/// was (a wrong secret of ours, or the missing account), never a secret.
#[test]
fn mutual_chap_without_an_outgoing_account_says_so() {
    let tgt = Tgt::builder().chap(USER, SECRET).start().unwrap();
    let path = volume_path(&tgt);
    let url = |secret: &str| {
        format!(
            "iscsi://{USER}%{secret}@{path}?target_user={TARGET_USER}&target_password={TARGET_SECRET}"
        )
    };
    let missing = inquiry_everywhere(|| riscsi(["inquiry", url(SECRET).as_str()]));
    let line = missing.one_error_line();
    assert!(
        line.contains(tgt.iqn())
            && line.contains("though it accepts our user name \"alice\" and secret")
            && line.contains("no outgoing (mutual) account for this target"),
        "{line}"
    );
    let wrong = inquiry_everywhere(|| riscsi(["inquiry", url(WRONG).as_str()]));
    let line = wrong.one_error_line();
    assert!(
        line.contains("the target refused our user name \"alice\" or its secret"),
        "{line}"
    );
}
