//! The kernel NBD driver's generic netlink interface (linux/nbd-netlink.h),
//! as nbd-client uses it: resolve the "nbd" family, then NBD_CMD_CONNECT
//! with the device index, size, block size, flags and the socket's fd, and
//! NBD_CMD_DISCONNECT to end it. Messages are packed by hand: they are a
//! few fixed headers and type-length-value attributes.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

/// GENL_ID_CTRL and its CTRL_CMD_GETFAMILY / attributes.
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// nlmsghdr flags and types.
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;

/// linux/nbd-netlink.h.
const NBD_CMD_CONNECT: u8 = 1;
const NBD_CMD_DISCONNECT: u8 = 2;
const NBD_ATTR_INDEX: u16 = 1;
const NBD_ATTR_SIZE_BYTES: u16 = 2;
const NBD_ATTR_BLOCK_SIZE_BYTES: u16 = 3;
const NBD_ATTR_TIMEOUT: u16 = 4;
const NBD_ATTR_SERVER_FLAGS: u16 = 5;
const NBD_ATTR_SOCKETS: u16 = 7;
const NBD_SOCK_ITEM: u16 = 1;
const NBD_SOCK_FD: u16 = 1;

/// A generic netlink socket and the "nbd" family's id.
#[derive(Debug)]
pub struct NbdNetlink {
    socket: OwnedFd,
    family: u16,
    seq: u32,
}

/// Why netlink could not be used.
#[derive(Debug)]
pub enum NetlinkError {
    /// The kernel knows no "nbd" generic netlink family: no NBD driver
    /// (or one too old for netlink).
    NoFamily,
    /// The kernel refused a request.
    Refused(io::Error),
    /// The socket itself failed.
    Io(io::Error),
}

impl std::fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetlinkError::NoFamily => f.write_str("the kernel has no \"nbd\" netlink family"),
            NetlinkError::Refused(e) => write!(f, "the kernel refused: {e}"),
            NetlinkError::Io(e) => write!(f, "netlink: {e}"),
        }
    }
}

fn io_err(e: nix::Error) -> NetlinkError {
    NetlinkError::Io(io::Error::from(e))
}

/// A message under construction: nlmsghdr, genlmsghdr, attributes.
struct Message(Vec<u8>);

impl Message {
    fn new(family: u16, cmd: u8, seq: u32) -> Self {
        let mut m = Vec::with_capacity(128);
        m.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        m.extend_from_slice(&family.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        m.extend_from_slice(&[cmd, 1, 0, 0]); // genlmsghdr: cmd, version 1
        Message(m)
    }

    fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(payload);
        self.pad();
    }

    fn u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    fn u64(&mut self, kind: u16, v: u64) {
        self.attr(kind, &v.to_ne_bytes());
    }

    /// A nested attribute holding what `inner` adds.
    fn nested(&mut self, kind: u16, inner: impl FnOnce(&mut Message)) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        inner(self);
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.0.len() as u32;
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

/// The attributes of a generic netlink message body (after the headers).
fn attributes(mut body: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while body.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([body[0], body[1]]));
        let kind = u16::from_ne_bytes([body[2], body[3]]) & !NLA_F_NESTED;
        if len < 4 || len > body.len() {
            break;
        }
        out.push((kind, &body[4..len]));
        let aligned = len.div_ceil(4) * 4;
        body = &body[aligned.min(body.len())..];
    }
    out
}

