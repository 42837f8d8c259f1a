//! The command line: global options and the subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use iscsi_multipath::{Failback, NoPathRetry, Policy};

use crate::cmd::{
    attach::AttachArgs, bench::BenchArgs, completions::CompletionsArgs, completions::ManpageArgs,
    conformance::ConformanceArgs, connector::ConnectorArgs, copy::CopyArgs, discover::DiscoverArgs,
    inquiry::InquiryArgs, path::FailbackArgs, path::PathArgs, status::StatusArgs,
};

/// The command line of `riscsi`.
#[derive(Debug, Parser)]
#[command(
    name = "riscsi",
    version,
    about = "riscsi: a userspace iSCSI initiator",
    after_help = "A VOLUME is a libiscsi URL, \
iscsi://[user[%secret]@]host[:port]/target-iqn/lun[?target_user=U&target_password=S&header_digest=D&data_digest=D], \
where D is none, crc32c, none_crc32c (the default: the target picks) or crc32c_none, \
or @FILE: the storage service's connection_info JSON (@- reads it from standard input), \
whose every path riscsi logs in to.\n\
Secrets may also come from RISCSI_CHAP_SECRET and RISCSI_TARGET_SECRET. \
RUST_LOG sets the log filter; RISCSI_STATE_DIR where a generated initiator name is kept."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that mean something to every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Who logs in, for the subcommands that log in to a target (and
/// `connector`, which reports the name): not a global option, since the
/// others (`status`, `path`, `completions`...) have no use for it.
#[derive(Debug, Args, Default, Clone)]
pub struct InitiatorArgs {
    /// This host's initiator IQN (default: /etc/iscsi/initiatorname.iscsi,
    /// else a generated name kept in the riscsi state directory).
    #[arg(long, value_name = "IQN")]
    pub initiator_name: Option<String>,
}

/// CHAP credentials given outside a URL. Secrets are only ever read from
/// files or the environment, never from the command line, where `ps` shows
/// them. A connection_info volume carries its own credentials.
#[derive(Debug, Args, Default, Clone)]
#[command(next_help_heading = "CHAP options (URL volumes)")]
pub struct AuthArgs {
    /// CHAP user name (when the URL names none).
    #[arg(long, value_name = "USER")]
    pub chap_user: Option<String>,
    /// File whose first line is the CHAP secret (else RISCSI_CHAP_SECRET).
    #[arg(long, value_name = "FILE")]
    pub chap_secret_file: Option<PathBuf>,
    /// User name the target answers mutual CHAP with (when the URL has no target_user).
    #[arg(long, value_name = "USER")]
    pub target_user: Option<String>,
    /// File whose first line is the mutual CHAP (target) secret (else RISCSI_TARGET_SECRET).
    #[arg(long, value_name = "FILE")]
    pub target_secret_file: Option<PathBuf>,
}

impl AuthArgs {
    /// Whether any CHAP option was given.
    pub fn any(&self) -> bool {
        self.chap_user.is_some()
            || self.chap_secret_file.is_some()
            || self.target_user.is_some()
            || self.target_secret_file.is_some()
    }
}

/// How the volume's paths are used, as dm-multipath names it.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Multipath options")]
pub struct MultipathArgs {
    /// Path selection: failover (all I/O on one path, the main one first),
    /// round-robin, queue-length or service-time.
    #[arg(long, default_value = "failover", value_name = "POLICY")]
    pub policy: Policy,
    /// When a recovered main path carries I/O again: immediate, manual,
    /// followover, or after N seconds of health.
    #[arg(long, default_value = "immediate", value_name = "MODE")]
    pub failback: Failback,
    /// While no path is usable: queue (wait forever), fail, or wait N seconds.
    #[arg(long, default_value = "30", value_name = "SECONDS|queue|fail")]
    pub no_path_retry: NoPathRetry,
    /// Seconds each login attempt of a path (connect and login) may take.
    #[arg(long, default_value_t = 15.0, value_name = "SECONDS", value_parser = parse_seconds)]
    pub path_timeout: f64,
    /// Idle seconds before a path is pinged (NOP-Out), as open-iscsi's
    /// noop_out_interval; with --nop-timeout it bounds how long a path that
    /// went silent (a cut link) holds I/O before failover.
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS", value_parser = parse_seconds)]
    pub nop_interval: f64,
    /// Seconds without an answer to the ping before the path is declared dead.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS", value_parser = parse_seconds)]
    pub nop_timeout: f64,
}

pub fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('s').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

impl MultipathArgs {
    /// The path timeout as a duration.
    pub fn path_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.path_timeout)
    }

    /// The session timeouts the keepalive flags ask for.
    pub fn timeouts(&self) -> iscsi_session::Timeouts {
        iscsi_session::Timeouts {
            nop_interval: Duration::from_secs_f64(self.nop_interval),
            nop_timeout: Duration::from_secs_f64(self.nop_timeout),
            ..iscsi_session::Timeouts::default()
        }
    }
}

