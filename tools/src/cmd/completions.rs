//! `riscsi completions SHELL` and `riscsi manpage`: generated from the clap
//! definitions, so they never drift from the real options.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{CliError, Result};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManpageArgs {
    /// Write riscsi.1 and one riscsi-SUBCOMMAND.1 per subcommand into this
    /// directory instead of printing riscsi.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell`.
pub fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "riscsi", &mut std::io::stdout());
    Ok(())
}

/// Prints riscsi.1, or writes every page into a directory.
pub fn manpage(args: &ManpageArgs) -> Result<()> {
    let mut command = Cli::command();
    command.build();
    match &args.dir {
        None => {
            let mut out = Vec::new();
            render(&command, &mut out, Path::new("stdout"))?;
            std::io::stdout()
                .write_all(&out)
                .map_err(|e| CliError::file("cannot write", Path::new("stdout"), e))
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| CliError::file("cannot create", dir, e))?;
            write_page(&command, &dir.join("riscsi.1"))?;
            for sub in command.get_subcommands() {
                let name = format!("riscsi-{}", sub.get_name());
                let page = sub.clone().name(name.clone());
                write_page(&page, &dir.join(format!("{name}.1")))?;
            }
            Ok(())
        }
    }
}

fn write_page(command: &clap::Command, path: &Path) -> Result<()> {
    let mut out = Vec::new();
    render(command, &mut out, path)?;
    std::fs::write(path, out).map_err(|e| CliError::file("cannot write", path, e))
}

fn render(command: &clap::Command, out: &mut Vec<u8>, path: &Path) -> Result<()> {
    clap_mangen::Man::new(command.clone())
        .render(out)
        .map_err(|e| CliError::file("cannot render", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_scripts_know_the_subcommands_and_parse() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "riscsi", &mut out);
            let text = String::from_utf8(out).unwrap();
            // fish spells long options `-l nbd-unix`.
            for word in ["attach", "nbd-unix", "policy", "status"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
            if shell == Shell::Bash {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("riscsi.bash");
                std::fs::write(&path, &text).unwrap();
                let ok = std::process::Command::new("bash")
                    .arg("-n")
                    .arg(&path)
                    .status();
                assert!(ok.unwrap().success(), "bash -n rejects the script");
            }
        }
    }

    #[test]
    fn pages_cover_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        manpage(&ManpageArgs {
            dir: Some(dir.path().to_owned()),
        })
        .unwrap();
        let main = std::fs::read_to_string(dir.path().join("riscsi.1")).unwrap();
        assert!(main.contains(".TH riscsi"), "{main}");
        for sub in [
            "attach",
            "status",
            "path",
            "inquiry",
            "copy",
            "bench",
            "discover",
            "connector",
        ] {
            let page = std::fs::read_to_string(dir.path().join(format!("riscsi-{sub}.1")))
                .unwrap_or_else(|e| panic!("riscsi-{sub}.1: {e}"));
            assert!(page.contains(&format!("riscsi\\-{sub}")), "{sub}: {page}");
        }
        let attach = std::fs::read_to_string(dir.path().join("riscsi-attach.1")).unwrap();
        assert!(attach.contains("nbd\\-unix"), "{attach}");
    }
}
