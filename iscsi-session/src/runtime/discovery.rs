//! SendTargets discovery (RFC 7143 §13.3, Appendix C): a discovery session
//! that asks a portal which targets, and which portals of them, it knows.

use std::fmt;

use iscsi_proto::text::{TargetAddress, parse_send_targets};

use crate::core::config::SessionConfig;
use crate::core::error::Error;
use crate::core::portal::Portal;
use crate::runtime::session::Session;

/// One path a discovery answer names: a target through a portal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiscoveredPath {
    /// The target's IQN (TargetName).
    pub target: String,
    /// A portal the target is reached through (TargetAddress).
    pub portal: Portal,
    /// Target portal group tag (absent when the target named no address and
    /// the path is the discovery portal itself).
    pub tpgt: Option<u16>,
}

impl fmt::Display for DiscoveredPath {
    /// iscsiadm's format: `ip:port,tpgt iqn` (`[v6]:port` for IPv6).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let address = TargetAddress {
            host: self.portal.host.clone(),
            port: self.portal.port,
            tpgt: self.tpgt,
        };
        write!(f, "{address} {}", self.target)
    }
}

/// Logs in to `config.portal` as a discovery session, sends
/// `SendTargets=All` and logs out. `config` must be a discovery configuration
/// ([`SessionConfig::discovery`]); its CHAP settings are the discovery ones.
pub async fn discover(config: SessionConfig) -> Result<Vec<DiscoveredPath>, Error> {
    let mut config = config;
    config.target_name = None;
    // A discovery session that breaks is not worth keeping alive.
    config.recovery = crate::core::config::Recovery::HandBack;
    let portal = config.portal.clone();
    let session = Session::connect(config).await?;
    let answer = session.text(&[("SendTargets", "All")]).await;
    // Logout failures do not change what was discovered.
    let _ = session.logout().await;
    let pairs = answer?;
    let records = parse_send_targets(&pairs).map_err(|e| Error::BadResponse {
        ctx: session.context().clone(),
        reason: format!("SendTargets answer: {e}"),
    })?;
    let mut paths = Vec::new();
    for record in records {
        if record.addresses.is_empty() {
            // No TargetAddress: the target is reached through this portal.
            paths.push(DiscoveredPath {
                target: record.name.clone(),
                portal: portal.clone(),
                tpgt: None,
            });
        }
        for address in record.addresses {
            paths.push(DiscoveredPath {
                target: record.name.clone(),
                tpgt: address.tpgt,
                portal: Portal::from(address),
            });
        }
    }
    Ok(paths)
}
