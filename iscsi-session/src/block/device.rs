//! Block I/O on a logical unit: the operations an NBD server or a copy
//! needs, each bounds-checked against the geometry and split to the
//! target's limits where SCSI asks for it.

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use iscsi_proto::scsi::{self, Cdb, UnmapDescriptor, UnmapParameterList, WriteSameFlags};

use super::geometry::Geometry;
use super::scsi::ScsiExecutor;
use crate::core::command::{Command, Direction, ReadData};
use crate::core::completion::CompletionSink;

/// A logical unit with a known geometry: read, write, flush, unmap, write
/// zeroes. Implementors provide [`BlockDevice::geometry`]; everything else
/// is written once here over [`ScsiExecutor::execute`].
pub trait BlockDevice: ScsiExecutor {
    /// Size, block sizes and limits, as last read.
    fn geometry(&self) -> Geometry;

    /// Runs many commands without a future each (the form an NBD server or
    /// a queue-depth benchmark wants): handed over in one go, and each one's
    /// outcome, checked as [`ScsiExecutor::execute`] checks it (retries,
    /// other paths), reaches `sink` under its tag from whichever task ends
    /// it. Waits only to hand them over. The commands are any this device
    /// takes, typically [`BlockDevice::read_command_at`] and
    /// [`BlockDevice::write_command_at`]; a read's data length is for the
    /// caller to check, as [`BlockDevice::read`] does.
    fn submit_batch(
        &self,
        commands: Vec<(u64, Command)>,
        sink: Arc<dyn CompletionSink<Self::Error>>,
    ) -> impl Future<Output = ()> + Send;

    /// Fails unless `lba..lba + blocks` lies within the LU.
    fn check_range(&self, lba: u64, blocks: u64) -> Result<(), Self::Error> {
        let total = self.geometry().blocks;
        match lba.checked_add(blocks) {
            Some(end) if end <= total => Ok(()),
            _ => Err(self.bad(format!(
                "blocks {lba}..{} outside the {total}-block LUN",
                lba.saturating_add(blocks),
            ))),
        }
    }

    /// The READ for `blocks` blocks at `lba`, as a replayable command.
    fn read_command_at(&self, lba: u64, blocks: u32) -> Command {
        let len = blocks.saturating_mul(self.geometry().block_size);
        Command::new(
            self.lun(),
            Cdb::read(lba, blocks, false),
            Direction::Read { expected_len: len },
        )
    }

    /// The WRITE for `data` at `lba` (whole blocks), as a replayable command.
    fn write_command_at(&self, lba: u64, data: Bytes, fua: bool) -> Result<Command, Self::Error> {
        let bs = self.geometry().block_size as usize;
        if !data.len().is_multiple_of(bs) || data.len() / bs > u32::MAX as usize {
            return Err(self.bad(format!(
                "write of {} bytes is not whole {bs}-byte blocks",
                data.len()
            )));
        }
        let blocks = (data.len() / bs) as u32;
        Ok(Command::new(
            self.lun(),
            Cdb::write(lba, blocks, fua),
            Direction::Write { data },
        ))
    }

    /// Reads `blocks` blocks at `lba`; the data stays in the Data-In slices.
    fn read(
        &self,
        lba: u64,
        blocks: u32,
    ) -> impl Future<Output = Result<ReadData, Self::Error>> + Send {
        async move {
            self.check_range(lba, u64::from(blocks))?;
            let expected = blocks as usize * self.geometry().block_size as usize;
            let outcome = self.execute(self.read_command_at(lba, blocks)).await?;
            if outcome.data.len() != expected {
                return Err(self.bad(format!(
                    "read of {expected} bytes at block {lba} returned {}",
                    outcome.data.len()
                )));
            }
            Ok(outcome.data)
        }
    }

    /// Writes whole blocks at `lba`; with `fua` the data is on stable
    /// storage when this returns.
    fn write(
        &self,
        lba: u64,
        data: Bytes,
        fua: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async move {
            let command = self.write_command_at(lba, data, fua)?;
            let blocks = command.expected_transfer_len() / self.geometry().block_size;
            self.check_range(lba, u64::from(blocks))?;
            self.execute(command).await?;
            Ok(())
        }
    }

    /// SYNCHRONIZE CACHE of the whole LU.
    fn flush(&self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let command = Command::new(self.lun(), Cdb::synchronize_cache(0, 0), Direction::None);
        async move {
            self.execute(command).await?;
            Ok(())
        }
    }

    /// Deallocates block ranges with UNMAP, split to the target's limits.
    fn unmap(&self, ranges: &[(u64, u32)]) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let lists = self.unmap_lists(ranges);
        async move {
            for list in lists? {
                let command = Command::new(
                    self.lun(),
                    list.cdb(),
                    Direction::Write {
                        data: list.bytes().clone(),
                    },
                );
                self.execute(command).await?;
            }
            Ok(())
        }
    }

    /// The UNMAP parameter lists covering `ranges`, within the LU's limits.
    fn unmap_lists(&self, ranges: &[(u64, u32)]) -> Result<Vec<UnmapParameterList>, Self::Error> {
        let g = self.geometry();
        if !g.unmap {
            return Err(self.bad("the LUN does not support UNMAP"));
        }
        let max_blocks = g.max_unmap_blocks.max(1);
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
        let per_list =
            (g.max_unmap_descriptors as usize).clamp(1, scsi::MAX_UNMAP_DESCRIPTORS_PER_LIST);
        descriptors
            .chunks(per_list)
            .map(|chunk| {
                UnmapParameterList::new(chunk, g.max_unmap_descriptors)
                    .map_err(|e| self.bad(format!("UNMAP: {e}")))
            })
            .collect()
    }

    /// Zeroes blocks with WRITE SAME(16) (with UNMAP when `unmap` and the LU
    /// reads unmapped blocks as zeroes, so the result is zeroes either way).
    fn write_zeroes(
        &self,
        lba: u64,
        blocks: u32,
        unmap: bool,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        async move {
            self.check_range(lba, u64::from(blocks))?;
            if blocks == 0 {
                return Ok(());
            }
            let g = self.geometry();
            let flags = WriteSameFlags {
                unmap: unmap && g.write_same_unmap && g.unmapped_reads_zero,
                ndob: false,
            };
            let zeroes = Bytes::from(BytesMut::zeroed(g.block_size as usize));
            let command = Command::new(
                self.lun(),
                Cdb::write_same16(lba, blocks, flags),
                Direction::Write { data: zeroes },
            );
            self.execute(command).await?;
            Ok(())
        }
    }
}
