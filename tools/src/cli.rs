//! The command line: global options and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd::{
    bench::BenchArgs, connector::ConnectorArgs, copy::CopyArgs, discover::DiscoverArgs,
    inquiry::InquiryArgs,
};

/// The command line of `riscsi`.
#[derive(Debug, Parser)]
#[command(
    name = "riscsi",
    version,
    about = "riscsi: a userspace iSCSI initiator",
    after_help = "Volumes are libiscsi URLs: \
iscsi://[user[%secret]@]host[:port]/target-iqn/lun[?target_user=U&target_password=S&header_digest=crc32c]\n\
Secrets may also come from RISCSI_CHAP_SECRET and RISCSI_TARGET_SECRET. \
RUST_LOG sets the log filter; RISCSI_STATE_DIR where a generated initiator name is kept."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// This host's initiator IQN (default: /etc/iscsi/initiatorname.iscsi,
    /// else a generated name kept in the riscsi state directory).
    #[arg(long, global = true, value_name = "IQN")]
    pub initiator_name: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// CHAP credentials given outside the URL. Secrets are only ever read from
/// files or the environment, never from the command line, where `ps` shows them.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "CHAP options")]
pub struct AuthArgs {
    /// CHAP user name (when the URL names none).
    #[arg(long, global = true, value_name = "USER")]
    pub chap_user: Option<String>,
    /// File whose first line is the CHAP secret (else RISCSI_CHAP_SECRET).
    #[arg(long, global = true, value_name = "FILE")]
    pub chap_secret_file: Option<PathBuf>,
    /// User name the target answers mutual CHAP with (when the URL has no target_user).
    #[arg(long, global = true, value_name = "USER")]
    pub target_user: Option<String>,
    /// File whose first line is the mutual CHAP (target) secret (else RISCSI_TARGET_SECRET).
    #[arg(long, global = true, value_name = "FILE")]
    pub target_secret_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// SendTargets discovery: one `ip:port,tpgt iqn` line per path.
    Discover(DiscoverArgs),
    /// Identity, capacity, provisioning and limits of a volume, and the session parameters.
    Inquiry(InquiryArgs),
    /// Copy between a volume and a file or stdin/stdout (`-`).
    Copy(CopyArgs),
    /// Measure throughput, IOPS and latency on a volume.
    Bench(BenchArgs),
    /// Print this host's os-brick style connector properties as JSON.
    Connector(ConnectorArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("riscsi").chain(args.iter().copied()))
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&[
            "discover",
            "127.0.0.1:3260",
            "-vv",
            "--initiator-name",
            "iqn.2026-11.test:me",
            "--chap-user",
            "alice",
        ])
        .unwrap();
        assert_eq!(cli.global.verbose, 2);
        assert_eq!(
            cli.global.initiator_name.as_deref(),
            Some("iqn.2026-11.test:me")
        );
        assert_eq!(cli.global.auth.chap_user.as_deref(), Some("alice"));
        assert!(matches!(cli.command, Command::Discover(_)));
    }

    #[test]
    fn there_is_no_secret_option() {
        // A secret on the command line would be visible to every user via ps.
        assert!(parse(&["discover", "h", "--chap-secret", "x"]).is_err());
        assert!(parse(&["discover", "h", "--target-secret", "x"]).is_err());
    }

    #[test]
    fn a_subcommand_is_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
    }
}
