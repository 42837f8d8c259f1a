//! The transmission phase of one connection. One task does it all: it
//! decodes requests from a receive buffer, hands the READs and WRITEs of
//! each burst to the block device as one batch (the `batched` module),
//! runs the other requests as futures polled by this task, and writes the
//! replies that are ready, batched into one vectored write.
//!
//! What one connection holds is bounded: [`MAX_IN_FLIGHT`] requests and
//! [`MAX_HELD_BYTES`] of their data (write payloads until written, read
//! data until sent). A client that sends reads and never reads the replies
//! stops being read from once the bound is reached, whatever it sends.

use std::io;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use iscsi_session::{BlockDevice, Completion, CompletionQueue};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use tracing::debug;

use crate::batched::Batched;
use crate::export::{Export, MAX_BLOCK};
use crate::handler::{Answer, Served, check, serve};
use crate::proto::{CMD_DISC, CMD_READ, CMD_WRITE, Errno};
use crate::reply::ReplyQueue;
use crate::request::{Decoded, Request, RequestDecoder};

/// Requests one connection has in flight at most; past it, reading stops
/// until some complete, so a client cannot make us hold unbounded work.
pub const MAX_IN_FLIGHT: usize = 128;
/// Request data one connection holds at most: payloads of writes received
/// and not yet done, data of reads started and not yet sent. A request that
/// would pass it waits (and reading stops) until enough is released; with
/// nothing held, one request of any size up to [`MAX_BLOCK`] goes.
/// Without it, 128 reads of 32 MiB from a client that never reads its
/// replies held 4 GiB.
pub const MAX_HELD_BYTES: u64 = 64 << 20;
/// Room kept free in the receive buffer before each read.
const READ_ROOM: usize = 256 * 1024;

