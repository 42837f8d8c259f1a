//! SCSI operations over a session: discovery of a LUN's geometry and the
//! block API (read, write with FUA, flush, unmap, write zeroes).
//!
//! Commands that fail with a same-path condition (UNIT ATTENTION, BUSY, TASK
//! SET FULL...) are retried here a few times, as the SCSI midlayer does; every
//! other failure goes back to the caller with its sense data.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::vpd::{
    BlockLimits, DeviceIdentification, LogicalBlockProvisioning, SupportedVpdPages,
    UnitSerialNumber,
};
use iscsi_proto::scsi::{
    self, Cdb, FailureClass, LuIdentity, ReadCapacity10, ReadCapacity16, ReportLuns, SelectReport,
    StandardInquiry, UnmapDescriptor, UnmapParameterList, WriteSameFlags,
};
use tracing::debug;

use crate::command::{Command, CommandOutcome, Direction, ReadData};
use crate::error::Error;
use crate::session::Session;

/// Same-path retries before a condition is returned to the caller.
const SAME_PATH_RETRIES: u32 = 5;

/// What a LUN looks like: size, block sizes, provisioning and transfer limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub block_size: u32,
    pub blocks: u64,
    pub physical_block_size: u64,
    /// Thin provisioning enabled (LBPME).
    pub thin_provisioned: bool,
    /// Unmapped blocks read back as zeroes (LBPRZ).
    pub unmapped_reads_zero: bool,
    /// UNMAP is supported (VPD B2 LBPU, B0 limits).
    pub unmap: bool,
    /// WRITE SAME(16) with UNMAP is supported (VPD B2 LBPWS).
    pub write_same_unmap: bool,
    /// Largest transfer in blocks the target takes (0 = no limit reported).
    pub max_transfer_blocks: u32,
    pub optimal_transfer_blocks: u32,
    /// Most blocks one UNMAP may name (0 = unknown).
    pub max_unmap_blocks: u32,
    pub max_unmap_descriptors: u32,
}

impl Geometry {
    pub fn size_bytes(&self) -> u64 {
        self.blocks.saturating_mul(u64::from(self.block_size))
    }
}

