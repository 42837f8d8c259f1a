//! Driving libiscsi's command-line tools (package `libiscsi-bin`) as the baseline
//! initiator: `iscsi-inq`, `iscsi-readcapacity16`, `iscsi-ls`.
//!
//! Fact measured here: against istgt, libiscsi 1.19's `iscsi-ls` prints the
//! SendTargets answer and then hangs forever. istgt advances ExpCmdSN on the
//! *immediate* Text request, libiscsi then refuses to send its Logout
//! ("cmdsn < expcmdsn") and loops reconnecting to an empty address. [`discover`]
//! therefore reads the answer line by line (via `stdbuf -oL`, or the output would
//! sit in a pipe buffer) and stops the tool once the answer has been printed.

use std::io::{BufRead, BufReader, Read};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{ToolCommand, ToolOutput, wait_until};
use crate::error::{FixtureError, Result};
use crate::spawn::spawn_tied;
use crate::tools::require_tool;

/// A deadline comfortably above what any tool needs on loopback.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// Silence after the last discovery line that means the answer is complete.
const DISCOVERY_QUIET: Duration = Duration::from_millis(400);

/// The secrets inside a libiscsi URL (`user%secret@`, `target_password=`), so that
/// they can be redacted.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let secret = url
        .strip_prefix("iscsi://")
        .and_then(|rest| rest.split_once('@'))
        .and_then(|(credentials, _)| credentials.split_once('%'))
        .map(|(_, secret)| secret.to_owned());
    secrets.extend(secret);
    if let Some((_, query)) = url.split_once('?') {
        secrets.extend(
            query
                .split('&')
                .filter_map(|kv| kv.strip_prefix("target_password="))
                .map(str::to_owned),
        );
    }
    secrets
}

/// A libiscsi tool invocation on `url`, secrets redacted from messages.
pub fn tool(name: &str, url: &str) -> Result<ToolCommand> {
    let mut command = ToolCommand::new(name)?;
    for secret in url_secrets(url) {
        command = command.redact(secret);
    }
    Ok(command)
}

/// Runs `iscsi-inq URL` (standard INQUIRY) and returns its output whatever the
/// exit status; past `timeout` it is killed and [`FixtureError::CommandTimedOut`]
/// returned.
pub fn iscsi_inq(url: &str, timeout: Duration) -> Result<ToolOutput> {
    tool("iscsi-inq", url)?.arg(url).run(timeout)
}

/// Runs `iscsi-inq -e 1 -c PAGE URL` (a VPD page), failing on a non-zero exit.
pub fn iscsi_inq_vpd(url: &str, page: u8, timeout: Duration) -> Result<ToolOutput> {
    tool("iscsi-inq", url)?
        .args([
            "-e".to_owned(),
            "1".to_owned(),
            "-c".to_owned(),
            page.to_string(),
        ])
        .arg(url)
        .run_ok(timeout)
}

/// The unit serial number from `iscsi-inq -e 1 -c 0x80` output, trimmed.
pub fn parse_unit_serial(stdout: &str) -> Option<String> {
    let start = stdout.find("Unit Serial Number:[")? + "Unit Serial Number:[".len();
    let end = start + stdout[start..].find(']')?;
    Some(stdout[start..end].trim().to_owned())
}

/// Capacity as `iscsi-readcapacity16` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Address of the last logical block.
    pub last_lba: u64,
    /// Logical block length in bytes.
    pub block_size: u32,
}

impl Capacity {
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        (self.last_lba + 1) * u64::from(self.block_size)
    }
}

/// Runs `iscsi-readcapacity16 URL`, failing on a non-zero exit.
pub fn read_capacity16(url: &str, timeout: Duration) -> Result<Capacity> {
    let output = tool("iscsi-readcapacity16", url)?
        .arg(url)
        .run_ok(timeout)?;
    parse_capacity(&output.stdout).ok_or_else(|| FixtureError::UnexpectedOutput {
        tool: "iscsi-readcapacity16".into(),
        detail: format!("no capacity in {:?}", output.stdout),
    })
}

/// Parses `RETURNED LOGICAL BLOCK ADDRESS:N` and `LOGICAL BLOCK LENGTH IN BYTES:N`.
pub fn parse_capacity(stdout: &str) -> Option<Capacity> {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(Capacity {
        last_lba: field("RETURNED LOGICAL BLOCK ADDRESS:")?,
        block_size: u32::try_from(field("LOGICAL BLOCK LENGTH IN BYTES:")?).ok()?,
    })
}

/// One `Target:IQN Portal:ADDR,TPGT` line of `iscsi-ls`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DiscoveredTarget {
    /// Target IQN.
    pub iqn: String,
    /// Portal `host:port` (`[v6]:port`), without the group tag.
    pub portal: String,
    /// Target portal group tag.
    pub tpgt: u16,
}