/// Serves requests until the client disconnects (NBD_CMD_DISC or EOF),
/// breaks the framing (an error, once what it sent before is answered) or
/// `shutdown` turns true; in-flight requests are always answered first.
pub async fn transmit<S, B>(
    stream: &mut S,
    export: Arc<Export<B>>,
    structured: bool,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: BlockDevice,
{
    let mut buf = BytesMut::with_capacity(READ_ROOM);
    let mut decoder = RequestDecoder::new(MAX_BLOCK as usize);
    let mut in_flight = FuturesUnordered::new();
    // READs and WRITEs of one command each: batched, their outcomes drained.
    let completions = CompletionQueue::<B::Error>::new();
    let sink = completions.sink();
    let mut batched = Batched::default();
    let mut batch = Vec::new();
    let mut done: Vec<Completion<B::Error>> = Vec::new();
    let mut replies = ReplyQueue::default();
    let mut closing = *shutdown.borrow();
    // Bytes of request data held (see MAX_HELD_BYTES), and those of the
    // replies queued, released once the queue is written.
    let mut held: u64 = 0;
    let mut releasing: u64 = 0;
    // A request decoded while the data held was at the bound.
    let mut waiting: Option<Request> = None;
    // Why the client is being dropped, when it broke the framing.
    let mut broken = None;
    loop {
        // Take what is buffered, while there is room.
        while !closing && in_flight.len() + batched.len() < MAX_IN_FLIGHT {
            let request = match waiting.take() {
                Some(r) => r,
                None => match decoder.decode(&mut buf) {
                    Ok(Some(Decoded::Request(r))) => r,
                    Ok(Some(Decoded::Oversized(r))) => {
                        let message = format!("{} bytes is more than {MAX_BLOCK}", r.length);
                        answer(&mut replies, &r, structured, Errno::Inval, &message);
                        continue;
                    }
                    Ok(None) => break,
                    // The stream is out of step: nothing after this point
                    // can be read, but what came before is answered first,
                    // as for NBD_CMD_DISC (dropping the futures would leave
                    // writes already sent to the LU unanswered).
                    Err(e) => {
                        debug!(error = %e, "dropping the client once what it sent before is answered");
                        broken = Some(e);
                        closing = true;
                        break;
                    }
                },
            };
            if request.command == CMD_DISC {
                closing = true;
                break;
            }
            match check(&export, &request, structured) {
                Ok(()) => {
                    let cost = held_bytes(&request);
                    if held > 0 && held + cost > MAX_HELD_BYTES {
                        waiting = Some(request);
                        break;
                    }
                    held += cost;
                    match batched.take(&export, request, cost) {
                        Ok(command) => batch.push(command),
                        Err(request) => in_flight
                            .push(serve(export.clone(), request).map(move |done| (done, cost))),
                    }
                }
                Err(Answer::Error(errno, message)) => {
                    answer(&mut replies, &request, structured, errno, &message)
                }
                Err(_) => {}
            }
        }
        if !batch.is_empty() {
            let commands = std::mem::take(&mut batch);
            export.device.submit_batch(commands, sink.clone()).await;
        }
        // Everything already done goes out in one write.
        while let Some(Some((done, cost))) = in_flight.next().now_or_never() {
            encode(&mut replies, done, structured);
            releasing += cost;
        }
        completions.try_drain(&mut done);
        releasing += finish_batched(&mut batched, &mut done, &mut replies, structured);
        if !replies.is_empty() {
            replies.flush(stream).await?;
            held -= std::mem::take(&mut releasing);
            continue;
        }
        if closing && in_flight.is_empty() && batched.is_empty() {
            return match broken {
                None => Ok(()),
                Some(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            };
        }
        let can_read =
            !closing && in_flight.len() + batched.len() < MAX_IN_FLIGHT && waiting.is_none();
        if can_read && buf.capacity() - buf.len() < READ_ROOM / 4 {
            buf.reserve(READ_ROOM);
        }
        tokio::select! {
            // Completions first: replies free room and the client waits on them.
            biased;
            _ = completions.drain(&mut done), if !batched.is_empty() => {
                releasing += finish_batched(&mut batched, &mut done, &mut replies, structured);
            }
            Some((done, cost)) = in_flight.next(), if !in_flight.is_empty() => {
                encode(&mut replies, done, structured);
                releasing += cost;
            }
            read = stream.read_buf(&mut buf), if can_read => match read {
                Ok(0) => closing = true,
                Ok(_) => {}
                Err(e) => return Err(e),
            },
            changed = shutdown.changed(), if !closing => {
                if changed.is_err() || *shutdown.borrow() {
                    closing = true;
                    if let Some(r) = waiting.take() {
                        refuse(&mut replies, &r, structured);
                    }
                    refuse_buffered(&mut decoder, &mut buf, &mut replies, structured);
                }
            }
        }
    }
}

/// Replies to the batched requests in `done` (emptied); the data they held.
fn finish_batched<E: iscsi_session::BlockError>(
    batched: &mut Batched,
    done: &mut Vec<Completion<E>>,
    replies: &mut ReplyQueue,
    structured: bool,
) -> u64 {
    let mut released = 0;
    for completion in done.drain(..) {
        if let Some((served, cost)) = batched.finish(completion) {
            encode(replies, served, structured);
            released += cost;
        }
    }
    released
}

/// The request data a request makes us hold: a write's payload (received
/// already), a read's data (to come); WRITE_ZEROES shares one zero buffer.
fn held_bytes(request: &Request) -> u64 {
    match request.command {
        CMD_READ | CMD_WRITE => u64::from(request.length),
        _ => 0,
    }
}

/// At shutdown: requests already received but not started get ESHUTDOWN.
fn refuse_buffered(
    decoder: &mut RequestDecoder,
    buf: &mut BytesMut,
    replies: &mut ReplyQueue,
    structured: bool,
) {
    while let Ok(Some(Decoded::Request(r) | Decoded::Oversized(r))) = decoder.decode(buf) {
        if r.command != CMD_DISC {
            refuse(replies, &r, structured);
        }
    }
}

fn refuse(replies: &mut ReplyQueue, req: &Request, structured: bool) {
    answer(
        replies,
        req,
        structured,
        Errno::Shutdown,
        "the server is shutting down",
    );
}

/// An error reply to `req`.
fn answer(replies: &mut ReplyQueue, req: &Request, structured: bool, errno: Errno, message: &str) {
    if structured {
        replies.structured_error(req.handle, errno, message);
    } else {
        replies.simple(req.handle, Some(errno), &[]);
    }
}

fn encode(replies: &mut ReplyQueue, done: Served, structured: bool) {
    match (done.answer, structured) {
        // A chunk must describe at least one byte: an empty read is just done.
        (Answer::Data(data), true) if data.is_empty() => replies.structured_done(done.handle),
        (Answer::Data(data), true) => replies.structured_data(done.handle, done.offset, &data),
        (Answer::Data(data), false) => replies.simple(done.handle, None, &data),
        (Answer::Done, true) if done.is_read => replies.structured_done(done.handle),
        (Answer::Done, _) => replies.simple(done.handle, None, &[]),
        (Answer::Error(errno, message), true) => {
            replies.structured_error(done.handle, errno, &message)
        }
        (Answer::Error(errno, _), false) => replies.simple(done.handle, Some(errno), &[]),
    }
}
