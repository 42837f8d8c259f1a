//! `riscsi connector`: this host's connector properties, as os-brick sends
//! them to a storage service's initialize_connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use clap::Args;
use iscsi_multipath::ConnectorProperties;

use super::Context;
use crate::cli::InitiatorArgs;
use crate::error::{CliError, Result};

/// Where the primary address is looked up towards: a public address, so the
/// routing table picks the interface used for the outside world. A UDP
/// "connect" only selects the route; no packet is sent.
const ROUTE_PROBE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 3260);

#[derive(Debug, Args)]
pub struct ConnectorArgs {
    /// Report multipath as off (riscsi does multipath itself, so it is on by default).
    #[arg(long)]
    pub no_multipath: bool,
    /// Ask the storage service to insist on multipath.
    #[arg(long)]
    pub enforce_multipath: bool,
    /// The address storage should reach this host at (default: the primary address).
    #[arg(long)]
    pub ip: Option<IpAddr>,
    #[command(flatten)]
    pub initiator: InitiatorArgs,
}

pub fn run(ctx: &Context, args: &ConnectorArgs) -> Result<()> {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned());
    let ip = args.ip.unwrap_or_else(primary_address);
    let connector = build(ctx, args, host, ip);
    let text = serde_json::to_string_pretty(&connector)
        .map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

fn build(ctx: &Context, args: &ConnectorArgs, host: String, ip: IpAddr) -> ConnectorProperties {
    let mut connector = ConnectorProperties::new(ctx.initiator_name.clone(), host, ip);
    connector.multipath = !args.no_multipath;
    connector.enforce_multipath = args.enforce_multipath;
    connector
}

/// The source address of the default route, else 127.0.0.1.
fn primary_address() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect(ROUTE_PROBE)?;
        Ok(socket.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> ConnectorArgs {
        let argv = ["riscsi", "connector"]
            .into_iter()
            .chain(extra.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Connector(c) => c,
            other => panic!("parsed as {other:?}"),
        }
    }

    fn ctx() -> Context {
        Context {
            initiator_name: "iqn.2026-11.io.riscsi:test-abcdef".into(),
        }
    }

    #[test]
    fn defaults_say_multipath() {
        let c = build(
            &ctx(),
            &args(&[]),
            "node1".into(),
            "10.1.2.3".parse().unwrap(),
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "initiator": "iqn.2026-11.io.riscsi:test-abcdef",
                "multipath": true,
                "enforce_multipath": false,
                "host": "node1",
                "ip": "10.1.2.3",
                "platform": std::env::consts::ARCH,
                "os_type": "linux",
            })
        );
        // Keys in the contract's order.
        let text = serde_json::to_string(&c).unwrap();
        let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
        assert!(
            pos("initiator") < pos("multipath")
                && pos("host") < pos("ip")
                && pos("ip") < pos("platform")
        );
    }

    #[test]
    fn flags_and_ip() {
        let a = args(&["--no-multipath", "--enforce-multipath", "--ip", "fd00::5"]);
        assert_eq!(a.ip, Some("fd00::5".parse().unwrap()));
        let c = build(&ctx(), &a, "h".into(), a.ip.unwrap());
        assert!(!c.multipath && c.enforce_multipath);
        assert_eq!(c.ip, "fd00::5");
        let argv = ["riscsi", "connector", "--ip", "not-an-ip"];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn primary_address_is_usable() {
        let ip = primary_address();
        assert!(!ip.is_unspecified() && !ip.is_multicast(), "{ip}");
    }
}
