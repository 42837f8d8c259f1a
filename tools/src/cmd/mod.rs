//! One module per subcommand; `run` resolves what they share and dispatches.

pub mod attach;
pub mod bench;
pub mod completions;
pub mod conformance;
pub mod connector;
pub mod copy;
pub mod discover;
pub mod inquiry;
pub mod path;
pub mod status;

use std::future::Future;

use crate::cli::{Cli, Command, InitiatorArgs};
use crate::error::{CliError, Result};
use crate::initiator;

/// What every subcommand needs besides its own arguments.
#[derive(Debug)]
pub struct Context {
    pub initiator_name: String,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    // Only the subcommands that log in (and `connector`) resolve an
    // initiator name: the others need none, nor a state directory to make
    // one in.
    match cli.command {
        Command::Connector(args) => connector::run(&context(&args.initiator)?, &args),
        Command::Discover(args) => {
            let ctx = context(&args.initiator)?;
            block_on(Threads::Many(None), discover::run(&ctx, args))
        }
        Command::Inquiry(args) => {
            let ctx = context(&args.options.initiator)?;
            block_on(Threads::Many(None), inquiry::run(&ctx, args))
        }
        Command::Copy(args) => {
            let ctx = context(&args.options.initiator)?;
            block_on(Threads::Many(None), copy::run(&ctx, args))
        }
        Command::Bench(args) => {
            let ctx = context(&args.options.initiator)?;
            block_on(Threads::One, bench::run(&ctx, args))
        }
        // One thread: an NBD request goes from the socket to the session
        // driver and back without crossing threads (BENCHMARKS.md).
        Command::Attach(args) => {
            let ctx = context(&args.options.initiator)?;
            let threads = match args.threads {
                1 => Threads::One,
                n => Threads::Many(Some(usize::from(n))),
            };
            block_on(threads, attach::run(&ctx, args))
        }
        Command::Conformance(args) if args.list => conformance::list(&args),
        Command::Conformance(args) => {
            let ctx = context(&args.initiator)?;
            block_on(Threads::One, conformance::run(&ctx, args))
        }
        Command::Status(args) => block_on(Threads::One, status::run(args)),
        Command::Path(args) => block_on(Threads::One, path::run(args)),
        Command::Failback(args) => block_on(Threads::One, path::failback(args)),
        Command::Completions(args) => completions::completions(&args),
        Command::Manpage(args) => completions::manpage(&args),
    }
}

/// The initiator name `--initiator-name` gives, else this host's.
fn context(initiator: &InitiatorArgs) -> Result<Context> {
    Ok(Context {
        initiator_name: initiator::resolve(initiator.initiator_name.as_deref())?,
    })
}

/// Which runtime a command runs on.
enum Threads {
    /// The benchmark: its workers and the session driver hand commands and
    /// completions to each other without waking another thread. Measured here,
    /// a multi-threaded runtime spent as much CPU on cross-thread wake-ups as on
    /// the I/O itself at 4 KiB x 32; the target gets the other cores.
    One,
    /// Session drivers and I/O tasks live on the workers (this many, else
    /// one per core), while the command's own future runs on this thread
    /// and may do blocking local file I/O without stalling them.
    Many(Option<usize>),
}

fn block_on<F: Future<Output = Result<()>>>(threads: Threads, future: F) -> Result<()> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::Many(workers) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = workers {
                b.worker_threads(n);
            }
            b
        }
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| CliError::Internal(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(future);
    // Background session tasks have nothing left to do once the command ended.
    runtime.shutdown_background();
    result
}
