//! CHAP credentials from the URL, secret files and the environment.
//!
//! Precedence for each secret: the URL, then the file option, then the
//! environment variable. The environment is ambient, so it is only consulted
//! when a user name asks for a secret; a file given without a user is a
//! mistake and is reported.
//!
//! A file a secret is read from (a secret file, a connection_info document
//! with passwords) that its group or other users may read or write is
//! warned about on stderr: the secret is still used, since refusing would
//! break a setup that works, but the operator learns who else can see it.

use std::fs::File;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use iscsi_session::{IscsiUrl, Secret};
use tracing::{debug, warn};

use crate::cli::AuthArgs;
use crate::error::{CliError, Result};

/// Initiator CHAP secret when neither the URL nor a file gives one.
pub const CHAP_SECRET_ENV: &str = "RISCSI_CHAP_SECRET";
/// Target (mutual CHAP) secret when neither the URL nor a file gives one.
pub const TARGET_SECRET_ENV: &str = "RISCSI_TARGET_SECRET";
/// A secret file is one short line; never read more than this.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a secret from the process environment.
pub fn env_secret(name: &str) -> Option<Secret> {
    std::env::var_os(name)
        .map(|v| Secret::new(v.into_vec()))
        .filter(|s| !s.is_empty())
}

/// Permission bits that open a file to anyone but its owner (and root).
const SHARED_BITS: u32 = 0o077;

/// The permission bits of `file` when they open it to its group or others;
/// `None` when it is private, or not a regular file (a pipe such as `@-`
/// has no mode worth a warning).
pub fn exposure(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let mode = meta.permissions().mode() & 0o777;
    (meta.is_file() && mode & SHARED_BITS != 0).then_some(mode)
}

/// The warning for a file holding `what` (a CHAP secret, passwords) with
/// the permission bits `mode`.
pub fn warn_exposed(path: &Path, what: &str, mode: u32) {
    warn!(
        "{} holds {what} and is open to other users (mode {mode:03o}): chmod 600 it",
        path.display()
    );
}

/// The first line of `path`, without surrounding blanks.
pub fn read_secret_file(path: &Path) -> Result<Secret> {
    let mut bytes = Vec::new();
    let file = File::open(path).map_err(|e| CliError::file("cannot read secret file", path, e))?;
    if let Some(mode) = exposure(&file) {
        warn_exposed(path, "a CHAP secret", mode);
    }
    file.take(MAX_SECRET_FILE)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::file("cannot read secret file", path, e))?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let secret = Secret::new(line.trim_ascii());
    // Zero our copy of the whole file; the Secret zeroes its own on drop.
    bytes.iter_mut().for_each(|b| *b = 0);
    if secret.is_empty() {
        return Err(CliError::usage(format!(
            "secret file {} has an empty first line",
            path.display()
        )));
    }
    Ok(secret)
}