impl Session {
    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadResponse {
            ctx: self.context().clone(),
            reason: reason.into(),
        }
    }

    /// Runs a command and turns any non-GOOD status into [`Error::Scsi`],
    /// retrying same-path conditions a few times first.
    pub async fn execute_checked(&self, command: Command) -> Result<CommandOutcome, Error> {
        let mut attempt = 0;
        loop {
            let outcome = self.execute(command.clone()).await?;
            let sense = outcome
                .sense
                .as_deref()
                .and_then(|s| scsi::Sense::parse(s).ok());
            let failure = scsi::CommandFailure::Status {
                status: scsi::ScsiStatus::from_code(outcome.status),
                sense,
            };
            if failure.completed() {
                return Ok(outcome);
            }
            attempt += 1;
            if scsi::classify(&failure) == FailureClass::RetrySamePath
                && attempt <= SAME_PATH_RETRIES
            {
                debug!(
                    attempt,
                    status = outcome.status,
                    "retrying on the same path"
                );
                // BUSY and TASK SET FULL want a moment; a UNIT ATTENTION does not.
                if !matches!(
                    &failure,
                    scsi::CommandFailure::Status { sense: Some(_), .. }
                ) {
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                }
                continue;
            }
            return Err(Error::Scsi {
                ctx: self.context().clone(),
                lun: command.lun,
                itt: outcome.itt,
                opcode: command.opcode(),
                status: outcome.status,
                sense: outcome.sense,
            });
        }
    }

    async fn read_command(&self, lun: Lun, cdb: Cdb, len: u32) -> Result<ReadData, Error> {
        let outcome = self
            .execute_checked(Command::new(
                lun,
                cdb,
                Direction::Read { expected_len: len },
            ))
            .await?;
        Ok(outcome.data)
    }

    pub async fn test_unit_ready(&self, lun: Lun) -> Result<(), Error> {
        self.execute_checked(Command::new(lun, Cdb::test_unit_ready(), Direction::None))
            .await?;
        Ok(())
    }

    pub async fn inquiry(&self, lun: Lun) -> Result<StandardInquiry, Error> {
        let data = self
            .read_command(lun, Cdb::inquiry(255), 255)
            .await?
            .to_bytes();
        StandardInquiry::parse(&data).map_err(|e| self.bad(format!("INQUIRY: {e}")))
    }

    /// A VPD page, whole (re-asked with a larger allocation when needed).
    pub async fn vpd(&self, lun: Lun, page: u8) -> Result<Bytes, Error> {
        let mut alloc: u16 = 1024;
        loop {
            let data = self
                .read_command(lun, Cdb::inquiry_vpd(page, alloc), u32::from(alloc))
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

    pub async fn supported_vpd_pages(&self, lun: Lun) -> Result<SupportedVpdPages, Error> {
        let data = self.vpd(lun, 0x00).await?;
        SupportedVpdPages::parse(&data).map_err(|e| self.bad(format!("VPD 00h: {e}")))
    }

    pub async fn unit_serial_number(&self, lun: Lun) -> Result<UnitSerialNumber, Error> {
        let data = self.vpd(lun, 0x80).await?;
        UnitSerialNumber::parse(&data).map_err(|e| self.bad(format!("VPD 80h: {e}")))
    }

    pub async fn device_identification(&self, lun: Lun) -> Result<DeviceIdentification, Error> {
        let data = self.vpd(lun, 0x83).await?;
        DeviceIdentification::parse(&data).map_err(|e| self.bad(format!("VPD 83h: {e}")))
    }

    /// The LU's identity for multipath: the VPD 83h designator, else the unit
    /// serial number.
    pub async fn lu_identity(&self, lun: Lun) -> Result<LuIdentity, Error> {
        if let Ok(id) = self.device_identification(lun).await
            && let Some(identity) = id.lu_identity()
        {
            return Ok(identity);
        }
        let serial = self.unit_serial_number(lun).await?;
        LuIdentity::from_unit_serial(&serial)
            .ok_or_else(|| self.bad("LU has neither a VPD 83h designator nor a unit serial number"))
    }

    /// READ CAPACITY(16), falling back to (10) for targets without it.
    pub async fn read_capacity(&self, lun: Lun) -> Result<ReadCapacity16, Error> {
        let rc16 = self
            .read_command(
                lun,
                Cdb::read_capacity16(scsi::READ_CAPACITY_16_ALLOC_LEN),
                scsi::READ_CAPACITY_16_ALLOC_LEN,
            )
            .await;
        match rc16 {
            Ok(data) => ReadCapacity16::parse(&data.to_bytes())
                .map_err(|e| self.bad(format!("READ CAPACITY(16): {e}"))),
            Err(Error::Scsi { .. }) => {
                let data = self
                    .read_command(lun, Cdb::read_capacity10(), 8)
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

    pub async fn report_luns(&self) -> Result<Vec<Lun>, Error> {
        let mut alloc = 4096u32;
        loop {
            let data = self
                .read_command(
                    Lun::default(),
                    Cdb::report_luns(SelectReport::Standard, alloc),
                    alloc,
                )
                .await?
                .to_bytes();
            let report =
                ReportLuns::parse(&data).map_err(|e| self.bad(format!("REPORT LUNS: {e}")))?;
            let needed = report.required_allocation_length();
            if !report.is_truncated() || needed > u64::from(u32::MAX) || needed <= u64::from(alloc)
            {
                return Ok(report.luns);
            }
            alloc = needed as u32;
        }
    }

    /// Probes a LUN (waiting out UNIT ATTENTIONs) and returns a handle with its
    /// geometry.
    pub async fn open_lun(&self, number: u16) -> Result<LunHandle, Error> {
        let lun = Lun::from_number(number)
            .ok_or_else(|| self.bad(format!("LUN {number} cannot be addressed (above 16383)")))?;
        self.test_unit_ready(lun).await?;
        let geometry = self.geometry(lun).await?;
        Ok(LunHandle {
            session: self.clone(),
            lun,
            geometry,
        })
    }

    /// Capacity, block sizes, provisioning and limits of a LUN.
    pub async fn geometry(&self, lun: Lun) -> Result<Geometry, Error> {
        let cap = self.read_capacity(lun).await?;
        if !(512..=1 << 20).contains(&cap.block_length) || !cap.block_length.is_power_of_two() {
            return Err(self.bad(format!("block length {} is not usable", cap.block_length)));
        }
        let mut g = Geometry {
            block_size: cap.block_length,
            blocks: cap.block_count(),
            physical_block_size: cap.physical_block_size(),
            thin_provisioned: cap.lbpme,
            unmapped_reads_zero: cap.lbprz,
            unmap: false,
            write_same_unmap: false,
            max_transfer_blocks: 0,
            optimal_transfer_blocks: 0,
            max_unmap_blocks: 0,
            max_unmap_descriptors: 0,
        };
        // VPD pages are optional: a target without them just offers less.
        let pages = self.supported_vpd_pages(lun).await.ok();
        let has = |p: u8| pages.as_ref().is_some_and(|s| s.supports(p));
        if has(0xb0)
            && let Ok(data) = self.vpd(lun, 0xb0).await
            && let Ok(limits) = BlockLimits::parse(&data)
        {
            g.max_transfer_blocks = limits.max_transfer_len;
            g.optimal_transfer_blocks = limits.optimal_transfer_len;
            g.max_unmap_blocks = limits.max_unmap_lba_count.unwrap_or(0);
            g.max_unmap_descriptors = limits.max_unmap_descriptor_count.unwrap_or(0);
        }
        if has(0xb2)
            && let Ok(data) = self.vpd(lun, 0xb2).await
            && let Ok(lbp) = LogicalBlockProvisioning::parse(&data)
        {
            g.unmap = lbp.lbpu && g.max_unmap_blocks > 0 && g.max_unmap_descriptors > 0;
            g.write_same_unmap = lbp.lbpws;
        }
        Ok(g)
    }
}

/// One LUN of a session, with its geometry: the block API.
#[derive(Clone, Debug)]
pub struct LunHandle {
    session: Session,
    lun: Lun,
    geometry: Geometry,
}

impl LunHandle {
    pub fn session(&self) -> &Session {
        &self.session
    }

    pub fn lun(&self) -> Lun {
        self.lun
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Re-reads the capacity (after a capacity-changed UNIT ATTENTION).
    pub async fn refresh(&mut self) -> Result<(), Error> {
        self.geometry = self.session.geometry(self.lun).await?;
        Ok(())
    }

    fn check_range(&self, lba: u64, blocks: u64) -> Result<(), Error> {
        match lba.checked_add(blocks) {
            Some(end) if end <= self.geometry.blocks => Ok(()),
            _ => Err(self.session.bad(format!(
                "blocks {lba}..{} outside the {}-block LUN",
                lba.saturating_add(blocks),
                self.geometry.blocks
            ))),
        }
    }

    /// Reads `blocks` blocks at `lba`; the data stays in the Data-In slices.
    pub fn read_command(&self, lba: u64, blocks: u32) -> Command {
        let len = blocks.saturating_mul(self.geometry.block_size);
        Command::new(
            self.lun,
            Cdb::read(lba, blocks, false),
            Direction::Read { expected_len: len },
        )
    }

    /// The WRITE for `data` at `lba` (whole blocks), as a replayable command.
    pub fn write_command(&self, lba: u64, data: Bytes, fua: bool) -> Result<Command, Error> {
        let bs = self.geometry.block_size as usize;
        if data.len() % bs != 0 || data.len() / bs > u32::MAX as usize {
            return Err(self.session.bad(format!(
                "write of {} bytes is not whole {bs}-byte blocks",
                data.len()
            )));
        }
        let blocks = (data.len() / bs) as u32;
        Ok(Command::new(
            self.lun,
            Cdb::write(lba, blocks, fua),
            Direction::Write { data },
        ))
    }

    pub async fn read(&self, lba: u64, blocks: u32) -> Result<ReadData, Error> {
        self.check_range(lba, u64::from(blocks))?;
        let expected = blocks as usize * self.geometry.block_size as usize;
        let outcome = self
            .session
            .execute_checked(self.read_command(lba, blocks))
            .await?;
        if outcome.data.len() != expected {
            return Err(self.session.bad(format!(
                "read of {expected} bytes at block {lba} returned {}",
                outcome.data.len()
            )));
        }
        Ok(outcome.data)
    }

    /// Writes whole blocks at `lba`; with `fua` the data is on stable storage
    /// when this returns.
    pub async fn write(&self, lba: u64, data: Bytes, fua: bool) -> Result<(), Error> {
        let command = self.write_command(lba, data, fua)?;
        self.check_range(
            lba,
            u64::from(command.expected_transfer_len() / self.geometry.block_size),
        )?;
        self.session.execute_checked(command).await?;
        Ok(())
    }

    /// SYNCHRONIZE CACHE of the whole LUN.
    pub async fn flush(&self) -> Result<(), Error> {
        self.session
            .execute_checked(Command::new(
                self.lun,
                Cdb::synchronize_cache(0, 0),
                Direction::None,
            ))
            .await?;
        Ok(())
    }

    /// Deallocates block ranges with UNMAP, split to the target's limits.
    pub async fn unmap(&self, ranges: &[(u64, u32)]) -> Result<(), Error> {
        if !self.geometry.unmap {
            return Err(self.session.bad("the LUN does not support UNMAP"));
        }
        let max_blocks = self.geometry.max_unmap_blocks.max(1);
        let mut descriptors = Vec::new();
        for &(lba, blocks) in ranges {
            self.check_range(lba, u64::from(blocks))?;
            let mut at = lba;
            let mut left = blocks;
            while left > 0 {
                let n = left.min(max_blocks);
                descriptors.push(UnmapDescriptor { lba: at, blocks: n });
                at += u64::from(n);
                left -= n;
            }
        }
        let per_list = (self.geometry.max_unmap_descriptors as usize)
            .clamp(1, scsi::MAX_UNMAP_DESCRIPTORS_PER_LIST);
        for chunk in descriptors.chunks(per_list) {
            let list = UnmapParameterList::new(chunk, self.geometry.max_unmap_descriptors)
                .map_err(|e| self.session.bad(format!("UNMAP: {e}")))?;
            let command = Command::new(
                self.lun,
                list.cdb(),
                Direction::Write {
                    data: list.bytes().clone(),
                },
            );
            self.session.execute_checked(command).await?;
        }
        Ok(())
    }

    /// Zeroes blocks with WRITE SAME(16) (with UNMAP when `unmap` and the LUN
    /// reads unmapped blocks as zeroes, so the result is zeroes either way).
    pub async fn write_zeroes(&self, lba: u64, blocks: u32, unmap: bool) -> Result<(), Error> {
        self.check_range(lba, u64::from(blocks))?;
        if blocks == 0 {
            return Ok(());
        }
        let flags = WriteSameFlags {
            unmap: unmap && self.geometry.write_same_unmap && self.geometry.unmapped_reads_zero,
            ndob: false,
        };
        let zeroes = Bytes::from(BytesMut::zeroed(self.geometry.block_size as usize));
        let command = Command::new(
            self.lun,
            Cdb::write_same16(lba, blocks, flags),
            Direction::Write { data: zeroes },
        );
        self.session.execute_checked(command).await?;
        Ok(())
    }
}
