//! Fixtures leave nothing behind: not on drop, not on panic, not when the test
//! process is SIGKILLed; and many of them run at once.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use riscsi_tests::libiscsi::{self, TOOL_TIMEOUT};
use riscsi_tests::prelude::*;
use riscsi_tests::{Result, spawn_tied};

/// Environment variable that turns the helper test into the orphaned process.
const HELPER_ENV: &str = "RISCSI_TESTS_ORPHAN_HELPER";

/// Whether `pid` is a live process (a zombie waiting for init to reap it is dead).
fn is_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3, after the parenthesised command name, is the state.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Live processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    String::from_utf8_lossy(&raw)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .filter(|&pid| is_running(pid))
        .collect()
}

fn wait_until_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while is_running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Everything a fixture put on the machine.
#[derive(Debug)]
struct Footprint {
    pid: u32,
    files: Vec<PathBuf>,
    dir: PathBuf,
    /// A string only this daemon's command line contains.
    marker: String,
}

fn tgt_footprint(tgt: &Tgt) -> Footprint {
    let mut files: Vec<PathBuf> = tgt
        .targets()
        .iter()
        .flat_map(|t| t.luns.iter().map(|l| l.path.clone()))
        .collect();
    files.push(PathBuf::from(format!(
        "/var/run/tgtd/socket.{}",
        tgt.control_port()
    )));
    files.push(PathBuf::from(format!(
        "/var/run/tgtd/socket.{}.lock",
        tgt.control_port()
    )));
    Footprint {
        pid: tgt.pid(),
        files,
        dir: tgt.dir().to_owned(),
        marker: format!("-C {} ", tgt.control_port()),
    }
}

fn istgt_footprint(istgt: &Istgt) -> Footprint {
    Footprint {
        pid: istgt.pid(),
        files: istgt
            .targets()
            .iter()
            .flat_map(|t| t.luns.iter().map(|l| l.path.clone()))
            .collect(),
        dir: istgt.dir().to_owned(),
        marker: istgt.config_path().display().to_string(),
    }
}

fn assert_present(footprint: &Footprint) {
    assert!(is_running(footprint.pid), "{footprint:?}");
    assert!(footprint.dir.is_dir(), "{footprint:?}");
    for file in &footprint.files {
        assert!(file.exists(), "{} missing while running", file.display());
    }
    assert_eq!(processes_mentioning(&footprint.marker), [footprint.pid]);
}

fn assert_gone(footprint: &Footprint) {
    assert!(
        !is_running(footprint.pid),
        "daemon {} still running",
        footprint.pid
    );
    assert!(
        processes_mentioning(&footprint.marker).is_empty(),
        "{footprint:?}"
    );
    assert!(
        !footprint.dir.exists(),
        "{} left behind",
        footprint.dir.display()
    );
    for file in &footprint.files {
        assert!(!file.exists(), "{} left behind", file.display());
    }
}

#[test]
fn drop_leaves_no_process_and_no_file() -> Result<()> {
    let tgt = Tgt::builder()
        .portal("127.0.0.1")
        .portal("::1")
        .lun(LunSpec::new(1 << 20).pattern(1))
        .start()?;
    let istgt = Istgt::start()?;
    let footprints = [tgt_footprint(&tgt), istgt_footprint(&istgt)];
    footprints.iter().for_each(assert_present);
    drop(tgt);
    drop(istgt);
    // Dropping reaps the daemon: no zombie either.
    for footprint in &footprints {
        assert!(
            !Path::new(&format!("/proc/{}", footprint.pid)).exists(),
            "{footprint:?}"
        );
        assert_gone(footprint);
    }
    Ok(())
}

#[test]
fn teardown_runs_when_the_test_panics() {
    let (report, footprints) = mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let tgt = Tgt::start().expect("tgt starts");
        let istgt = Istgt::start().expect("istgt starts");
        report
            .send(vec![tgt_footprint(&tgt), istgt_footprint(&istgt)])
            .unwrap();
        panic!("a failing test");
    });
    assert!(outcome.is_err());
    for footprint in footprints.recv().unwrap() {
        assert_gone(&footprint);
    }
}

