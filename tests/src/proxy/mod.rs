//! `FaultProxy`: a TCP proxy in front of one portal that can reset, black-hole,
//! delay or refuse connections on command.
//!
//! It runs on its own thread with its own tokio current-thread runtime, so sync
//! tests and async tests (any runtime flavour) drive it the same way, through a
//! [`ProxyControl`] (the proxy derefs to one; clone it to hand it around).

mod control;
mod forward;
mod inject;

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use control::{ProxyControl, ProxyMode, ProxyStats};

use crate::error::{FixtureError, Result};
use crate::net::unique_loopback_v4;

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A running fault-injecting proxy; stops and closes its connections on drop.
#[derive(Debug)]
pub struct FaultProxy {
    control: ProxyControl,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `target` listening on a fresh 127.x.y.z address (its own "portal"
    /// address) and a kernel-chosen port.
    pub fn start(target: SocketAddr) -> Result<FaultProxy> {
        Self::start_on(SocketAddr::new(IpAddr::V4(unique_loopback_v4()), 0), target)
    }

    /// A proxy to `target` listening on `listen` (port 0 = any free port).
    pub fn start_on(listen: SocketAddr, target: SocketAddr) -> Result<FaultProxy> {
        // Bind here, synchronously, so the caller gets the error and the address.
        let listener = std::net::TcpListener::bind(listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| FixtureError::io(format!("proxy cannot listen on {listen}"), e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| FixtureError::io("proxy has no local address", e))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FixtureError::io("cannot build the proxy runtime", e))?;
        let control = ProxyControl::new(bound, target);
        let (shutdown, stop) = oneshot::channel();
        let task_control = control.clone();
        let thread = thread::Builder::new()
            .name(format!("fault-proxy-{bound}"))
            .spawn(move || runtime.block_on(accept_loop(listener, task_control, stop)))
            .map_err(|e| FixtureError::io("cannot start the proxy thread", e))?;
        Ok(FaultProxy {
            control,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// A handle to control the proxy from anywhere.
    pub fn control(&self) -> ProxyControl {
        self.control.clone()
    }
}

impl Deref for FaultProxy {
    type Target = ProxyControl;

    fn deref(&self) -> &ProxyControl {
        &self.control
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Returning from block_on drops the runtime, which cancels every
            // connection task and closes its sockets.
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    control: ProxyControl,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    control.counters.accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if control.mode() == ProxyMode::Refuse {
                        control.counters.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = stream.set_zero_linger();
                        drop(stream);
                    } else {
                        tokio::spawn(forward::serve(stream, control.clone()));
                    }
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
        }
    }
}

#[cfg(test)]
mod tests;
