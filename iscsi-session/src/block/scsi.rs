//! Running SCSI commands against one logical unit, and the queries every
//! user of a LUN needs, written once over any executor.

use std::future::Future;

use bytes::Bytes;
use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::vpd::{
    BlockLimits, DeviceIdentification, LogicalBlockProvisioning, SupportedVpdPages,
    UnitSerialNumber,
};
use iscsi_proto::scsi::{
    self, Cdb, LuIdentity, ReadCapacity10, ReadCapacity16, ReportLuns, SelectReport,
    StandardInquiry,
};

use super::geometry::Geometry;
use crate::core::command::{Command, CommandOutcome, Direction, ReadData};
use crate::core::error::{Error, PathContext};

/// The error type of an executor: a session's [`Error`], or one that wraps
/// it (a multipath volume adds "no path left").
pub trait BlockError: std::error::Error + From<Error> + Send + Sync + 'static {
    /// The session error underneath, when there is one.
    fn session_error(&self) -> Option<&Error>;
}

impl BlockError for Error {
    fn session_error(&self) -> Option<&Error> {
        Some(self)
    }
}

/// Something that runs SCSI commands against one logical unit.
pub trait ScsiExecutor: Send + Sync {
    /// What a failed command returns.
    type Error: BlockError;

    /// The LUN to address commands to (an executor over several paths may
    /// readdress them per path).
    fn lun(&self) -> Lun;

    /// Where errors the block layer itself finds (bad answers) happened.
    fn context(&self) -> PathContext;

