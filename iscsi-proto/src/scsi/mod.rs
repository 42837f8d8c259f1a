//! SCSI for an iSCSI initiator: CDB builders, response parsers, sense data,
//! status codes and the failure classification used for multipath.
//!
//! Field layouts follow SPC-4/SPC-5 (primary commands) and SBC-3/SBC-4 (block
//! commands). Every parser takes arbitrary bytes, never panics and never
//! allocates more than the input's size; data cut short by an allocation
//! length is parsed as far as the standard allows and flagged `truncated`,
//! while a missing required field is a [`ScsiError::Truncated`].
//!
//! - [`Cdb`] and its builders ([`cdb`]), the UNMAP parameter list ([`unmap`]).
//! - Parsers: [`StandardInquiry`], the VPD pages in [`vpd`], [`ReadCapacity10`],
//!   [`ReadCapacity16`], [`ReportLuns`], [`ModeParameters`] and [`CachingPage`].
//! - [`LuIdentity`]: the designator two paths must share to reach the same LU.
//! - [`Sense`], [`ScsiStatus`], and [`classify()`] for failed commands.

pub mod asc;
pub mod caching_page;
pub mod cdb;
pub mod classify;
pub mod error;
mod field;
pub mod inquiry;
pub mod lu_identity;
pub mod mode_sense;
pub mod opcode;
pub mod peripheral;
pub mod read_capacity;
pub mod report_luns;
pub mod sense;
pub mod status;
pub mod unmap;
pub mod vpd;

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod tgtd_vectors;

pub use asc::{AscAscq, asc_ascq, asc_ascq_description};
pub use caching_page::{CACHING_PAGE, CachingPage};
pub use cdb::{
    Cdb, INLINE_CDB_LEN, MAX_CDB_LEN, ModeSenseRequest, PageControl, SelectReport, WriteSameFlags,
};
pub use classify::{CommandFailure, FailureClass, TransportFailure, classify};
pub use error::ScsiError;
pub use field::hex_string;
pub use inquiry::{STANDARD_INQUIRY_ALLOC_LEN, StandardInquiry, Tpgs};
pub use lu_identity::{LuIdentity, LuIdentityKind};
pub use mode_sense::{BlockDescriptor, ModePage, ModeParameters, ModeSenseForm};
pub use peripheral::{DeviceType, PeripheralQualifier};
pub use read_capacity::{READ_CAPACITY_16_ALLOC_LEN, ReadCapacity10, ReadCapacity16};
pub use report_luns::{Lun, ReportLuns};
pub use sense::{Sense, SenseDescriptor, SenseFormat, SenseKey, SenseKeySpecific};
pub use status::ScsiStatus;
pub use unmap::{MAX_UNMAP_DESCRIPTORS_PER_LIST, UnmapDescriptor, UnmapParameterList};
