//! The block API, over anything that runs SCSI commands against one logical
//! unit: a LUN of one session ([`SessionLun`]), or a multipath volume in
//! iscsi-multipath. Code written against [`BlockDevice`] (the `riscsi`
//! tool's copy and bench, the NBD server) runs unchanged over either.
//!
//! Two traits: [`ScsiExecutor`] runs one command to a GOOD status (its
//! implementation decides about retries and paths) and provides the SCSI
//! queries on top of it (INQUIRY, VPD pages, READ CAPACITY, the LU
//! identity); [`BlockDevice`] adds the geometry and provides block I/O
//! (read, write with FUA, flush, unmap, write zeroes).

mod device;
mod geometry;
mod scsi;
#[cfg(feature = "runtime")]
mod session_lun;

pub use device::BlockDevice;
pub use geometry::Geometry;
pub use scsi::{BlockError, ScsiExecutor};
#[cfg(feature = "runtime")]
pub use session_lun::{SessionLun, SessionScsi};
