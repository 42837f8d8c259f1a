//! A minimal classic-pcap writer and a TCP flow that turns payload bytes into
//! Ethernet/IPv4/TCP frames, so that tests can hand our encoded PDUs to
//! tshark as if they had crossed a wire.
//!
//! Formats: pcap per the libpcap file format (microsecond timestamps,
//! LINKTYPE_ETHERNET = 1), IPv4 per RFC 791, TCP per RFC 9293, checksums per
//! RFC 1071. Sequence and acknowledgement numbers advance with the bytes sent,
//! so dissectors reassemble PDUs that span segments.

use std::io::{self, Write};
use std::net::SocketAddrV4;

/// LINKTYPE_ETHERNET: frames start with a 14-byte Ethernet II header.
pub const LINKTYPE_ETHERNET: u32 = 1;

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const SNAPLEN: u32 = 262_144;
const ETHERTYPE_IPV4: u16 = 0x0800;
const IPPROTO_TCP: u8 = 6;
const IPV4_HEADER_LEN: usize = 20;
const TCP_HEADER_LEN: usize = 20;

/// Writes packets to a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    micros: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. Packets get timestamps 1 ms apart from 0.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&PCAP_MAGIC_MICROS.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?; // thiszone: UTC
        out.write_all(&0u32.to_le_bytes())?; // sigfigs
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(PcapWriter { out, micros: 0 })
    }

    /// Appends one frame, captured whole.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|&l| l <= SNAPLEN)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame above snaplen"))?;
        self.micros += 1000;
        let secs = (self.micros / 1_000_000) as u32;
        let micros = (self.micros % 1_000_000) as u32;
        self.out.write_all(&secs.to_le_bytes())?;
        self.out.write_all(&micros.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?; // captured length
        self.out.write_all(&len.to_le_bytes())?; // original length
        self.out.write_all(frame)
    }

    /// Appends several frames in order.
    pub fn write_frames<F: AsRef<[u8]>>(&mut self, frames: &[F]) -> io::Result<()> {
        frames.iter().try_for_each(|f| self.write_frame(f.as_ref()))
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Which way a segment travels on a [`TcpFlow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

#[derive(Debug, Clone)]
struct Endpoint {
    mac: [u8; 6],
    addr: SocketAddrV4,
    /// Next sequence number this side sends.
    next_seq: u32,
}

/// TCP flag bits (RFC 9293 §3.1).
mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// One TCP connection, producing Ethernet frames with consistent sequence and
/// acknowledgement numbers in both directions.
#[derive(Debug, Clone)]
pub struct TcpFlow {
    client: Endpoint,
    server: Endpoint,
    ip_id: u16,
    /// Largest payload per segment.
    mss: usize,
}

impl TcpFlow {
    /// A flow between two IPv4 endpoints with a 1448-byte MSS (Ethernet MTU
    /// minus IPv4, TCP and timestamp option sizes, as Linux uses).
    pub fn new(client: SocketAddrV4, server: SocketAddrV4) -> Self {
        TcpFlow {
            client: Endpoint {
                mac: [0x02, 0, 0, 0, 0, 0x01],
                addr: client,
                next_seq: 0x1000_0000,
            },
            server: Endpoint {
                mac: [0x02, 0, 0, 0, 0, 0x02],
                addr: server,
                next_seq: 0x2000_0000,
            },
            ip_id: 1,
            mss: 1448,
        }
    }

    /// Sets the largest payload per segment (at least 1).
    pub fn with_mss(mut self, mss: usize) -> Self {
        self.mss = mss.max(1);
        self
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        let syn = self.segment(Direction::ClientToServer, flags::SYN, &[]);
        let syn_ack = self.segment(Direction::ServerToClient, flags::SYN | flags::ACK, &[]);
        let ack = self.segment(Direction::ClientToServer, flags::ACK, &[]);
        vec![syn, syn_ack, ack]
    }

    /// `payload` in MSS-sized segments, PSH on the last one, then the peer's ACK.
    pub fn send(&mut self, dir: Direction, payload: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut pieces = payload.chunks(self.mss).peekable();
        while let Some(piece) = pieces.next() {
            let push = if pieces.peek().is_none() {
                flags::PSH
            } else {
                0
            };
            frames.push(self.segment(dir, flags::ACK | push, piece));
        }
        let back = match dir {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        };
        frames.push(self.segment(back, flags::ACK, &[]));
        frames
    }

    /// FIN from each side, then the last ACK.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        let fin = self.segment(Direction::ClientToServer, flags::FIN | flags::ACK, &[]);
        let fin_back = self.segment(Direction::ServerToClient, flags::FIN | flags::ACK, &[]);
        let ack = self.segment(Direction::ClientToServer, flags::ACK, &[]);
        vec![fin, fin_back, ack]
    }

    /// One Ethernet frame carrying one TCP segment; advances the sender's
    /// sequence number by the payload plus one for SYN and FIN.
    fn segment(&mut self, dir: Direction, tcp_flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = match dir {
            Direction::ClientToServer => (&self.client, &self.server),
            Direction::ServerToClient => (&self.server, &self.client),
        };
        let ack = if tcp_flags & flags::ACK != 0 {
            dst.next_seq
        } else {
            0
        };
        let tcp = tcp_segment(src.addr, dst.addr, src.next_seq, ack, tcp_flags, payload);
        let ip = ipv4_packet(*src.addr.ip(), *dst.addr.ip(), self.ip_id, &tcp);
        let mut frame = Vec::with_capacity(14 + ip.len());
        frame.extend_from_slice(&dst.mac);
        frame.extend_from_slice(&src.mac);
        frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame.extend_from_slice(&ip);

        self.ip_id = self.ip_id.wrapping_add(1);
        let consumed = payload.len() as u32 + u32::from(tcp_flags & (flags::SYN | flags::FIN) != 0);
        let sender = match dir {
            Direction::ClientToServer => &mut self.client,
            Direction::ServerToClient => &mut self.server,
        };
        sender.next_seq = sender.next_seq.wrapping_add(consumed);
        frame
    }
}

/// The RFC 1071 Internet checksum of the concatenation of `parts`.
pub fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &byte in *part {
            match odd.take() {
                Some(high) => sum += u32::from(u16::from_be_bytes([high, byte])),
                None => odd = Some(byte),
            }
        }
    }
    if let Some(high) = odd {
        sum += u32::from(u16::from_be_bytes([high, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_packet(
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = (IPV4_HEADER_LEN + payload.len()) as u16;
    let mut h = [0u8; IPV4_HEADER_LEN];
    h[0] = 0x45; // version 4, 5 words
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6] = 0x40; // don't fragment
    h[8] = 64; // TTL
    h[9] = IPPROTO_TCP;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum = internet_checksum(&[&h]);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    [&h[..], payload].concat()
}

fn tcp_segment(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = [0u8; TCP_HEADER_LEN];
    h[0..2].copy_from_slice(&src.port().to_be_bytes());
    h[2..4].copy_from_slice(&dst.port().to_be_bytes());
    h[4..8].copy_from_slice(&seq.to_be_bytes());
    h[8..12].copy_from_slice(&ack.to_be_bytes());
    h[12] = ((TCP_HEADER_LEN / 4) as u8) << 4;
    h[13] = tcp_flags;
    h[14..16].copy_from_slice(&0xffffu16.to_be_bytes()); // window
    let tcp_len = ((TCP_HEADER_LEN + payload.len()) as u16).to_be_bytes();
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.ip().octets());
    pseudo[4..8].copy_from_slice(&dst.ip().octets());
    pseudo[9] = IPPROTO_TCP;
    pseudo[10..12].copy_from_slice(&tcp_len);
    let sum = internet_checksum(&[&pseudo, &h, payload]);
    h[16..18].copy_from_slice(&sum.to_be_bytes());
    [&h[..], payload].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn rfc1071_checksum_of_a_known_ipv4_header() {
        // A textbook header (192.168.0.1 -> 192.168.0.199, UDP) whose checksum is 0xb861.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&[&header]), 0xb861);
        // Odd lengths pad with a zero byte, however the parts are split.
        assert_eq!(
            internet_checksum(&[&[1, 2, 3]]),
            internet_checksum(&[&[1], &[2, 3, 0]])
        );
    }

    #[test]
    fn global_header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(&[0xaa; 60]).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 60);
        assert_eq!(&bytes[24 + 8..24 + 12], &60u32.to_le_bytes());
    }

    #[test]
    fn segments_have_valid_checksums_and_continuing_sequence_numbers() {
        let client = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
        let server = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 3260);
        let mut flow = TcpFlow::new(client, server).with_mss(100);
        let hs = flow.handshake();
        let data = flow.send(Direction::ClientToServer, &[7u8; 250]);
        assert_eq!(data.len(), 4, "3 segments and an ACK");
        let seq = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
        let ack = |f: &[u8]| u32::from_be_bytes(f[42..46].try_into().unwrap());
        assert_eq!(seq(&hs[2]), seq(&hs[0]) + 1);
        assert_eq!(seq(&data[0]), seq(&hs[2]));
        assert_eq!(seq(&data[1]), seq(&data[0]) + 100);
        assert_eq!(seq(&data[2]), seq(&data[1]) + 100);
        assert_eq!(ack(&data[3]), seq(&data[2]) + 50);
        for frame in hs.iter().chain(&data) {
            let ip = &frame[14..];
            assert_eq!(internet_checksum(&[&ip[..20]]), 0, "IPv4 header checksum");
            let mut pseudo = [0u8; 12];
            pseudo[..8].copy_from_slice(&ip[12..20]);
            pseudo[9] = IPPROTO_TCP;
            pseudo[10..12].copy_from_slice(&((ip.len() - 20) as u16).to_be_bytes());
            assert_eq!(internet_checksum(&[&pseudo, &ip[20..]]), 0, "TCP checksum");
        }
    }
}
