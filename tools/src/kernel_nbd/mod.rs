//! `riscsi attach --device /dev/nbdN`: hands the export to the kernel's NBD
//! driver, as nbd-client does but with no nbd-client: one end of a socket
//! pair goes to the kernel (generic netlink NBD_CMD_CONNECT, or the ioctls
//! on kernels without it), riscsi serves the transmission phase on the other.

mod ioctl;
mod netlink;

use std::os::fd::RawFd;
use std::path::Path;

use ioctl::IoctlDevice;
use netlink::{NbdNetlink, NetlinkError};

use crate::error::{CliError, Result};

/// Seconds the kernel waits for a request's reply before it errors the
/// request (the volume itself queues while no path lives, for no_path_retry).
const KERNEL_TIMEOUT_SECS: u64 = 600;

/// A kernel NBD device connected to us.
#[derive(Debug)]
pub enum KernelDevice {
    /// Set up over netlink.
    Netlink {
        /// The netlink socket, kept for the disconnect.
        netlink: NbdNetlink,
        /// N of /dev/nbdN.
        index: u32,
    },
    /// Set up with ioctls.
    Ioctl(IoctlDevice),
}

/// N of `/dev/nbdN`.
fn index_of(path: &Path) -> Result<u32> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("nbd"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            CliError::usage(format!(
                "--device {}: expected an NBD device such as /dev/nbd0",
                path.display()
            ))
        })
}

impl KernelDevice {
    /// Connects `device` to the server end `socket` of an export of `size`
    /// bytes in `block_size` blocks with transmission flags `flags`.
    pub fn connect(
        device: &Path,
        size: u64,
        block_size: u32,
        flags: u16,
        socket: RawFd,
    ) -> Result<KernelDevice> {
        let index = index_of(device)?;
        let refused = |why: String| {
            CliError::Internal(format!("the kernel refused {}: {why}", device.display()))
        };
        match NbdNetlink::open() {
            Ok(mut netlink) => {
                netlink
                    .connect(index, size, block_size, flags, socket, KERNEL_TIMEOUT_SECS)
                    .map_err(|e| refused(e.to_string()))?;
                Ok(KernelDevice::Netlink { netlink, index })
            }
            Err(NetlinkError::NoFamily) if device.exists() => {
                IoctlDevice::connect(device, size, block_size, flags, socket, KERNEL_TIMEOUT_SECS)
                    .map(KernelDevice::Ioctl)
                    .map_err(|e| refused(e.to_string()))
            }
            Err(NetlinkError::NoFamily) => Err(CliError::usage(format!(
                "{}: this kernel has no NBD driver (no \"nbd\" netlink family, no device); load it with `modprobe nbd`",
                device.display()
            ))),
            Err(e) => Err(refused(e.to_string())),
        }
    }

    /// Disconnects: the kernel sends NBD_CMD_DISC and lets go of the socket.
    pub fn disconnect(self) -> Result<()> {
        match self {
            KernelDevice::Netlink { mut netlink, index } => netlink
                .disconnect(index)
                .map_err(|e| CliError::Internal(format!("nbd{index} disconnect: {e}"))),
            KernelDevice::Ioctl(device) => device
                .disconnect()
                .map_err(|e| CliError::Internal(format!("NBD disconnect: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(index_of(Path::new("/dev/nbd0")).unwrap(), 0);
        assert_eq!(index_of(Path::new("/dev/nbd15")).unwrap(), 15);
        assert!(index_of(Path::new("/dev/sda")).is_err());
        assert!(index_of(Path::new("/dev/nbdx")).is_err());
    }
}