    /// Runs a command until it completes with GOOD status (or a CHECK
    /// CONDITION reporting success). Any other status is an
    /// [`Error::Scsi`] (or [`Error::RetriesExhausted`]) with its sense data.
    fn execute(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<CommandOutcome, Self::Error>> + Send;

    /// An error about an answer that makes no sense.
    fn bad(&self, reason: impl Into<String>) -> Self::Error {
        Error::BadResponse {
            ctx: self.context(),
            reason: reason.into(),
        }
        .into()
    }

    /// Runs a command that reads up to `len` bytes.
    fn read_command(
        &self,
        cdb: Cdb,
        len: u32,
    ) -> impl Future<Output = Result<ReadData, Self::Error>> + Send {
        let command = Command::new(self.lun(), cdb, Direction::Read { expected_len: len });
        async move { Ok(self.execute(command).await?.data) }
    }

    /// TEST UNIT READY.
    fn test_unit_ready(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let command = Command::new(self.lun(), Cdb::test_unit_ready(), Direction::None);
        async move {
            self.execute(command).await?;
            Ok(())
        }
    }

    /// Standard INQUIRY data.
    fn inquiry(&self) -> impl Future<Output = Result<StandardInquiry, Self::Error>> + Send {
        async move {
            let data = self.read_command(Cdb::inquiry(255), 255).await?.to_bytes();
            StandardInquiry::parse(&data).map_err(|e| self.bad(format!("INQUIRY: {e}")))
        }
    }

    /// A VPD page, whole (asked again with a larger allocation when needed).
    fn vpd(&self, page: u8) -> impl Future<Output = Result<Bytes, Self::Error>> + Send {
        async move {
            let mut alloc: u16 = 1024;
            loop {
                let data = self
                    .read_command(Cdb::inquiry_vpd(page, alloc), u32::from(alloc))
                    .await?
                    .to_bytes();
                if data.len() < 4 {
                    return Err(self.bad(format!("VPD page {page:#04x}: {} bytes", data.len())));
                }
                let full = 4 + usize::from(u16::from_be_bytes([data[2], data[3]]));
                if full <= data.len() || alloc == u16::MAX {
                    return Ok(data);
                }
                alloc = u16::try_from(full).unwrap_or(u16::MAX);
            }
        }
    }

    /// VPD page 00h.
    fn supported_vpd_pages(
        &self,
    ) -> impl Future<Output = Result<SupportedVpdPages, Self::Error>> + Send {
        async move {
            let data = self.vpd(0x00).await?;
            SupportedVpdPages::parse(&data).map_err(|e| self.bad(format!("VPD 00h: {e}")))
        }
    }

    /// VPD page 80h.
    fn unit_serial_number(
        &self,
    ) -> impl Future<Output = Result<UnitSerialNumber, Self::Error>> + Send {
        async move {
            let data = self.vpd(0x80).await?;
            UnitSerialNumber::parse(&data).map_err(|e| self.bad(format!("VPD 80h: {e}")))
        }
    }

    /// VPD page 83h.
    fn device_identification(
        &self,
    ) -> impl Future<Output = Result<DeviceIdentification, Self::Error>> + Send {
        async move {
            let data = self.vpd(0x83).await?;
            DeviceIdentification::parse(&data).map_err(|e| self.bad(format!("VPD 83h: {e}")))
        }
    }

    /// The LU's identity for multipath: its best VPD 83h designator, else
    /// its unit serial number. Only a LU that has no usable 83h designator
    /// (the page absent, refused as unsupported, or without one) falls back
    /// to the serial: a page that exists and fails to read is an error, so a
    /// transient failure never reads as a different LU.
    fn lu_identity(&self) -> impl Future<Output = Result<LuIdentity, Self::Error>> + Send {
        async move {
            let pages = match self.supported_vpd_pages().await {
                Ok(pages) => Some(pages),
                Err(e) if refused_as_unsupported(&e) => None,
                Err(e) => return Err(e),
            };
            let listed = |page: u8| pages.as_ref().is_none_or(|p| p.supports(page));
            if listed(0x83) {
                match self.device_identification().await {
                    Ok(page) => {
                        if let Some(identity) = page.lu_identity() {
                            return Ok(identity);
                        }
                    }
                    Err(e) if pages.is_none() && refused_as_unsupported(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            if !listed(0x80) {
                return Err(self.bad("the LU has neither a VPD 83h designator nor VPD page 80h"));
            }
            let serial = self.unit_serial_number().await?;
            LuIdentity::from_unit_serial(&serial).ok_or_else(|| {
                self.bad("the LU has neither a VPD 83h designator nor a unit serial number")
            })
        }
    }

    /// READ CAPACITY(16), falling back to (10) for targets without it.
    fn read_capacity(&self) -> impl Future<Output = Result<ReadCapacity16, Self::Error>> + Send {
        async move {
            let rc16 = self
                .read_command(
                    Cdb::read_capacity16(scsi::READ_CAPACITY_16_ALLOC_LEN),
                    scsi::READ_CAPACITY_16_ALLOC_LEN,
                )
                .await;
            match rc16 {
                Ok(data) => ReadCapacity16::parse(&data.to_bytes())
                    .map_err(|e| self.bad(format!("READ CAPACITY(16): {e}"))),
                Err(e) if refused_as_unsupported(&e) => {
                    let data = self
                        .read_command(Cdb::read_capacity10(), 8)
                        .await?
                        .to_bytes();
                    let rc10 = ReadCapacity10::parse(&data)
                        .map_err(|e| self.bad(format!("READ CAPACITY(10): {e}")))?;
                    let blocks = rc10
                        .block_count()
                        .ok_or_else(|| self.bad("READ CAPACITY(10) asks for (16), which failed"))?;
                    Ok(ReadCapacity16 {
                        last_lba: blocks - 1,
                        block_length: rc10.block_length,
                        protection_type: 0,
                        protection_enabled: false,
                        protection_interval_exponent: 0,
                        logical_per_physical_exponent: 0,
                        lbpme: false,
                        lbprz: false,
                        lowest_aligned_lba: 0,
                    })
                }
                Err(e) => Err(e),
            }
        }
    }

    /// REPORT LUNS (sent to LUN 0 as SPC asks; the target answers for every LUN).
    fn report_luns(&self) -> impl Future<Output = Result<Vec<Lun>, Self::Error>> + Send {
        async move {
            let mut alloc = 4096u32;
            loop {
                let command = Command::new(
                    Lun::default(),
                    Cdb::report_luns(SelectReport::Standard, alloc),
                    Direction::Read {
                        expected_len: alloc,
                    },
                );
                let data = self.execute(command).await?.data.to_bytes();
                let report =
                    ReportLuns::parse(&data).map_err(|e| self.bad(format!("REPORT LUNS: {e}")))?;
                let needed = report.required_allocation_length();
                if !report.is_truncated()
                    || needed > u64::from(u32::MAX)
                    || needed <= u64::from(alloc)
                {
                    return Ok(report.luns);
                }
                alloc = needed as u32;
            }
        }
    }

    /// Capacity, block sizes, provisioning and limits. The VPD pages are
    /// optional: a target without them just offers less.
    fn probe_geometry(&self) -> impl Future<Output = Result<Geometry, Self::Error>> + Send {
        async move {
            let cap = self.read_capacity().await?;
            if !(512..=1 << 20).contains(&cap.block_length) || !cap.block_length.is_power_of_two() {
                return Err(self.bad(format!("block length {} is not usable", cap.block_length)));
            }
            let mut g = Geometry::from_capacity(&cap);
            let pages = self.supported_vpd_pages().await.ok();
            let has = |p: u8| pages.as_ref().is_some_and(|s| s.supports(p));
            if has(0xb0)
                && let Ok(data) = self.vpd(0xb0).await
                && let Ok(limits) = BlockLimits::parse(&data)
            {
                g.apply_block_limits(&limits);
            }
            if has(0xb2)
                && let Ok(data) = self.vpd(0xb2).await
                && let Ok(lbp) = LogicalBlockProvisioning::parse(&data)
            {
                g.apply_provisioning(&lbp);
            }
            Ok(g)
        }
    }
}

/// ILLEGAL REQUEST: the target does not support what was asked (a VPD page,
/// READ CAPACITY(16)); anything else (a lost connection, a timeout) says
/// nothing about what the LU supports.
fn refused_as_unsupported<E: BlockError>(e: &E) -> bool {
    e.session_error().is_some_and(Error::is_illegal_request)
}
