//! This host's initiator name: given, else open-iscsi's, else a generated one
//! kept in the riscsi state directory so that targets' ACLs keep matching.
//!
//! Environment:
//! - `RISCSI_OPEN_ISCSI_FILE`: the open-iscsi name file to read instead of
//!   [`OPEN_ISCSI_FILE`] (a path that does not exist means "no open-iscsi
//!   name"); for tests, and hosts that keep it elsewhere.
//! - `RISCSI_STATE_DIR`: where the generated name is kept (see [`state_dir`]).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rand::Rng;
use tracing::{info, warn};

use crate::error::{CliError, Result};

/// Where open-iscsi keeps the host's name; reused so both initiators look alike.
pub const OPEN_ISCSI_FILE: &str = "/etc/iscsi/initiatorname.iscsi";
/// Environment variable naming another open-iscsi name file.
pub const OPEN_ISCSI_FILE_ENV: &str = "RISCSI_OPEN_ISCSI_FILE";
/// Prefix of the names riscsi generates.
pub const GENERATED_PREFIX: &str = "iqn.2026-11.io.riscsi:";
/// File name inside the state directory.
const STATE_FILE: &str = "initiatorname";
/// RFC 7143 §4.2.7.1: an iSCSI name is at most 223 bytes.
const MAX_NAME_LEN: usize = 223;
/// Name files are tiny; refuse to read more than this from one.
const MAX_FILE_LEN: u64 = 4096;

/// Resolves the initiator name for this run, looking at the system
/// locations or those the environment names (see [`resolve_with`]).
pub fn resolve(explicit: Option<&str>) -> Result<String> {
    // A name given needs no state directory, and there may be none (a
    // user without HOME, such as `nobody`).
    if let Some(name) = explicit {
        return given(name);
    }
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let state_dir = state_dir(env, is_root())?;
    resolve_with(explicit, &open_iscsi_file(env), &state_dir, &hostname)
}

/// `$RISCSI_OPEN_ISCSI_FILE` when set and not empty, else [`OPEN_ISCSI_FILE`].
pub fn open_iscsi_file(env: impl Fn(&str) -> Option<PathBuf>) -> PathBuf {
    env(OPEN_ISCSI_FILE_ENV)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(OPEN_ISCSI_FILE))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `$RISCSI_STATE_DIR`, else `/var/lib/riscsi` for root, else
/// `$XDG_STATE_HOME/riscsi` or `$HOME/.local/state/riscsi`.
pub fn state_dir(env: impl Fn(&str) -> Option<PathBuf>, root: bool) -> Result<PathBuf> {
    let set = |k: &str| env(k).filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = set("RISCSI_STATE_DIR") {
        return Ok(dir);
    }
    if root {
        return Ok(PathBuf::from("/var/lib/riscsi"));
    }
    if let Some(dir) = set("XDG_STATE_HOME") {
        return Ok(dir.join("riscsi"));
    }
    set("HOME")
        .map(|home| home.join(".local/state/riscsi"))
        .ok_or_else(|| {
            CliError::InitiatorName(
                "no HOME or RISCSI_STATE_DIR to keep a generated name in; give --initiator-name"
                    .into(),
            )
        })
}

/// The explicit name when given, else the `InitiatorName=` of `open_iscsi_file`
/// when that file exists, else the name stored in `state_dir`, created on
/// first use as `iqn.2026-11.io.riscsi:<hostname>-<6 hex digits>`.
pub fn resolve_with(
    explicit: Option<&str>,
    open_iscsi_file: &Path,
    state_dir: &Path,
    hostname: &str,
) -> Result<String> {
    if let Some(name) = explicit {
        return given(name);
    }
    if let Some(name) = read_open_iscsi(open_iscsi_file)? {
        return Ok(name);
    }
    load_or_create(state_dir, hostname)
}

/// The name of `--initiator-name`, checked.
fn given(name: &str) -> Result<String> {
    validate(name.trim())
        .map(str::to_owned)
        .map_err(|why| CliError::InitiatorName(format!("--initiator-name: {why}")))
}

