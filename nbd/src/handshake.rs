//! The fixed newstyle handshake and option haggling: EXPORT_NAME, GO, INFO,
//! LIST, ABORT, STRUCTURED_REPLY; STARTTLS and every unknown option are
//! refused with their NBD_REP_ERR_* and the negotiation goes on.

use std::io;

use bytes::{BufMut, BytesMut};
use iscsi_session::BlockDevice;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use crate::export::Export;
use crate::proto::*;

/// Option data we take; larger options are refused (NBD_REP_ERR_TOO_BIG).
const MAX_OPTION: u32 = 64 * 1024;
/// Larger than this is not a client to argue with: the connection ends.
const MAX_DRAINED_OPTION: u32 = 1 << 20;
/// Options one client may send before it is dropped.
const MAX_OPTIONS: usize = 256;

/// How a handshake ended.
#[derive(Debug)]
pub enum Negotiated {
    /// Into transmission.
    Transmission {
        /// Structured replies were agreed.
        structured: bool,
    },
    /// The client aborted or disconnected after options (LIST, INFO...).
    Ended,
}

/// A client that broke the handshake.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// What the client sent makes no sense.
    #[error("{0}")]
    Protocol(String),
}

/// Runs the server side of the handshake on `stream`.
pub async fn negotiate<S, B>(
    stream: &mut S,
    export: &Export<B>,
) -> Result<Negotiated, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: BlockDevice,
{
    let mut hello = BytesMut::with_capacity(18);
    hello.put_u64(NBDMAGIC);
    hello.put_u64(IHAVEOPT);
    hello.put_u16(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    stream.write_all(&hello).await?;
    let client_flags = stream.read_u32().await?;
    if client_flags & !(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES) != 0 {
        return Err(HandshakeError::Protocol(format!(
            "unknown client flags {client_flags:#x}"
        )));
    }
    let fixed = client_flags & FLAG_C_FIXED_NEWSTYLE != 0;
    let no_zeroes = client_flags & FLAG_C_NO_ZEROES != 0;
    let mut structured = false;
    for _ in 0..MAX_OPTIONS {
        if stream.read_u64().await? != IHAVEOPT {
            return Err(HandshakeError::Protocol("option without IHAVEOPT".into()));
        }
        let option = stream.read_u32().await?;
        let length = stream.read_u32().await?;
        if length > MAX_OPTION {
            if length > MAX_DRAINED_OPTION || !fixed {
                return Err(HandshakeError::Protocol(format!(
                    "option {option} with {length} bytes of data"
                )));
            }
            drain(stream, length).await?;
            reply(stream, option, REP_ERR_TOO_BIG, b"option data too large").await?;
            continue;
        }
        let mut data = vec![0u8; length as usize];
        stream.read_exact(&mut data).await?;
        if !fixed && option != OPT_EXPORT_NAME {
            return Err(HandshakeError::Protocol(format!(
                "option {option} from a client without fixed newstyle"
            )));
        }
        debug!(option, length, "NBD option");
        match option {
            OPT_EXPORT_NAME => {
                if !export.matches(&data) {
                    // This option cannot fail with an error reply.
                    return Err(HandshakeError::Protocol(format!(
                        "no export named {:?}",
                        String::from_utf8_lossy(&data)
                    )));
                }
                let mut out = BytesMut::with_capacity(10 + 124);
                out.put_u64(export.size());
                out.put_u16(export.transmission_flags(structured));
                if !no_zeroes {
                    out.put_bytes(0, 124);
                }
                stream.write_all(&out).await?;
                return Ok(Negotiated::Transmission { structured });
            }
            OPT_ABORT => {
                // The client may already be gone: that is fine.
                let _ = reply(stream, option, REP_ACK, &[]).await;
                return Ok(Negotiated::Ended);
            }
            OPT_LIST if !data.is_empty() => {
                reply(stream, option, REP_ERR_INVALID, b"LIST takes no data").await?;
            }
            OPT_LIST => {
                let name = export.config.name.as_bytes();
                let mut server = BytesMut::new();
                server.put_u32(name.len() as u32);
                server.put_slice(name);
                server.put_slice(export.config.description.as_bytes());
                reply(stream, option, REP_SERVER, &server).await?;
                reply(stream, option, REP_ACK, &[]).await?;
            }
            OPT_STARTTLS => {
                reply(
                    stream,
                    option,
                    REP_ERR_POLICY,
                    b"TLS is not offered: serve on a unix socket or loopback",
                )
                .await?;
            }
            OPT_STRUCTURED_REPLY if !data.is_empty() => {
                reply(
                    stream,
                    option,
                    REP_ERR_INVALID,
                    b"STRUCTURED_REPLY takes no data",
                )
                .await?;
            }
            OPT_STRUCTURED_REPLY => {
                structured = true;
                reply(stream, option, REP_ACK, &[]).await?;
            }
            OPT_INFO | OPT_GO => {
                let Some((name, requests)) = parse_info(&data) else {
                    reply(
                        stream,
                        option,
                        REP_ERR_INVALID,
                        b"malformed INFO/GO request",
                    )
                    .await?;
                    continue;
                };
                if !export.matches(name) {
                    reply(stream, option, REP_ERR_UNKNOWN, b"no such export").await?;
                    continue;
                }
                send_info(stream, option, export, &requests, structured).await?;
                reply(stream, option, REP_ACK, &[]).await?;
                if option == OPT_GO {
                    return Ok(Negotiated::Transmission { structured });
                }
            }
            _ => {
                reply(stream, option, REP_ERR_UNSUP, b"option not supported").await?;
            }
        }
    }
    Err(HandshakeError::Protocol(format!(
        "more than {MAX_OPTIONS} options"
    )))
}

/// INFO/GO data: the export name and the information types asked for.
fn parse_info(data: &[u8]) -> Option<(&[u8], Vec<u16>)> {
    let name_len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let name = data.get(4..4usize.checked_add(name_len)?)?;
    let rest = &data[4 + name_len..];
    let count = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let list = rest.get(2..)?;
    if list.len() != count * 2 {
        return None;
    }
    let requests = list
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    Some((name, requests))
}

/// NBD_REP_INFO replies: the export always, its name and description when
/// asked for, and its block sizes always (servers may volunteer them; our
/// requests must be block-aligned, so a client should know).
async fn send_info<S, B>(
    stream: &mut S,
    option: u32,
    export: &Export<B>,
    requests: &[u16],
    structured: bool,
) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
    B: BlockDevice,
{
    let mut info = BytesMut::new();
    info.put_u16(INFO_EXPORT);
    info.put_u64(export.size());
    info.put_u16(export.transmission_flags(structured));
    reply(stream, option, REP_INFO, &info).await?;
    if requests.contains(&INFO_NAME) {
        let mut info = BytesMut::new();
        info.put_u16(INFO_NAME);
        info.put_slice(export.config.name.as_bytes());
        reply(stream, option, REP_INFO, &info).await?;
    }
    if requests.contains(&INFO_DESCRIPTION) && !export.config.description.is_empty() {
        let mut info = BytesMut::new();
        info.put_u16(INFO_DESCRIPTION);
        info.put_slice(export.config.description.as_bytes());
        reply(stream, option, REP_INFO, &info).await?;
    }
    let (min, preferred, max) = export.block_sizes();
    let mut info = BytesMut::new();
    info.put_u16(INFO_BLOCK_SIZE);
    info.put_u32(min);
    info.put_u32(preferred);
    info.put_u32(max);
    reply(stream, option, REP_INFO, &info).await
}

async fn reply<S: AsyncWrite + Unpin>(
    stream: &mut S,
    option: u32,
    kind: u32,
    data: &[u8],
) -> io::Result<()> {
    let mut out = BytesMut::with_capacity(20 + data.len());
    out.put_u64(REPLY_MAGIC);
    out.put_u32(option);
    out.put_u32(kind);
    out.put_u32(data.len() as u32);
    out.put_slice(data);
    stream.write_all(&out).await
}

async fn drain<S: AsyncRead + Unpin>(stream: &mut S, mut left: u32) -> io::Result<()> {
    let mut scratch = [0u8; 8192];
    while left > 0 {
        let n = (left as usize).min(scratch.len());
        stream.read_exact(&mut scratch[..n]).await?;
        left -= n as u32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_requests_parse_strictly() {
        let mut d = Vec::new();
        d.extend_from_slice(&3u32.to_be_bytes());
        d.extend_from_slice(b"vol");
        d.extend_from_slice(&2u16.to_be_bytes());
        d.extend_from_slice(&INFO_NAME.to_be_bytes());
        d.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
        let (name, req) = parse_info(&d).unwrap();
        assert_eq!((name, req), (&b"vol"[..], vec![INFO_NAME, INFO_BLOCK_SIZE]));
        assert!(parse_info(&d[..d.len() - 1]).is_none());
        let mut long = d.clone();
        long[3] = 200;
        assert!(parse_info(&long).is_none());
        assert!(parse_info(&[0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
