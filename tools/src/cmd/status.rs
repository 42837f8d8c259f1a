//! `riscsi status`: the volume `riscsi attach` serves and its paths, like
//! `multipath -ll`, from the control socket.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use iscsi_multipath::{PathRole, PathState};

use crate::control::{self, Answer, Request, Status};
use crate::error::{CliError, Result};
use crate::printable::printable;
use crate::size::describe_bytes;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The control socket of `riscsi attach` (default: the only one running).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Print the table again every second until interrupted.
    #[arg(long)]
    pub watch: bool,
}

pub async fn run(args: StatusArgs) -> Result<()> {
    let control = control::find_control(args.control.as_deref())?;
    loop {
        let status = match control::ask(&control, &Request::Status).await? {
            Answer::Status(status) => status,
            Answer::Error { error } => return Err(CliError::Internal(error)),
            Answer::Ok { .. } => {
                return Err(CliError::Internal("riscsi attach sent no status".into()));
            }
        };
        if args.json {
            let text = serde_json::to_string_pretty(&status)
                .map_err(|e| CliError::Internal(format!("JSON: {e}")))?;
            println!("{text}");
            return Ok(());
        }
        if args.watch && std::io::stdout().is_terminal() {
            // Home and clear, so the table stays in place.
            print!("\x1b[H\x1b[2J");
        }
        print!("{}", render(&status));
        if !args.watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The table. Everything from the target is escaped for the terminal.
pub fn render(s: &Status) -> String {
    let v = &s.volume;
    let mut out = format!(
        "{} {} {} ({}-byte blocks)\n",
        printable(&v.name),
        v.identity
            .as_deref()
            .map(|i| printable(i).into_owned())
            .unwrap_or_else(|| "-".into()),
        describe_bytes(v.size_bytes),
        v.block_size
    );
    out.push_str(&format!(
        "policy {}, failback {}, no_path_retry {}; {}\n",
        v.policy, v.failback, v.no_path_retry, v.origin
    ));
    if let Some(ms) = v.no_path_ms {
        out.push_str(&format!(
            "NO USABLE PATH for {}; I/O is queued\n",
            since(ms)
        ));
    }
    out.push_str(&format!(
        "nbd {} ({} client{})\n",
        s.uri,
        s.nbd_clients,
        if s.nbd_clients == 1 { "" } else { "s" }
    ));
    let mut rows = vec![
        [
            "ROLE",
            "STATE",
            "PORTAL",
            "TARGET",
            "LUN",
            "SINCE",
            "IN-FLIGHT",
            "COMPLETED",
            "ERRORS",
            "LAST ERROR",
        ]
        .map(String::from),
    ];
    for p in &v.paths {
        rows.push([
            match p.role {
                PathRole::Main => "main",
                PathRole::Secondary => "secondary",
            }
            .into(),
            match p.state {
                PathState::Active => "active",
                PathState::Standby => "standby",
                PathState::Failed => "failed",
                PathState::Reconnecting => "reconnecting",
                PathState::Refused => "refused",
            }
            .into(),
            p.portal.clone(),
            printable(&p.iqn).into_owned(),
            p.lun.to_string(),
            since(p.state_ms),
            p.in_flight.to_string(),
            p.completed.to_string(),
            p.errors.to_string(),
            p.last_error
                .as_deref()
                .map(|e| printable(e).into_owned())
                .unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            if c < 9 {
                line.push_str(&format!(" {cell:<w$}", w = widths[c]));
            } else if !cell.is_empty() {
                line.push_str(&format!(" {cell}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `3m05s`, `2h10m`, `450ms`.
fn since(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_multipath::{PathStatus, VolumeStatus};

    #[test]
    fn renders_like_multipath_ll() {
        let path = |portal: &str, role, state, err: Option<&str>| PathStatus {
            portal: portal.into(),
            iqn: "iqn.t:v".into(),
            lun: 1,
            role,
            state,
            state_ms: 65_000,
            in_flight: 2,
            completed: 10,
            bytes: 0,
            errors: 1,
            failed_over: 0,
            last_error: err.map(String::from),
        };
        let s = Status {
            volume: VolumeStatus {
                name: "iqn.t:v LUN 1".into(),
                identity: Some("naa.600".into()),
                size_bytes: 1 << 30,
                block_size: 512,
                policy: "failover".into(),
                failback: "immediate".into(),
                no_path_retry: "30s".into(),
                origin: "2 paths from target_portals".into(),
                no_path_ms: None,
                paths: vec![
                    path(
                        "127.0.0.1:3260",
                        PathRole::Main,
                        PathState::Failed,
                        Some("cannot connect\x1b[2J"),
                    ),
                    path("[::1]:3260", PathRole::Secondary, PathState::Active, None),
                ],
            },
            uri: "nbd+unix:///?socket=/run/riscsi/attach-1.nbd".into(),
            nbd_clients: 1,
        };
        let text = render(&s);
        assert!(text.contains("naa.600"), "{text}");
        assert!(text.contains("(1 client)"), "{text}");
        let main = text.lines().find(|l| l.contains("127.0.0.1:3260")).unwrap();
        assert!(
            main.contains("main") && main.contains("failed") && main.contains("1m05s"),
            "{main}"
        );
        assert!(!text.contains('\x1b'), "escaped: {text:?}");
        assert_eq!(since(450), "450ms");
        assert_eq!(since(7_500_000), "2h05m");
    }
}
