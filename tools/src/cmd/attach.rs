//! `riscsi attach VOLUME`: log in to every path, serve the multipath volume
//! over NBD, answer operators on the control socket, and on SIGINT/SIGTERM
//! stop accepting, drain, flush, log out and remove the sockets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use iscsi_multipath::MultipathVolume;
use iscsi_session::BlockDevice;
use riscsi_nbd::{ExportConfig, Listener, NbdServer, bind_unix_private, check_unix_peer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use super::Context;
use crate::cli::VolumeArgs;
use crate::control::{self, Answer, PathAction, Request, Status};
use crate::error::{CliError, Result};
use crate::kernel_nbd::KernelDevice;
use crate::volume::Volume;

/// How long in-flight NBD requests get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The volume: iscsi://[user[%secret]@]host[:port]/target-iqn/lun, or
    /// @FILE with the connection_info JSON (@- for standard input).
    pub volume: String,
    /// Serve NBD on this unix socket (default: a socket in the run
    /// directory, mode 0600).
    #[arg(long, value_name = "PATH", conflicts_with = "nbd_listen")]
    pub nbd_unix: Option<PathBuf>,
    /// Serve NBD over TCP on HOST:PORT instead ([::1]:PORT for IPv6); only
    /// loopback addresses unless --nbd-allow-remote.
    #[arg(long, value_name = "HOST:PORT")]
    pub nbd_listen: Option<SocketAddr>,
    /// Allow --nbd-listen on a non-loopback address. NBD has no
    /// authentication: anyone who reaches the port gets the volume.
    #[arg(long, requires = "nbd_listen")]
    pub nbd_allow_remote: bool,
    /// NBD connections served at once, negotiating or not; past it, new
    /// connections are closed at once (and logged).
    #[arg(long, default_value_t = riscsi_nbd::DEFAULT_MAX_CLIENTS as u16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub nbd_max_clients: u16,
    /// Of those, connections still in their NBD handshake at once; past it,
    /// the oldest handshake is closed to make room, so that idle or
    /// trickling connections cannot lock clients out.
    #[arg(long, default_value_t = riscsi_nbd::DEFAULT_MAX_HANDSHAKES as u16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub nbd_max_handshakes: u16,
    /// Seconds a client has to finish its NBD handshake.
    #[arg(long, default_value_t = riscsi_nbd::DEFAULT_HANDSHAKE_TIMEOUT.as_secs_f64(),
          value_name = "SECONDS", value_parser = crate::cli::parse_seconds)]
    pub nbd_handshake_timeout: f64,
    /// The NBD export name (clients may also ask for the default, "").
    #[arg(long, default_value = "", value_name = "NAME")]
    pub export: String,
    /// The control socket for `riscsi status` and `riscsi path` (default:
    /// in the run directory, mode 0600).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Also hand the export to the kernel's NBD driver as this device
    /// (no nbd-client needed); the ready line is then the device path.
    #[arg(long, value_name = "/dev/nbdN")]
    pub device: Option<PathBuf>,
    /// Runtime threads. 1 (the default) keeps each request on one thread
    /// from the NBD socket to the iSCSI session and back; more spread
    /// clients and paths over cores at the price of cross-thread wake-ups
    /// (BENCHMARKS.md measures both).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    #[command(flatten)]
    pub options: VolumeArgs,
}

pub async fn run(ctx: &Context, args: AttachArgs) -> Result<()> {
    let run_dir = control::run_dir();
    let pid = std::process::id();
    let control_path = args
        .control
        .clone()
        .unwrap_or_else(|| run_dir.join(format!("attach-{pid}.control")));
    let nbd_path = match (&args.nbd_unix, args.nbd_listen) {
        (Some(path), _) => Some(path.clone()),
        (None, None) => Some(run_dir.join(format!("attach-{pid}.nbd"))),
        (None, Some(_)) => None,
    };
    // Checked again by the listener; here it fails before any login.
    if let Some(addr) = args.nbd_listen
        && !addr.ip().is_loopback()
        && !args.nbd_allow_remote
    {
        return Err(CliError::usage(format!(
            "refusing to serve NBD on {addr}: not a loopback address, and NBD has no \
             authentication (--nbd-allow-remote allows it)"
        )));
    }
    if args.control.is_none() || (args.nbd_unix.is_none() && args.nbd_listen.is_none()) {
        control::make_run_dir(&run_dir)?;
    }
    let volume = Volume::open_arg(&args.volume, &args.options, &ctx.initiator_name).await?;
    let result = serve(&volume, &args, nbd_path.as_deref(), &control_path).await;
    // Flush, then log out of every path, whatever happened.
    if !volume.read_only
        && let Err(e) = volume.device.flush().await
    {
        warn!(error = %e, "final flush failed");
    }
    volume.close().await;
    result
}

