//! Spawning children from one long-lived thread.
//!
//! `PR_SET_PDEATHSIG` fires when the thread that forked the child exits. Test
//! threads come and go (a fixture may be created by one test thread and shared with
//! others, or by a tokio worker), so every child is forked by a dedicated thread
//! that lives until the process ends: the child then dies exactly when the test
//! process does.

use std::io;
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};
use std::thread;

use crate::pdeathsig::kill_child_when_parent_dies;

struct SpawnRequest {
    command: Command,
    reply: Sender<io::Result<Child>>,
}

fn spawner() -> &'static Sender<SpawnRequest> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (requests, incoming) = channel::<SpawnRequest>();
        thread::Builder::new()
            .name("riscsi-tests-spawner".into())
            .spawn(move || {
                for mut request in incoming {
                    kill_child_when_parent_dies(&mut request.command);
                    // The requester may have gone away; the child is then dropped
                    // (not killed) like any unused `Child`, which cannot happen with
                    // our callers since they wait for the reply.
                    let _ = request.reply.send(request.command.spawn());
                }
            })
            .expect("cannot start the spawner thread");
        requests
    })
}

/// Spawns `command` so that the child is SIGKILLed when the test process dies.
pub fn spawn_tied(command: Command) -> io::Result<Child> {
    let (reply, answer) = channel();
    spawner()
        .send(SpawnRequest { command, reply })
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("spawner thread dropped the request"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn spawned_child_runs_and_reports_status() {
        let mut command = Command::new("sh");
        command.args(["-c", "exit 3"]).stdout(Stdio::null());
        let status = spawn_tied(command).unwrap().wait().unwrap();
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn spawn_error_is_returned_not_swallowed() {
        let err = spawn_tied(Command::new("/nonexistent/riscsi-binary")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn child_outlives_the_thread_that_asked_for_it() {
        // The parent-death signal is tied to the forking thread; the spawner thread,
        // not the short-lived requesting thread, must be that parent. (Death of the
        // whole process is covered by the `orphan` integration test.)
        let mut child = thread::spawn(|| {
            let mut command = Command::new("sleep");
            command.arg("5");
            spawn_tied(command).unwrap()
        })
        .join()
        .unwrap();
        thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            child.try_wait().unwrap().is_none(),
            "child died with the thread that asked for it"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