/// What every command that opens a volume takes besides the volume itself.
#[derive(Debug, Args, Clone)]
pub struct VolumeArgs {
    #[command(flatten)]
    pub initiator: InitiatorArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub multipath: MultipathArgs,
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
    /// Log in to every path of a volume and serve it as one NBD block device.
    Attach(AttachArgs),
    /// The volume `riscsi attach` serves and its paths, like `multipath -ll`.
    Status(StatusArgs),
    /// Fail, reinstate or reconnect one path of `riscsi attach`'s volume.
    Path(PathArgs),
    /// Send `riscsi attach`'s I/O back to the main path now (--failback manual).
    Failback(FailbackArgs),
    /// Test a target against RFC 7143, SPC and SBC: login, full feature,
    /// SCSI and (with URL2) multipath families.
    Conformance(ConformanceArgs),
    /// Print a shell completion script (bash, zsh, fish...).
    Completions(CompletionsArgs),
    /// Print the man page (or write every page with --dir).
    Manpage(ManpageArgs),
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
        let cli = parse(&["status", "-vv"]).unwrap();
        assert_eq!(cli.global.verbose, 2);
        let cli = parse(&[
            "-vv",
            "discover",
            "127.0.0.1:3260",
            "--initiator-name",
            "iqn.2026-11.test:me",
            "--chap-user",
            "alice",
        ])
        .unwrap();
        assert_eq!(cli.global.verbose, 2);
        let Command::Discover(d) = cli.command else {
            panic!("not discover")
        };
        assert_eq!(
            d.initiator.initiator_name.as_deref(),
            Some("iqn.2026-11.test:me")
        );
        assert_eq!(d.auth.chap_user.as_deref(), Some("alice"));
    }

    #[test]
    fn options_appear_only_where_they_mean_something() {
        // The connector sends no login: CHAP and multipath options are not its.
        assert!(parse(&["connector", "--chap-user", "alice"]).is_err());
        assert!(parse(&["connector", "--policy", "round-robin"]).is_err());
        assert!(parse(&["discover", "h", "--policy", "round-robin"]).is_err());
        let mut cli = Cli::command();
        // Global options reach the subcommands when the command is built.
        cli.build();
        let mut help_of = |name: &str| {
            cli.find_subcommand_mut(name)
                .unwrap_or_else(|| panic!("no subcommand {name}"))
                .render_long_help()
                .to_string()
        };
        let help = help_of("connector");
        assert!(!help.to_lowercase().contains("chap"), "{help}");
        // The initiator name only where something logs in (or, for the
        // connector, reports it): the others talk to a local control
        // socket or print text.
        let logs_in = [
            "inquiry",
            "copy",
            "bench",
            "discover",
            "attach",
            "conformance",
            "connector",
        ];
        for name in logs_in {
            let help = help_of(name);
            assert!(help.contains("--initiator-name"), "{name}: {help}");
        }
        for name in ["completions", "manpage", "status", "path", "failback"] {
            let help = help_of(name);
            assert!(!help.contains("--initiator-name"), "{name}: {help}");
            assert!(help.contains("--verbose"), "{name}: {help}");
        }
        assert!(parse(&["--initiator-name", "iqn.2026-11.test:me", "inquiry", "@x"]).is_err());
        assert!(parse(&["status", "--initiator-name", "iqn.2026-11.test:me"]).is_err());
        let top = cli.render_long_help().to_string();
        assert!(!top.contains("--initiator-name"), "{top}");
        let cli = parse(&[
            "inquiry",
            "@ci.json",
            "--policy",
            "round-robin",
            "--failback",
            "15",
            "--no-path-retry",
            "queue",
            "--path-timeout",
            "2.5",
        ])
        .unwrap();
        let Command::Inquiry(i) = cli.command else {
            panic!("not inquiry")
        };
        let m = &i.options.multipath;
        assert_eq!(m.policy, Policy::RoundRobin);
        assert_eq!(m.failback, Failback::After(Duration::from_secs(15)));
        assert_eq!(m.no_path_retry, NoPathRetry::Queue);
        assert_eq!(m.path_timeout(), Duration::from_millis(2500));
        assert!(parse(&["inquiry", "@x", "--policy", "fastest"]).is_err());
        assert!(parse(&["inquiry", "@x", "--path-timeout", "0"]).is_err());
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
