//! `riscsi`: the command-line front end of the riscsi iSCSI initiator
//! (discover, inquiry, copy, bench, connector).
// Denied, not forbidden: kernel_nbd/ioctl.rs, the one module that needs
// ioctl(2), allows it for itself.
#![deny(unsafe_code)]
// The doc comments of the argument structs are clap's --help text, where
// `[...]` marks an optional part (`host[:port]`), not a link.
#![allow(rustdoc::broken_intra_doc_links)]

mod auth;
mod cli;
mod cmd;
mod control;
mod cpu_time;
mod error;
mod initiator;
mod io_util;
mod kernel_nbd;
mod printable;
mod progress;
mod size;
mod volume;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.global.verbose);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no Debug dump: every error's Display names what failed
            // and where, and none of them can carry a secret. Escaped, since
            // parts of it may come from the target.
            eprintln!("riscsi: {}", printable::printable(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG` wins when set; otherwise `-v` raises the level. Without it the
/// libraries say only what is an error: a path failing over, a login that
/// is refused, reach the user as the command's own one-line error or not
/// at all when another path carries on (-v shows them).
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,iscsi_session=error,iscsi_multipath=error",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
