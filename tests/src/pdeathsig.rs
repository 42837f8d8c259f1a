//! Children that die with the test process.
//!
//! The only `unsafe` in the crate: a `pre_exec` hook that asks the kernel to SIGKILL
//! the child when its parent goes away (`prctl(PR_SET_PDEATHSIG)`), so that a test
//! process killed with SIGKILL (or crashing) never leaves a tgtd or istgt behind.
//! SIGKILL and not SIGTERM, because tgtd ignores SIGTERM while it has targets.
//!
//! The kernel ties the signal to the parent *thread*, not the process: see
//! `spawn.rs`, which spawns every child from one thread that lives as long as the
//! process does.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Arranges for the child started by `command` to receive SIGKILL when the spawning
/// thread exits.
pub(crate) fn kill_child_when_parent_dies(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid); it allocates nothing and takes no
    // lock. `parent` is a plain integer copied into the closure.
    let parent = std::process::id();
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody would
            // ever send the signal, so give up now.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}
