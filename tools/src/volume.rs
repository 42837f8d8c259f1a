//! Opening a volume named by a URL: parse, complete the credentials, log in,
//! probe the LUN.

use iscsi_session::{BlockDevice, IscsiUrl, Secret, Session, SessionLun};
use tracing::info;

use crate::auth;
use crate::cli::AuthArgs;
use crate::error::{CliError, Result};

/// True when an argument names a volume rather than a local file.
pub fn is_volume_url(arg: &str) -> bool {
    arg.starts_with("iscsi://")
}

/// Parses a volume URL (it must name a target and a LUN) and completes its
/// CHAP settings from `auth` and `env`.
pub fn parse_volume_url(
    arg: &str,
    auth: &AuthArgs,
    env: impl Fn(&str) -> Option<Secret>,
) -> Result<IscsiUrl> {
    let mut url: IscsiUrl = arg.parse()?;
    if url.target.is_none() || url.lun.is_none() {
        return Err(CliError::usage(format!(
            "{url} names no volume: expected iscsi://host[:port]/target-iqn/lun"
        )));
    }
    auth::apply(&mut url, auth, env)?;
    Ok(url)
}

/// A logged-in session and the LUN the URL names.
#[derive(Debug)]
pub struct Volume {
    pub url: IscsiUrl,
    pub session: Session,
    pub lun: SessionLun,
}

impl Volume {
    /// Logs in and opens the LUN. The URL's `Display` masks passwords, so it
    /// may be logged.
    pub async fn open(url: IscsiUrl, initiator_name: &str) -> Result<Volume> {
        let config = url.session_config(initiator_name, None)?;
        info!(%url, initiator = initiator_name, "logging in");
        let session = Session::connect(config).await?;
        let number = url.lun.unwrap_or_default();
        let lun = match session.open_lun(number).await {
            Ok(lun) => lun,
            Err(e) => {
                let _ = session.logout().await;
                return Err(e.into());
            }
        };
        let g = lun.geometry();
        info!(
            blocks = g.blocks,
            block_size = g.block_size,
            "LUN {number} opened"
        );
        Ok(Volume { url, session, lun })
    }

    /// Logs out; a failed logout does not undo what was done, so it is only logged.
    pub async fn close(self) {
        if let Err(e) = self.session.logout().await {
            tracing::warn!(error = %e, "logout failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<Secret> {
        None
    }

    #[test]
    fn volume_urls_need_target_and_lun() {
        let a = AuthArgs::default();
        assert!(parse_volume_url("iscsi://127.0.0.1:3260/iqn.a:b/1", &a, no_env).is_ok());
        let e = parse_volume_url("iscsi://127.0.0.1:3260", &a, no_env).unwrap_err();
        assert!(e.to_string().contains("names no volume"), "{e}");
        assert!(parse_volume_url("/dev/sda", &a, no_env).is_err());
    }

    #[test]
    fn url_detection() {
        assert!(is_volume_url("iscsi://h/iqn.a:b/0"));
        assert!(!is_volume_url("-"));
        assert!(!is_volume_url("./iscsi://x"));
    }

    #[test]
    fn masked_url_in_errors() {
        let a = AuthArgs::default();
        let e = parse_volume_url("iscsi://u%pa55-w0rd-x@h:1", &a, no_env).unwrap_err();
        assert!(!e.to_string().contains("pa55-w0rd-x"), "{e}");
    }
}
