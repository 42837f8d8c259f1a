//! `riscsi path fail|reinstate|reconnect PORTAL`: multipathd's `fail path`
//! and `reinstate path` (and a login now), through the control socket of
//! `riscsi attach`.

use std::path::PathBuf;

use clap::Args;

use crate::control::{self, Answer, PathAction, Request};
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct PathArgs {
    /// fail (out of use until reinstated), reinstate, or reconnect (log in again now).
    #[arg(value_enum)]
    pub action: PathAction,
    /// The path's portal, as `riscsi status` shows it (host:port, [v6]:port).
    pub portal: String,
    /// The control socket of `riscsi attach` (default: the only one running).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct FailbackArgs {
    /// The control socket of `riscsi attach` (default: the only one running).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
}

/// `riscsi failback`: the main path carries I/O again now (with `--failback
/// manual`, the only way back while another path lives).
pub async fn failback(args: FailbackArgs) -> Result<()> {
    let control = control::find_control(args.control.as_deref())?;
    match control::ask(&control, &Request::Failback).await? {
        Answer::Ok { .. } => Ok(()),
        Answer::Error { error } => Err(CliError::Usage(error)),
        Answer::Status(_) => Err(CliError::Internal("unexpected answer".into())),
    }
}

pub async fn run(args: PathArgs) -> Result<()> {
    let control = control::find_control(args.control.as_deref())?;
    let request = Request::Path {
        action: args.action,
        portal: args.portal,
    };
    match control::ask(&control, &request).await? {
        Answer::Ok { .. } => Ok(()),
        Answer::Error { error } => Err(CliError::Usage(error)),
        Answer::Status(_) => Err(CliError::Internal("unexpected answer".into())),
    }
}
