//! The NBD driver's ioctl interface (linux/nbd.h), for kernels whose NBD
//! driver has no netlink family. This is the only unsafe code of the tool:
//! ioctl(2) has no safe wrapper. Every call here passes an integer by value
//! (never a pointer, nothing the kernel keeps) on a descriptor this module
//! owns, so memory safety does not rest on the kernel's side of the call.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::thread::JoinHandle;

use libc::c_ulong;

/// `_IO(0xab, n)`: the NBD ioctls carry no size.
const fn nbd_io(n: c_ulong) -> c_ulong {
    (0xab << 8) | n
}
const NBD_SET_SOCK: c_ulong = nbd_io(0);
const NBD_SET_BLKSIZE: c_ulong = nbd_io(1);
const NBD_DO_IT: c_ulong = nbd_io(3);
const NBD_CLEAR_SOCK: c_ulong = nbd_io(4);
const NBD_SET_SIZE_BLOCKS: c_ulong = nbd_io(7);
const NBD_DISCONNECT: c_ulong = nbd_io(8);
const NBD_SET_TIMEOUT: c_ulong = nbd_io(9);
const NBD_SET_FLAGS: c_ulong = nbd_io(10);

fn nbd_ioctl(fd: RawFd, request: c_ulong, arg: c_ulong) -> io::Result<()> {
    // SAFETY: `fd` is an open descriptor of an NBD device we hold; the NBD
    // ioctls used here read `arg` as an integer and write nothing back.
    let r = unsafe { libc::ioctl(fd, request as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A device driven through ioctls: NBD_DO_IT blocks a thread for as long
/// as the device is connected.
#[derive(Debug)]
pub struct IoctlDevice {
    device: File,
    doing_it: Option<JoinHandle<io::Result<()>>>,
}

impl IoctlDevice {
    /// Configures `path` to serve through `socket` and starts it.
    pub fn connect(
        path: &Path,
        size: u64,
        block_size: u32,
        server_flags: u16,
        socket: RawFd,
        timeout_secs: u64,
    ) -> io::Result<IoctlDevice> {
        let device = OpenOptions::new().read(true).write(true).open(path)?;
        let fd = device.as_raw_fd();
        nbd_ioctl(fd, NBD_SET_BLKSIZE, c_ulong::from(block_size))?;
        nbd_ioctl(fd, NBD_SET_SIZE_BLOCKS, size / u64::from(block_size))?;
        nbd_ioctl(fd, NBD_SET_FLAGS, c_ulong::from(server_flags))?;
        nbd_ioctl(fd, NBD_SET_TIMEOUT, timeout_secs)?;
        nbd_ioctl(fd, NBD_SET_SOCK, socket as c_ulong)?;
        let worker = device.try_clone()?;
        let doing_it = std::thread::Builder::new()
            .name("nbd-do-it".into())
            .spawn(move || nbd_ioctl(worker.as_raw_fd(), NBD_DO_IT, 0))?;
        Ok(IoctlDevice {
            device,
            doing_it: Some(doing_it),
        })
    }

    /// Asks the driver to disconnect and waits for NBD_DO_IT to return.
    pub fn disconnect(mut self) -> io::Result<()> {
        let fd = self.device.as_raw_fd();
        nbd_ioctl(fd, NBD_DISCONNECT, 0)?;
        if let Some(t) = self.doing_it.take() {
            // NBD_DO_IT ends with an error once disconnected: expected.
            let _ = t.join();
        }
        nbd_ioctl(fd, NBD_CLEAR_SOCK, 0)
    }
}
