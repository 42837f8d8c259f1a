//! Opening the volume a VOLUME argument names: a libiscsi URL (one path) or
//! `@FILE`, the storage service's connection_info (every path of it). Both
//! go through the multipath volume, so a URL volume is a one-path volume
//! through the same code.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use iscsi_multipath::{
    ConnectionInfo, MultipathVolume, PathSet, PathSpec, SessionTemplate, VolumeOptions,
};
use iscsi_session::{BlockDevice, IscsiUrl, OperationalPreferences, Secret};
use tracing::info;

use crate::auth;
use crate::cli::{AuthArgs, MultipathArgs, VolumeArgs};
use crate::error::{CliError, Result};

/// connection_info files are small; refuse to read more than this.
const MAX_CONNECTION_INFO: u64 = 1 << 20;

/// True when an argument names a volume rather than a local file.
pub fn is_volume_arg(arg: &str) -> bool {
    arg.starts_with("iscsi://") || arg.starts_with('@')
}

/// What a VOLUME argument names.
#[derive(Debug)]
pub enum VolumeSpec {
    /// One path, by URL (credentials completed from the options).
    Url(IscsiUrl),
    /// A connection_info document, and where it came from.
    Info {
        /// The parsed document.
        info: Box<ConnectionInfo>,
        /// The file name, or "standard input".
        source: String,
    },
}

impl VolumeSpec {
    /// Where the volume comes from, for messages (URL passwords masked).
    pub fn describe(&self) -> String {
        match self {
            VolumeSpec::Url(url) => url.to_string(),
            VolumeSpec::Info { source, .. } => format!("connection_info from {source}"),
        }
    }

    /// Whether it reads standard input (`@-`).
    pub fn uses_stdin(&self) -> bool {
        matches!(self, VolumeSpec::Info { source, .. } if source == "standard input")
    }
}

/// Parses a VOLUME argument. A URL must name a target and a LUN, and gets
/// its CHAP settings completed from `auth` and `env`; `@FILE` (`@-` for
/// standard input) is a connection_info document, which carries its own
/// credentials.
pub fn parse_volume(
    arg: &str,
    auth: &AuthArgs,
    env: impl Fn(&str) -> Option<Secret>,
) -> Result<VolumeSpec> {
    if let Some(file) = arg.strip_prefix('@') {
        if auth.any() {
            return Err(CliError::usage(
                "CHAP options apply to URL volumes; a connection_info volume carries its own credentials (auth_username, auth_password)",
            ));
        }
        let (text, source, exposed) = read_connection_info(file)?;
        let info = ConnectionInfo::parse(&text).map_err(|error| CliError::ConnectionInfo {
            origin: source.clone(),
            error,
        })?;
        if let Some(mode) = exposed
            && (info.auth().is_some() || info.discovery_auth().is_some())
        {
            auth::warn_exposed(Path::new(&source), "CHAP passwords", mode);
        }
        return Ok(VolumeSpec::Info {
            info: Box::new(info),
            source,
        });
    }
    let mut url: IscsiUrl = arg.parse()?;
    if url.target.is_none() || url.lun.is_none() {
        return Err(CliError::usage(format!(
            "{url} names no volume: expected iscsi://host[:port]/target-iqn/lun or @connection_info.json"
        )));
    }
    auth::apply(&mut url, auth, env)?;
    Ok(VolumeSpec::Url(url))
}

/// The document's text, where it came from, and the permission bits of its
/// file when they open it to other users.
fn read_connection_info(file: &str) -> Result<(String, String, Option<u32>)> {
    let (source, reader, exposed): (String, Box<dyn Read>, _) = match file {
        "" => {
            return Err(CliError::usage(
                "@ needs a file name (or @- for standard input)",
            ));
        }
        "-" => ("standard input".into(), Box::new(io::stdin()), None),
        path => {
            let f =
                File::open(path).map_err(|e| CliError::file("cannot open", Path::new(path), e))?;
            let exposed = auth::exposure(&f);
            (path.to_owned(), Box::new(f), exposed)
        }
    };
    let mut text = String::new();
    let read = reader
        .take(MAX_CONNECTION_INFO + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError::file("cannot read", Path::new(&source), e))?;
    if read as u64 > MAX_CONNECTION_INFO {
        return Err(CliError::usage(format!(
            "{source} is larger than {MAX_CONNECTION_INFO} bytes: not a connection_info document"
        )));
    }
    Ok((text, source, exposed))
}

/// The volume options the multipath flags ask for.
pub fn volume_options(args: &MultipathArgs) -> VolumeOptions {
    VolumeOptions {
        policy: args.policy,
        failback: args.failback,
        no_path_retry: args.no_path_retry,
        path_timeout: args.path_timeout(),
        ..VolumeOptions::default()
    }
}