async fn serve(
    volume: &Volume,
    args: &AttachArgs,
    nbd_path: Option<&Path>,
    control_path: &Path,
) -> Result<()> {
    let listener = match (nbd_path, args.nbd_listen) {
        (Some(path), _) => Listener::unix(path),
        (None, Some(addr)) => Listener::tcp(addr, args.nbd_allow_remote).await,
        (None, None) => unreachable!("a unix socket is the default"),
    }
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let uri = listener.uri(&args.export);
    let config = ExportConfig {
        description: volume.name.clone(),
        read_only: volume.read_only,
        trim: volume.discard,
        max_clients: usize::from(args.nbd_max_clients),
        max_handshakes: usize::from(args.nbd_max_handshakes),
        handshake_timeout: Duration::from_secs_f64(args.nbd_handshake_timeout),
        ..ExportConfig::new(args.export.clone())
    };
    let server = Arc::new(NbdServer::new(volume.device.clone(), config));
    let control = ControlSocket::bind(control_path)?;
    let kernel = match &args.device {
        Some(device) => Some(kernel_device(&server, device)?),
        None => None,
    };
    // The one line a script waits for.
    match &args.device {
        Some(device) => println!("{}", device.display()),
        None => println!("{uri}"),
    }
    info!(%uri, control = %control_path.display(), "serving");
    let control_task = tokio::spawn(control.serve(volume.device.clone(), server.clone(), uri));
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|e| CliError::Internal(format!("cannot watch SIGINT: {e}")))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|e| CliError::Internal(format!("cannot watch SIGTERM: {e}")))?;
    let run = server.run(vec![listener], DRAIN);
    tokio::pin!(run);
    tokio::select! {
        () = &mut run => {}
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    // The kernel first: it sends NBD_CMD_DISC once its queue is answered.
    if let Some((device, served)) = kernel {
        if let Err(e) = device.disconnect() {
            warn!(error = %e, "kernel device disconnect");
        }
        let _ = tokio::time::timeout(DRAIN, served).await;
    }
    stop(&server);
    // A second signal while draining: leave at once.
    tokio::select! {
        () = &mut run => {}
        _ = interrupt.recv() => std::process::exit(130),
        _ = terminate.recv() => std::process::exit(143),
    }
    control_task.abort();
    Ok(())
}

/// Connects `/dev/nbdN` to the export through a socket pair; the task serves
/// the kernel's requests until it disconnects.
fn kernel_device(
    server: &Arc<NbdServer<MultipathVolume>>,
    device: &Path,
) -> Result<(KernelDevice, tokio::task::JoinHandle<()>)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    use std::os::fd::AsRawFd;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| CliError::Internal(format!("socketpair: {e}")))?;
    let export = server.export();
    let (block_size, _, _) = export.block_sizes();
    let kernel = KernelDevice::connect(
        device,
        export.size(),
        block_size,
        export.transmission_flags(false),
        theirs.as_raw_fd(),
    )?;
    // The kernel holds its own reference to the socket now.
    drop(theirs);
    let stream = std::os::unix::net::UnixStream::from(ours);
    stream
        .set_nonblocking(true)
        .map_err(|e| CliError::Internal(format!("socket: {e}")))?;
    let mut stream = tokio::net::UnixStream::from_std(stream)
        .map_err(|e| CliError::Internal(format!("socket: {e}")))?;
    let server = server.clone();
    let served = tokio::spawn(async move {
        if let Err(e) = server.serve_negotiated(&mut stream).await {
            warn!(error = %e, "kernel NBD connection ended");
        }
    });
    info!(device = %device.display(), "kernel NBD device connected");
    Ok((kernel, served))
}

fn stop<B: BlockDevice + Send + Sync + 'static>(server: &NbdServer<B>) {
    info!(clients = server.clients(), "stopping: draining NBD clients");
    server.shutdown();
}

/// The control socket; its file is removed when it is dropped.
struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    fn bind(path: &Path) -> Result<ControlSocket> {
        let listener = bind_unix_private(path).map_err(|e| CliError::Usage(e.to_string()))?;
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
        })
    }

    async fn serve(
        self,
        volume: MultipathVolume,
        server: Arc<NbdServer<MultipathVolume>>,
        uri: String,
    ) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            // The socket is mode 0600; another user who reaches it anyway
            // (a loosened mode) gets no answer, only a log line.
            if let Err(e) = check_unix_peer(&stream) {
                warn!(control = %self.path.display(), "control socket: {e}");
                continue;
            }
            let (volume, server, uri) = (volume.clone(), server.clone(), uri.clone());
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(control::TIMEOUT, answer(stream, &volume, &server, &uri))
                        .await;
            });
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(
    stream: tokio::net::UnixStream,
    volume: &MultipathVolume,
    server: &NbdServer<MultipathVolume>,
    uri: &str,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read)
        .take(control::MAX_LINE)
        .read_line(&mut line)
        .await?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Err(e) => Answer::Error {
            error: format!("not a control request: {e}"),
        },
        Ok(Request::Status) => Answer::Status(Box::new(Status {
            volume: volume.status(),
            uri: uri.to_owned(),
            nbd_clients: server.clients(),
        })),
        Ok(Request::Failback) => {
            volume.failback();
            Answer::Ok { ok: true }
        }
        Ok(Request::Path { action, portal }) => {
            let done = match action {
                PathAction::Fail => volume.fail_path(&portal),
                PathAction::Reinstate => volume.reinstate_path(&portal),
                PathAction::Reconnect => volume.reconnect_path(&portal),
            };
            match done {
                Ok(()) => Answer::Ok { ok: true },
                Err(e) => Answer::Error {
                    error: e.to_string(),
                },
            }
        }
    };
    let mut text = serde_json::to_vec(&answer).unwrap_or_default();
    text.push(b'\n');
    write.write_all(&text).await
}
