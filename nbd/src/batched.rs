//! READs and WRITEs that map to one SCSI command each (all but the huge
//! ones): submitted to the block device in a batch per burst of requests,
//! their outcomes drained from one completion queue, instead of a future
//! each. What each one needs for its reply waits here, keyed by the tag the
//! command carries.

use bytes::Bytes;
use iscsi_session::{BlockDevice, Command, Completion};

use crate::export::Export;
use crate::handler::{Answer, Served, errno_of, transfer_limit};
use crate::proto::{CMD_FLAG_FUA, CMD_READ, CMD_WRITE, Errno};
use crate::request::Request;

/// A request whose command is with the device.
#[derive(Debug)]
struct Waiting {
    handle: u64,
    offset: u64,
    length: u32,
    is_read: bool,
    /// Request data it holds (see `MAX_HELD_BYTES`).
    cost: u64,
}

/// The requests in flight through the batched path, in slots reused by tag.
#[derive(Debug, Default)]
pub struct Batched {
    slots: Vec<Option<Waiting>>,
    free: Vec<usize>,
    len: usize,
}

impl Batched {
    /// Requests waiting for their command.
    pub fn len(&self) -> usize {
        self.len
    }

    /// None waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The command for a checked READ or WRITE when one command serves it,
    /// with its tag, the request kept for the reply; else the request back.
    pub fn take<B: BlockDevice>(
        &mut self,
        export: &Export<B>,
        request: Request,
        cost: u64,
    ) -> Result<(u64, Command), Request> {
        let Some(command) = single_command(export, &request) else {
            return Err(request);
        };
        let waiting = Waiting {
            handle: request.handle,
            offset: request.offset,
            length: request.length,
            is_read: request.command == CMD_READ,
            cost,
        };
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(waiting);
                i
            }
            None => {
                self.slots.push(Some(waiting));
                self.slots.len() - 1
            }
        };
        self.len += 1;
        Ok((slot as u64, command))
    }

    /// The reply for a completion and the data its request held; `None` for
    /// a tag that is not waiting (a device bug: nothing to answer).
    pub fn finish<E: iscsi_session::BlockError>(
        &mut self,
        done: Completion<E>,
    ) -> Option<(Served, u64)> {
        let slot = usize::try_from(done.tag).ok()?;
        let waiting = self.slots.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        let answer = match done.result {
            Ok(outcome) if waiting.is_read => {
                if outcome.data.len() == waiting.length as usize {
                    Answer::Data(outcome.data.into_segments())
                } else {
                    let message = format!(
                        "read of {} bytes at offset {} returned {}",
                        waiting.length,
                        waiting.offset,
                        outcome.data.len()
                    );
                    Answer::Error(Errno::Io, message)
                }
            }
            Ok(_) => Answer::Done,
            Err(e) => Answer::Error(errno_of(&e, !waiting.is_read), e.to_string()),
        };
        let served = Served {
            handle: waiting.handle,
            offset: waiting.offset,
            is_read: waiting.is_read,
            answer,
        };
        Some((served, waiting.cost))
    }
}

/// The one command a checked READ or WRITE maps to, when it fits one.
fn single_command<B: BlockDevice>(export: &Export<B>, req: &Request) -> Option<Command> {
    let g = export.device.geometry();
    let blocks = req.length / g.block_size;
    if blocks == 0 || blocks > transfer_limit(&g) {
        return None;
    }
    let lba = req.offset / u64::from(g.block_size);
    match req.command {
        CMD_READ => Some(export.device.read_command_at(lba, blocks)),
        CMD_WRITE => {
            let data: Bytes = req.data.clone();
            let fua = req.flags & CMD_FLAG_FUA != 0;
            export.device.write_command_at(lba, data, fua).ok()
        }
        _ => None,
    }
}