/// An open volume.
#[derive(Debug)]
pub struct Volume {
    /// What the argument named, for messages.
    pub name: String,
    /// The volume, one path or many.
    pub device: MultipathVolume,
    /// connection_info said `access_mode: ro`.
    pub read_only: bool,
    /// connection_info said `discard: true`: trim may reach the LU.
    pub discard: bool,
}

impl Volume {
    /// Parses and opens a VOLUME argument.
    pub async fn open_arg(arg: &str, args: &VolumeArgs, initiator_name: &str) -> Result<Volume> {
        let spec = parse_volume(arg, &args.auth, auth::env_secret)?;
        Volume::open(spec, &args.multipath, initiator_name).await
    }

    /// Logs in to every path and probes the LU.
    pub async fn open(
        spec: VolumeSpec,
        multipath: &MultipathArgs,
        initiator_name: &str,
    ) -> Result<Volume> {
        let name = spec.describe();
        info!(volume = %name, initiator = initiator_name, "opening");
        let mut template = SessionTemplate::new(initiator_name);
        template.timeouts = Some(multipath.timeouts());
        let options = volume_options(multipath);
        let (device, read_only, discard) = match spec {
            VolumeSpec::Url(url) => {
                let iqn = url.target.clone().unwrap_or_default();
                let path = PathSpec::new(url.portal.clone(), iqn, url.lun.unwrap_or_default());
                if url.header_digest.is_some() || url.data_digest.is_some() {
                    template.operational = Some(OperationalPreferences {
                        header_digest: url.header_digest.unwrap_or_default(),
                        data_digest: url.data_digest.unwrap_or_default(),
                        ..OperationalPreferences::default()
                    });
                }
                let set = PathSet::single(path, url.chap(None)?);
                (
                    MultipathVolume::open(&set, &template, options).await?,
                    false,
                    false,
                )
            }
            VolumeSpec::Info { info, .. } => {
                let device =
                    MultipathVolume::open_connection_info(&info, &template, options).await?;
                (device, info.read_only(), info.discard())
            }
        };
        let g = device.geometry();
        info!(
            blocks = g.blocks,
            block_size = g.block_size,
            paths = device.status().paths.len(),
            "volume {} opened",
            device.name()
        );
        Ok(Volume {
            name,
            device,
            read_only,
            discard,
        })
    }

    /// Fails for a read-only volume.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(CliError::usage(format!(
                "{} is read-only (access_mode ro): not writing to it",
                self.name
            )));
        }
        Ok(())
    }

    /// Logs out of every path.
    pub async fn close(self) {
        self.device.close().await;
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
        assert!(parse_volume("iscsi://127.0.0.1:3260/iqn.a:b/1", &a, no_env).is_ok());
        let e = parse_volume("iscsi://127.0.0.1:3260", &a, no_env).unwrap_err();
        assert!(e.to_string().contains("names no volume"), "{e}");
        assert!(parse_volume("/dev/sda", &a, no_env).is_err());
    }

    #[test]
    fn volume_detection() {
        assert!(is_volume_arg("iscsi://h/iqn.a:b/0"));
        assert!(is_volume_arg("@ci.json"));
        assert!(is_volume_arg("@-"));
        assert!(!is_volume_arg("-"));
        assert!(!is_volume_arg("./iscsi://x"));
    }

    #[test]
    fn masked_url_in_errors() {
        let a = AuthArgs::default();
        let e = parse_volume("iscsi://u%pa55-w0rd-x@h:1", &a, no_env).unwrap_err();
        assert!(!e.to_string().contains("pa55-w0rd-x"), "{e}");
    }

    #[test]
    fn connection_info_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.json");
        std::fs::write(
            &path,
            r#"{"driver_volume_type": "iscsi", "data": {"target_portals": ["[::1]:3260", "127.0.0.2:3260"],
                "target_iqns": ["iqn.a:b", "iqn.a:b"], "target_luns": [1, 1],
                "target_portal": "[::1]:3260", "target_iqn": "iqn.a:b", "target_lun": 1,
                "auth_method": "CHAP", "auth_username": "u", "auth_password": "ci-s3cret-pw"}}"#,
        )
        .unwrap();
        let arg = format!("@{}", path.display());
        let spec = parse_volume(&arg, &AuthArgs::default(), no_env).unwrap();
        assert!(spec.describe().contains("ci.json"));
        assert!(!format!("{spec:?}").contains("ci-s3cret-pw"));
        let with_chap = AuthArgs {
            chap_user: Some("x".into()),
            ..AuthArgs::default()
        };
        let e = parse_volume(&arg, &with_chap, no_env).unwrap_err();
        assert!(e.to_string().contains("carries its own credentials"), "{e}");
        std::fs::write(&path, r#"{"driver_volume_type": "rbd", "data": {}}"#).unwrap();
        let e = parse_volume(&arg, &AuthArgs::default(), no_env).unwrap_err();
        let line = e.to_string();
        assert!(line.contains("ci.json") && line.contains("rbd"), "{line}");
        let e = parse_volume("@/nonexistent/ci.json", &AuthArgs::default(), no_env).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
    }
}