impl NbdNetlink {
    /// Opens a generic netlink socket and finds the "nbd" family.
    pub fn open() -> Result<NbdNetlink, NetlinkError> {
        let socket = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkGeneric,
        )
        .map_err(io_err)?;
        bind(socket.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(io_err)?;
        let mut nl = NbdNetlink {
            socket,
            family: GENL_ID_CTRL,
            seq: 1,
        };
        let mut m = Message::new(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, nl.next_seq());
        m.attr(CTRL_ATTR_FAMILY_NAME, b"nbd\0");
        let reply = match nl.exchange(m.finish()) {
            Ok(reply) => reply,
            // ENOENT: no such family.
            Err(NetlinkError::Refused(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(NetlinkError::NoFamily);
            }
            Err(e) => return Err(e),
        };
        let family = reply
            .and_then(|body| {
                attributes(&body)
                    .into_iter()
                    .find(|(k, v)| *k == CTRL_ATTR_FAMILY_ID && v.len() >= 2)
                    .map(|(_, v)| u16::from_ne_bytes([v[0], v[1]]))
            })
            .ok_or(NetlinkError::NoFamily)?;
        nl.family = family;
        Ok(nl)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends a request; returns the body (after the genl header) of a data
    /// reply if one came, once the kernel's acknowledgement arrives.
    fn exchange(&mut self, request: Vec<u8>) -> Result<Option<Vec<u8>>, NetlinkError> {
        send(self.socket.as_raw_fd(), &request, MsgFlags::empty()).map_err(io_err)?;
        let mut data = None;
        let mut buf = vec![0u8; 16384];
        loop {
            let n = recv(self.socket.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(io_err)?;
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4")) as usize;
                let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2"));
                if len < 16 || at + len > n {
                    return Err(NetlinkError::Io(io::Error::other(
                        "truncated netlink reply",
                    )));
                }
                let msg = &buf[at..at + len];
                if kind == NLMSG_ERROR {
                    let code = i32::from_ne_bytes(msg[16..20].try_into().expect("4"));
                    if code == 0 {
                        return Ok(data);
                    }
                    return Err(NetlinkError::Refused(io::Error::from_raw_os_error(-code)));
                }
                // A data reply: skip nlmsghdr (16) and genlmsghdr (4).
                if len > 20 {
                    data = Some(msg[20..].to_vec());
                }
                at += len.div_ceil(4) * 4;
            }
        }
    }

    /// NBD_CMD_CONNECT: /dev/nbd`index` serves through `socket`.
    pub fn connect(
        &mut self,
        index: u32,
        size: u64,
        block_size: u32,
        server_flags: u16,
        socket: RawFd,
        timeout_secs: u64,
    ) -> Result<(), NetlinkError> {
        let mut m = Message::new(self.family, NBD_CMD_CONNECT, self.next_seq());
        m.u32(NBD_ATTR_INDEX, index);
        m.u64(NBD_ATTR_SIZE_BYTES, size);
        m.u64(NBD_ATTR_BLOCK_SIZE_BYTES, u64::from(block_size));
        m.u64(NBD_ATTR_SERVER_FLAGS, u64::from(server_flags));
        m.u64(NBD_ATTR_TIMEOUT, timeout_secs);
        m.nested(NBD_ATTR_SOCKETS, |m| {
            m.nested(NBD_SOCK_ITEM, |m| m.u32(NBD_SOCK_FD, socket as u32));
        });
        self.exchange(m.finish()).map(|_| ())
    }

    /// NBD_CMD_DISCONNECT: the kernel sends NBD_CMD_DISC and lets go.
    pub fn disconnect(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut m = Message::new(self.family, NBD_CMD_DISCONNECT, self.next_seq());
        m.u32(NBD_ATTR_INDEX, index);
        self.exchange(m.finish()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_pack_and_attributes_parse_back() {
        let mut m = Message::new(0x20, NBD_CMD_CONNECT, 7);
        m.u32(NBD_ATTR_INDEX, 3);
        m.u64(NBD_ATTR_SIZE_BYTES, 1 << 30);
        m.nested(NBD_ATTR_SOCKETS, |m| {
            m.nested(NBD_SOCK_ITEM, |m| m.u32(NBD_SOCK_FD, 9));
        });
        let bytes = m.finish();
        assert_eq!(
            u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize,
            bytes.len()
        );
        assert_eq!(bytes.len() % 4, 0);
        let attrs = attributes(&bytes[20..]);
        assert_eq!(attrs[0], (NBD_ATTR_INDEX, &3u32.to_ne_bytes()[..]));
        assert_eq!(attrs[1].0, NBD_ATTR_SIZE_BYTES);
        let (kind, sockets) = attrs[2];
        assert_eq!(kind, NBD_ATTR_SOCKETS);
        let (item, inner) = attributes(sockets)[0];
        assert_eq!(item, NBD_SOCK_ITEM);
        assert_eq!(attributes(inner)[0], (NBD_SOCK_FD, &9u32.to_ne_bytes()[..]));
    }

    #[test]
    fn attribute_parsing_stops_at_garbage() {
        assert!(attributes(&[0xff, 0xff, 1, 0, 0, 0]).is_empty());
        assert!(attributes(&[2, 0]).is_empty());
    }
}