/// What a SendTargets discovery through `iscsi-ls` returned.
#[derive(Debug)]
pub struct Discovery {
    /// Every target/portal pair printed.
    pub targets: Vec<DiscoveredTarget>,
    /// Exit status when the tool finished by itself; `None` when it was stopped
    /// after printing its answer (istgt, see the module doc).
    pub status: Option<ExitStatus>,
    /// What it printed on stderr.
    pub stderr: String,
}

impl Discovery {
    /// Whether discovery answered: a clean exit, or an answer printed before we
    /// stopped the tool.
    pub fn succeeded(&self) -> bool {
        match self.status {
            Some(status) => status.success(),
            None => !self.targets.is_empty(),
        }
    }

    /// The portals listed for `iqn`, sorted.
    pub fn portals_of(&self, iqn: &str) -> Vec<String> {
        let mut portals: Vec<String> = self
            .targets
            .iter()
            .filter(|t| t.iqn == iqn)
            .map(|t| t.portal.clone())
            .collect();
        portals.sort();
        portals
    }
}

/// Parses one `iscsi-ls` line.
pub fn parse_discovery_line(line: &str) -> Option<DiscoveredTarget> {
    let rest = line.trim().strip_prefix("Target:")?;
    let (iqn, portal) = rest.split_once(" Portal:")?;
    let (portal, tpgt) = portal.trim().rsplit_once(',')?;
    Some(DiscoveredTarget {
        iqn: iqn.trim().to_owned(),
        portal: portal.to_owned(),
        tpgt: tpgt.parse().ok()?,
    })
}

/// SendTargets discovery with `iscsi-ls URL` (URL from
/// [`Fixture::discovery_url`](crate::Fixture::discovery_url)).
pub fn discover(url: &str, timeout: Duration) -> Result<Discovery> {
    // stdbuf runs it by name: check it here for a clear error.
    require_tool("iscsi-ls")?;
    let command = tool("stdbuf", url)?.args(["-oL", "iscsi-ls"]).arg(url);
    let mut std_command = command.to_command();
    std_command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn_tied(std_command)
        .map_err(|e| FixtureError::io(format!("cannot run `{}`", command.display()), e))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let (lines_tx, lines) = channel();
    let reader = thread::spawn(move || {
        if let Some(stdout) = stdout {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });

    let deadline = Instant::now() + timeout;
    let mut targets = Vec::new();
    let mut stopped_after_answer = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = if targets.is_empty() {
            deadline - now
        } else {
            DISCOVERY_QUIET.min(deadline - now)
        };
        match lines.recv_timeout(wait) {
            Ok(line) => targets.extend(parse_discovery_line(&line)),
            // stdout closed: the tool is exiting.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) if !targets.is_empty() => {
                stopped_after_answer = true;
                break;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    let status = wait_until(&mut child, Instant::now() + Duration::from_millis(200))
        .ok()
        .flatten();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = reader.join();
    let stderr = command.scrub(&stderr_reader.join().unwrap_or_default());
    if status.is_none() && !stopped_after_answer {
        return Err(FixtureError::CommandTimedOut {
            command: command.display(),
            timeout,
        });
    }
    Ok(Discovery {
        targets,
        status,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_in_urls() {
        assert_eq!(
            url_secrets("iscsi://u%pw1@127.0.0.1:3260/iqn.x:y/1?target_user=t&target_password=pw2"),
            ["pw1", "pw2"]
        );
        assert!(url_secrets("iscsi://127.0.0.1:3260/iqn.x:y/1").is_empty());
        assert!(url_secrets("iscsi://[::1]:3260").is_empty());
    }

    #[test]
    fn capacity_parses() {
        let out =
            "RETURNED LOGICAL BLOCK ADDRESS:4095\nLOGICAL BLOCK LENGTH IN BYTES:4096\nP_TYPE:0\n";
        let cap = parse_capacity(out).unwrap();
        assert_eq!(
            cap,
            Capacity {
                last_lba: 4095,
                block_size: 4096
            }
        );
        assert_eq!(cap.bytes(), 16 << 20);
        assert_eq!(parse_capacity("garbage"), None);
    }

    #[test]
    fn discovery_lines_parse() {
        let t = parse_discovery_line("Target:iqn.a:disk1 Portal:[::1]:15260,1").unwrap();
        assert_eq!(t.iqn, "iqn.a:disk1");
        assert_eq!(t.portal, "[::1]:15260");
        assert_eq!(t.tpgt, 1);
        let t = parse_discovery_line("Target:iqn.a:disk1 Portal:127.0.0.7:3260,12").unwrap();
        assert_eq!((t.portal.as_str(), t.tpgt), ("127.0.0.7:3260", 12));
        assert_eq!(parse_discovery_line("Login failed"), None);
        assert_eq!(parse_discovery_line("Target:x Portal:nocomma"), None);
    }

    #[test]
    fn unit_serial_parses() {
        assert_eq!(
            parse_unit_serial("Unit Serial Number:[          SN12345]\n").as_deref(),
            Some("SN12345")
        );
        assert_eq!(parse_unit_serial("nothing"), None);
    }
}