/// Checks the shape of an iSCSI name (iqn., eui. or naa. form, no blanks).
pub fn validate(name: &str) -> Result<&str, String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("{} bytes, more than {MAX_NAME_LEN}", name.len()));
    }
    let lower = name.to_ascii_lowercase();
    if !["iqn.", "eui.", "naa."]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(format!("{name:?} does not start with iqn., eui. or naa."));
    }
    if !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!("{name:?} holds blanks or non-ASCII characters"));
    }
    Ok(name)
}

fn read_small(path: &Path) -> io::Result<Option<String>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.take(MAX_FILE_LEN).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// The `InitiatorName=` line of an open-iscsi name file, if the file exists.
fn read_open_iscsi(path: &Path) -> Result<Option<String>> {
    let Some(text) = read_small(path).map_err(|e| CliError::file("cannot read", path, e))? else {
        return Ok(None);
    };
    let Some(name) = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("InitiatorName="))
    else {
        return Ok(None);
    };
    validate(name.trim())
        .map(|n| Some(n.to_owned()))
        .map_err(|why| CliError::InitiatorName(format!("{}: {why}", path.display())))
}

/// The stored name, or a new one stored for next time.
fn load_or_create(state_dir: &Path, hostname: &str) -> Result<String> {
    let path = state_dir.join(STATE_FILE);
    if let Some(name) = read_stored(&path)? {
        return Ok(name);
    }
    let name = generate(hostname, &mut rand::thread_rng());
    match store(state_dir, &path, &name) {
        Ok(stored) => Ok(stored),
        Err(e) => {
            // Still usable for this run; the next run will pick another name.
            warn!(path = %path.display(), error = %e, "cannot keep the generated initiator name");
            Ok(name)
        }
    }
}

fn read_stored(path: &Path) -> Result<Option<String>> {
    let Some(text) = read_small(path).map_err(|e| CliError::file("cannot read", path, e))? else {
        return Ok(None);
    };
    let line = text.lines().map(str::trim).find(|l| !l.is_empty());
    match line.map(validate) {
        Some(Ok(name)) => Ok(Some(name.to_owned())),
        Some(Err(why)) => Err(CliError::InitiatorName(format!(
            "{}: {why}; fix or remove it, or give --initiator-name",
            path.display()
        ))),
        None => Err(CliError::InitiatorName(format!(
            "{} is empty; remove it or give --initiator-name",
            path.display()
        ))),
    }
}

/// `iqn.2026-11.io.riscsi:<hostname>-<6 hex>`, the hostname reduced to the
/// characters an IQN allows.
pub fn generate(hostname: &str, rng: &mut impl Rng) -> String {
    let mut host: String = hostname
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let room = MAX_NAME_LEN - GENERATED_PREFIX.len() - 7;
    host.truncate(room);
    let host = host.trim_matches(|c| c == '-' || c == '.');
    let host = if host.is_empty() { "host" } else { host };
    let suffix: u32 = rng.gen_range(0..1 << 24);
    format!("{GENERATED_PREFIX}{host}-{suffix:06x}")
}