/// Completes `url`'s CHAP settings from the options and the environment
/// (`env` looks a secret variable up), so that `url.session_config` or
/// `url.chap` yields the final configuration.
pub fn apply(
    url: &mut IscsiUrl,
    args: &AuthArgs,
    env: impl Fn(&str) -> Option<Secret>,
) -> Result<()> {
    if url.user.is_none() {
        url.user = args.chap_user.clone();
    }
    if url.target_user.is_none() {
        url.target_user = args.target_user.clone();
    }
    let Some(user) = url.user.clone() else {
        if args.chap_secret_file.is_some() {
            return Err(CliError::usage(
                "--chap-secret-file needs a CHAP user (user@ in the URL, or --chap-user)",
            ));
        }
        if url.target_user.is_some() || args.target_secret_file.is_some() {
            return Err(CliError::usage(
                "mutual CHAP needs the initiator's CHAP user too (user@ in the URL, or --chap-user)",
            ));
        }
        return Ok(());
    };
    if url.password.is_none() {
        url.password = match &args.chap_secret_file {
            Some(path) => Some(read_secret_file(path)?),
            None => env(CHAP_SECRET_ENV),
        };
        if url.password.is_none() {
            return Err(CliError::usage(format!(
                "CHAP user {user:?} has no secret: put it in the URL (user%secret@), in a file (--chap-secret-file) or in {CHAP_SECRET_ENV}"
            )));
        }
    } else {
        debug!("CHAP secret taken from the URL");
    }
    match &url.target_user {
        None if args.target_secret_file.is_some() || url.target_password.is_some() => {
            return Err(CliError::usage(
                "a target secret needs the target's user name (target_user= in the URL, or --target-user)",
            ));
        }
        None => {}
        Some(target_user) => {
            if url.target_password.is_none() {
                url.target_password = match &args.target_secret_file {
                    Some(path) => Some(read_secret_file(path)?),
                    None => env(TARGET_SECRET_ENV),
                };
            }
            if url.target_password.is_none() {
                return Err(CliError::usage(format!(
                    "target user {target_user:?} has no secret: put it in the URL (target_password=), in a file (--target-secret-file) or in {TARGET_SECRET_ENV}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const URL_SECRET: &str = "url-secret-123456";
    const FILE_SECRET: &str = "file-secret-abcdef";
    const ENV_SECRET: &str = "env-secret-zyxwvu";
    const TARGET_SECRET: &str = "target-secret-987654";

    fn url(s: &str) -> IscsiUrl {
        s.parse().unwrap()
    }

    fn no_env(_: &str) -> Option<Secret> {
        None
    }

    fn env_with(name: &'static str, value: &'static str) -> impl Fn(&str) -> Option<Secret> {
        move |k| (k == name).then(|| Secret::from(value))
    }

    fn secret_file(dir: &tempfile::TempDir, name: &str, content: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    #[test]
    fn files_open_to_group_or_others_are_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let p = secret_file(&dir, "s", FILE_SECRET);
        for (mode, exposed) in [
            (0o600, false),
            (0o400, false),
            (0o700, false),
            (0o640, true),
            (0o604, true),
            (0o644, true),
            (0o620, true),
            (0o602, true),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let file = File::open(&p).unwrap();
            assert_eq!(exposure(&file), exposed.then_some(mode), "mode {mode:o}");
        }
        // A directory (or a pipe) is not a secret file.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = File::open(dir.path()).unwrap();
        assert_eq!(exposure(&d), None);
    }

    #[test]
    fn url_secret_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut u = url(&format!("iscsi://alice%{URL_SECRET}@h/iqn.a:b/0"));
        let args = AuthArgs {
            chap_secret_file: Some(secret_file(&dir, "s", FILE_SECRET)),
            ..Default::default()
        };
        apply(&mut u, &args, env_with(CHAP_SECRET_ENV, ENV_SECRET)).unwrap();
        assert_eq!(u.password.unwrap().expose(), URL_SECRET.as_bytes());
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let args = AuthArgs {
            chap_secret_file: Some(secret_file(
                &dir,
                "s",
                &format!("  {FILE_SECRET}\r\nline2\n"),
            )),
            ..Default::default()
        };
        let mut u = url("iscsi://alice@h/iqn.a:b/0");
        apply(&mut u, &args, env_with(CHAP_SECRET_ENV, ENV_SECRET)).unwrap();
        assert_eq!(u.password.unwrap().expose(), FILE_SECRET.as_bytes());

        let mut u = url("iscsi://alice@h/iqn.a:b/0");
        apply(
            &mut u,
            &AuthArgs::default(),
            env_with(CHAP_SECRET_ENV, ENV_SECRET),
        )
        .unwrap();
        assert_eq!(u.password.unwrap().expose(), ENV_SECRET.as_bytes());
    }

    #[test]
    fn chap_user_option_fills_the_url() {
        let mut u = url("iscsi://h/iqn.a:b/0");
        let args = AuthArgs {
            chap_user: Some("bob".into()),
            ..Default::default()
        };
        apply(&mut u, &args, env_with(CHAP_SECRET_ENV, ENV_SECRET)).unwrap();
        let chap = u.chap(None).unwrap().unwrap();
        assert_eq!(chap.initiator.username, "bob");
        assert!(chap.target.is_none());
    }

    #[test]
    fn env_alone_does_not_turn_chap_on() {
        let mut u = url("iscsi://h/iqn.a:b/0");
        apply(
            &mut u,
            &AuthArgs::default(),
            env_with(CHAP_SECRET_ENV, ENV_SECRET),
        )
        .unwrap();
        assert!(u.chap(None).unwrap().is_none());
    }

    #[test]
    fn mutual_chap_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let args = AuthArgs {
            target_user: Some("tgt".into()),
            target_secret_file: Some(secret_file(&dir, "t", TARGET_SECRET)),
            ..Default::default()
        };
        let mut u = url(&format!("iscsi://alice%{URL_SECRET}@h/iqn.a:b/0"));
        apply(&mut u, &args, no_env).unwrap();
        let chap = u.chap(None).unwrap().unwrap();
        let target = chap.target.unwrap();
        assert_eq!(target.username, "tgt");
        assert_eq!(target.secret.expose(), TARGET_SECRET.as_bytes());

        let mut u = url(&format!(
            "iscsi://alice%{URL_SECRET}@h/iqn.a:b/0?target_user=tgt"
        ));
        apply(
            &mut u,
            &AuthArgs::default(),
            env_with(TARGET_SECRET_ENV, TARGET_SECRET),
        )
        .unwrap();
        assert_eq!(
            u.chap(None)
                .unwrap()
                .unwrap()
                .target
                .unwrap()
                .secret
                .expose(),
            TARGET_SECRET.as_bytes()
        );
    }

    #[test]
    fn errors_never_show_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut failures = Vec::new();
        // A secret file without a user.
        let args = AuthArgs {
            chap_secret_file: Some(secret_file(&dir, "s", FILE_SECRET)),
            ..Default::default()
        };
        failures.push(apply(&mut url("iscsi://h/iqn.a:b/0"), &args, no_env).unwrap_err());
        // A user without any secret.
        failures.push(
            apply(
                &mut url("iscsi://alice@h/iqn.a:b/0"),
                &AuthArgs::default(),
                no_env,
            )
            .unwrap_err(),
        );
        // A target secret without a target user.
        let args = AuthArgs {
            target_secret_file: Some(secret_file(&dir, "t", TARGET_SECRET)),
            ..Default::default()
        };
        let mut u = url(&format!("iscsi://alice%{URL_SECRET}@h/iqn.a:b/0"));
        failures.push(apply(&mut u, &args, no_env).unwrap_err());
        // Target user without a secret.
        let mut u = url(&format!(
            "iscsi://alice%{URL_SECRET}@h/iqn.a:b/0?target_user=t"
        ));
        failures.push(apply(&mut u, &AuthArgs::default(), no_env).unwrap_err());
        // An empty secret file, and a missing one.
        let args = AuthArgs {
            chap_secret_file: Some(secret_file(&dir, "e", "\n")),
            ..Default::default()
        };
        failures.push(apply(&mut url("iscsi://alice@h/iqn.a:b/0"), &args, no_env).unwrap_err());
        let args = AuthArgs {
            chap_secret_file: Some(dir.path().join("missing")),
            ..Default::default()
        };
        failures.push(apply(&mut url("iscsi://alice@h/iqn.a:b/0"), &args, no_env).unwrap_err());
        // A malformed URL that carries a password.
        let bad: Result<IscsiUrl, _> = format!("iscsi://alice%{URL_SECRET}@h:99999/i/1").parse();
        failures.push(CliError::from(bad.unwrap_err()));

        for e in failures {
            let text = format!("{e} {e:?}");
            for s in [URL_SECRET, FILE_SECRET, ENV_SECRET, TARGET_SECRET] {
                assert!(!text.contains(s), "secret in {text}");
            }
        }
    }

    #[test]
    fn secret_file_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let big = "x".repeat(200_000);
        let p = secret_file(&dir, "big", &big);
        let s = read_secret_file(&p).unwrap();
        assert_eq!(s.expose().len() as u64, MAX_SECRET_FILE);
    }
}