/// Runs only as the child of `daemons_die_with_a_killed_test_process`: starts both
/// daemons, reports what they created, and waits to be SIGKILLed.
#[test]
#[ignore = "helper process for daemons_die_with_a_killed_test_process"]
fn orphan_helper() -> Result<()> {
    if std::env::var_os(HELPER_ENV).is_none() {
        return Ok(());
    }
    let tgt = Tgt::start()?;
    let istgt = Istgt::start()?;
    for footprint in [tgt_footprint(&tgt), istgt_footprint(&istgt)] {
        let files: Vec<String> = footprint
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        println!(
            "FOOTPRINT\t{}\t{}\t{}\t{}",
            footprint.pid,
            footprint.dir.display(),
            footprint.marker,
            files.join("\t")
        );
    }
    println!("READY");
    thread::sleep(Duration::from_secs(60));
    Ok(())
}

/// Parses a `FOOTPRINT` line (libtest may have printed `test orphan_helper ... `
/// in front of it).
fn parse_footprint(line: &str) -> Option<Footprint> {
    let start = line.find("FOOTPRINT\t")? + "FOOTPRINT\t".len();
    let mut fields = line[start..].split('\t');
    Some(Footprint {
        pid: fields.next()?.parse().ok()?,
        dir: PathBuf::from(fields.next()?),
        marker: fields.next()?.to_owned(),
        files: fields.map(PathBuf::from).collect(),
    })
}

#[test]
fn daemons_die_with_a_killed_test_process() {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "orphan_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut helper = spawn_tied(command).unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = helper.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let _ = lines_tx.send(line);
        }
    });
    let mut footprints = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("helper did not report READY");
        footprints.extend(parse_footprint(&line));
        if line.ends_with("READY") {
            break;
        }
    }
    // Nothing runs the helper's destructors: remove what it leaves even if an
    // assertion below fails.
    let _cleanup = LeftoverCleanup(&footprints);
    assert_eq!(footprints.len(), 2, "{footprints:?}");
    footprints.iter().for_each(assert_present);

    helper.kill().unwrap(); // SIGKILL: no destructor runs in the helper.
    helper.wait().unwrap();
    for footprint in &footprints {
        assert!(
            wait_until_gone(footprint.pid, Duration::from_secs(5)),
            "daemon {} outlived its killed test process",
            footprint.pid
        );
        assert!(processes_mentioning(&footprint.marker).is_empty());
    }
}

/// Removes the files and directories of fixtures whose process was killed.
struct LeftoverCleanup<'a>(&'a [Footprint]);

impl Drop for LeftoverCleanup<'_> {
    fn drop(&mut self) {
        for footprint in self.0 {
            for file in &footprint.files {
                let _ = fs::remove_file(file);
            }
            let _ = fs::remove_dir_all(&footprint.dir);
        }
    }
}

#[test]
fn many_fixtures_in_parallel() -> Result<()> {
    // Start them all at once, each on the same two portal addresses.
    let starters: Vec<_> = (0..6)
        .map(|i| {
            thread::spawn(move || -> Result<Box<dyn Fixture + Send>> {
                Ok(if i < 4 {
                    Box::new(Tgt::builder().portal("127.0.0.1").portal("::1").start()?)
                } else {
                    Box::new(Istgt::builder().portal("127.0.0.1").portal("::1").start()?)
                })
            })
        })
        .collect();
    let fixtures: Vec<Box<dyn Fixture + Send>> = starters
        .into_iter()
        .map(|s| s.join().expect("start panicked"))
        .collect::<Result<_>>()?;
    let portals: Vec<_> = fixtures.iter().flat_map(|f| f.portals().to_vec()).collect();
    let distinct: std::collections::HashSet<_> = portals.iter().collect();
    assert_eq!(
        distinct.len(),
        portals.len(),
        "two live fixtures share a portal: {portals:?}"
    );

    // Each answers on its own portals while all are up.
    let urls: Vec<String> = fixtures
        .iter()
        .map(|f| f.libiscsi_url(f.portals()[1], f.first_lun().number))
        .collect();
    thread::scope(|scope| {
        for url in &urls {
            scope.spawn(move || {
                let out = libiscsi::iscsi_inq(url, TOOL_TIMEOUT).expect("iscsi-inq runs");
                assert!(out.status.success(), "{url}: {}", out.stderr);
            });
        }
    });
    Ok(())
}