/// Stores `name` unless another process stored one first; returns the name
/// that won. Written to a temporary file then hard-linked into place, so a
/// reader never sees a half-written file and two racing runs agree.
fn store(state_dir: &Path, path: &Path, name: &str) -> io::Result<String> {
    fs::create_dir_all(state_dir)?;
    let tmp = state_dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
    fs::write(&tmp, format!("{name}\n"))?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            info!(path = %path.display(), name, "generated a new initiator name");
            Ok(name.to_owned())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_stored(path) {
            Ok(Some(winner)) => Ok(winner),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn no_file() -> PathBuf {
        PathBuf::from("/nonexistent/riscsi-test/initiatorname.iscsi")
    }

    #[test]
    fn explicit_name_wins() {
        let dir = tempfile::tempdir().unwrap();
        let name =
            resolve_with(Some(" iqn.2026-11.test:me "), &no_file(), dir.path(), "h").unwrap();
        assert_eq!(name, "iqn.2026-11.test:me");
        assert!(!dir.path().join(STATE_FILE).exists(), "nothing generated");
        assert!(resolve_with(Some("not-an-iqn"), &no_file(), dir.path(), "h").is_err());
    }

    #[test]
    fn open_iscsi_file_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("initiatorname.iscsi");
        fs::write(
            &file,
            "## DO NOT EDIT\n#InitiatorName=iqn.commented:out\nInitiatorName=iqn.1993-08.org.debian:01:abc123\n",
        )
        .unwrap();
        let state = dir.path().join("state");
        let name = resolve_with(None, &file, &state, "h").unwrap();
        assert_eq!(name, "iqn.1993-08.org.debian:01:abc123");
        assert!(!state.exists());
        fs::write(&file, "InitiatorName=has blank\n").unwrap();
        assert!(resolve_with(None, &file, &state, "h").is_err());
    }

    #[test]
    fn generated_name_is_persisted_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("nested/state");
        let first = resolve_with(None, &no_file(), &state, "Build_Host.example").unwrap();
        let rest = first.strip_prefix(GENERATED_PREFIX).unwrap();
        let (host, hex) = rest.rsplit_once('-').unwrap();
        assert_eq!(host, "build-host.example");
        assert_eq!(hex.len(), 6);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            fs::read_to_string(state.join(STATE_FILE)).unwrap(),
            format!("{first}\n")
        );
        let second = resolve_with(None, &no_file(), &state, "other-host").unwrap();
        assert_eq!(first, second);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&state).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_state_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), "garbage name\n").unwrap();
        let err = resolve_with(None, &no_file(), dir.path(), "h").unwrap_err();
        assert!(err.to_string().contains("--initiator-name"), "{err}");
        fs::write(dir.path().join(STATE_FILE), "\n\n").unwrap();
        assert!(resolve_with(None, &no_file(), dir.path(), "h").is_err());
    }

    #[test]
    fn a_racing_writer_wins_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        fs::write(&path, "iqn.2026-11.io.riscsi:first-000001\n").unwrap();
        let won = store(dir.path(), &path, "iqn.2026-11.io.riscsi:second-000002").unwrap();
        assert_eq!(won, "iqn.2026-11.io.riscsi:first-000001");
    }

    #[test]
    fn generated_names_are_valid_for_any_hostname() {
        let mut rng = StdRng::seed_from_u64(7);
        for host in ["", "...", "über-host", "a b\tc", &"x".repeat(400), "UPPER"] {
            let name = generate(host, &mut rng);
            assert!(validate(&name).is_ok(), "{name}");
            assert!(name.len() <= MAX_NAME_LEN);
        }
        assert!(generate("UPPER", &mut rng).starts_with("iqn.2026-11.io.riscsi:upper-"));
    }

    #[test]
    fn open_iscsi_file_from_the_environment() {
        let env = |value: Option<&'static str>| {
            move |k: &str| {
                value
                    .filter(|_| k == OPEN_ISCSI_FILE_ENV)
                    .map(PathBuf::from)
            }
        };
        assert_eq!(open_iscsi_file(env(None)), PathBuf::from(OPEN_ISCSI_FILE));
        assert_eq!(
            open_iscsi_file(env(Some(""))),
            PathBuf::from(OPEN_ISCSI_FILE)
        );
        assert_eq!(
            open_iscsi_file(env(Some("/srv/iscsi/name"))),
            PathBuf::from("/srv/iscsi/name")
        );
    }

    #[test]
    fn state_dir_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| PathBuf::from(v))
            }
        };
        assert_eq!(
            state_dir(env(&[("RISCSI_STATE_DIR", "/s"), ("HOME", "/h")]), true).unwrap(),
            PathBuf::from("/s")
        );
        assert_eq!(
            state_dir(env(&[("HOME", "/h")]), true).unwrap(),
            PathBuf::from("/var/lib/riscsi")
        );
        assert_eq!(
            state_dir(env(&[("HOME", "/h")]), false).unwrap(),
            PathBuf::from("/h/.local/state/riscsi")
        );
        assert_eq!(
            state_dir(env(&[("HOME", "/h"), ("XDG_STATE_HOME", "/x")]), false).unwrap(),
            PathBuf::from("/x/riscsi")
        );
        assert!(state_dir(env(&[("RISCSI_STATE_DIR", "")]), false).is_err());
    }
}
