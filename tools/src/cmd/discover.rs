//! `riscsi discover PORTAL`: SendTargets discovery.

use clap::Args;
use iscsi_session::{DiscoveredPath, IscsiUrl, Portal, Secret, SessionConfig, discover};
use serde::Serialize;

use super::Context;
use crate::auth;
use crate::cli::{AuthArgs, InitiatorArgs};
use crate::error::{CliError, Result};
use crate::printable::printable;

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Discovery portal: host[:port], [ipv6]:port or iscsi://[user[%secret]@]host[:port].
    pub portal: String,
    /// Print a JSON array of {portal, target, tpgt}.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub initiator: InitiatorArgs,
    /// Discovery CHAP.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// One path, as `--json` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct PathJson {
    portal: String,
    target: String,
    tpgt: Option<u16>,
}

pub async fn run(ctx: &Context, args: DiscoverArgs) -> Result<()> {
    let config = discovery_config(
        &args.portal,
        &ctx.initiator_name,
        &args.auth,
        auth::env_secret,
    )?;
    let paths = discover(config).await?;
    print!("{}", render(&paths, args.json)?);
    Ok(())
}

/// The discovery session configuration for a PORTAL argument, with CHAP from
/// the URL, the options or the environment.
fn discovery_config(
    arg: &str,
    initiator_name: &str,
    auth_args: &AuthArgs,
    env: impl Fn(&str) -> Option<Secret>,
) -> Result<SessionConfig> {
    let mut url = if arg.starts_with("iscsi://") {
        arg.parse::<IscsiUrl>()?
    } else {
        let portal: Portal = arg
            .parse()
            .map_err(|e: iscsi_session::PortalParseError| CliError::usage(e.to_string()))?;
        IscsiUrl {
            portal,
            target: None,
            lun: None,
            user: None,
            password: None,
            target_user: None,
            target_password: None,
            header_digest: None,
            data_digest: None,
        }
    };
    auth::apply(&mut url, auth_args, env)?;
    let mut config = SessionConfig::discovery(url.portal.clone(), initiator_name);
    config.chap = url.chap(None)?;
    url.apply_digests(&mut config);
    Ok(config)
}

/// iscsiadm's lines, or the JSON array.
fn render(paths: &[DiscoveredPath], json: bool) -> Result<String> {
    if json {
        let items: Vec<PathJson> = paths
            .iter()
            .map(|p| PathJson {
                portal: p.portal.to_string(),
                target: p.target.clone(),
                tpgt: p.tpgt,
            })
            .collect();
        let mut text = serde_json::to_string_pretty(&items)
            .map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
        text.push('\n');
        return Ok(text);
    }
    Ok(paths
        .iter()
        .map(|p| format!("{}\n", printable(&p.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<Secret> {
        None
    }

    fn paths() -> Vec<DiscoveredPath> {
        vec![
            DiscoveredPath {
                target: "iqn.2026-11.test:a".into(),
                portal: Portal::new("127.0.0.1", 3260),
                tpgt: Some(1),
            },
            DiscoveredPath {
                target: "iqn.2026-11.test:b".into(),
                portal: Portal::new("::1", 3261),
                tpgt: None,
            },
        ]
    }

    #[test]
    fn lines_are_iscsiadm_format() {
        assert_eq!(
            render(&paths(), false).unwrap(),
            "127.0.0.1:3260,1 iqn.2026-11.test:a\n[::1]:3261 iqn.2026-11.test:b\n"
        );
        assert_eq!(render(&[], false).unwrap(), "");
    }

    #[test]
    fn json_has_stable_keys() {
        let v: serde_json::Value = serde_json::from_str(&render(&paths(), true).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"portal": "127.0.0.1:3260", "target": "iqn.2026-11.test:a", "tpgt": 1},
                {"portal": "[::1]:3261", "target": "iqn.2026-11.test:b", "tpgt": null},
            ])
        );
    }

    #[test]
    fn every_portal_form() {
        let a = AuthArgs::default();
        let cfg = |s: &str| discovery_config(s, "iqn.i:x", &a, no_env).map(|c| c.portal);
        assert_eq!(cfg("10.0.0.1").unwrap(), Portal::new("10.0.0.1", 3260));
        assert_eq!(cfg("10.0.0.1:3261").unwrap(), Portal::new("10.0.0.1", 3261));
        assert_eq!(cfg("[::1]:3262").unwrap(), Portal::new("::1", 3262));
        assert_eq!(
            cfg("iscsi://10.0.0.2:3263").unwrap(),
            Portal::new("10.0.0.2", 3263)
        );
        assert!(cfg("host:notaport").is_err());
        assert!(cfg("iscsi://").is_err());
    }

    #[test]
    fn discovery_chap_from_url_or_options() {
        let c = discovery_config(
            "iscsi://u%disc-secret-1@h",
            "iqn.i:x",
            &AuthArgs::default(),
            no_env,
        )
        .unwrap();
        assert!(c.is_discovery());
        assert_eq!(c.chap.unwrap().initiator.username, "u");
        let args = AuthArgs {
            chap_user: Some("d".into()),
            ..Default::default()
        };
        let c = discovery_config("h:3260", "iqn.i:x", &args, |k| {
            (k == auth::CHAP_SECRET_ENV).then(|| Secret::from("disc-secret-2"))
        })
        .unwrap();
        assert_eq!(c.chap.unwrap().initiator.secret.expose(), b"disc-secret-2");
    }
}
