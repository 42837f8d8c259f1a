//! The raw probe connection: one TCP stream, iscsi-proto's codec, and the
//! sequence numbers, with nothing hidden. A test sends any PDU (or any
//! bytes) and reads what comes back, with a timeout on every wait.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::{Digests, LOGIN_MAX_DATA_SEGMENT_LEN, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{Isid, Itt, Lun, NopOut, Pdu, Ttt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::endpoint::Endpoint;
use crate::error::ProbeError;
use crate::probe::negotiated::Negotiated;

/// Largest read the probe asks the socket for at once.
const READ_CHUNK: usize = 64 * 1024;

/// A connection under the test's full control.
#[derive(Debug)]
pub struct Probe {
    stream: TcpStream,
    rx: BytesMut,
    encoder: PduEncoder,
    decoder: PduDecoder,
    portal: String,
    /// The endpoint it was opened to.
    pub endpoint: Endpoint,
    /// How long [`Probe::recv`] waits by default.
    pub pdu_timeout: Duration,
    /// CmdSN of the next non-immediate command.
    pub cmd_sn: u32,
    /// ExpStatSN the probe sends: one past the last StatSN seen.
    pub exp_stat_sn: u32,
    /// ExpCmdSN and MaxCmdSN of the last target PDU that carried them.
    pub window: Option<(u32, u32)>,
    /// The ISID of the session this connection belongs to.
    pub isid: Isid,
    /// The TSIH the target assigned (0 before login completes).
    pub tsih: u16,
    /// The connection ID sent at login.
    pub cid: u16,
    /// What login agreed on (defaults before login completes).
    pub negotiated: Negotiated,
    next_itt: u32,
    /// Unsolicited PDUs seen while waiting for something else (NOP-In
    /// pings answered automatically, Asynchronous Messages).
    pub asides: Vec<Pdu>,
}

impl Probe {
    /// Opens a TCP connection to the endpoint's portal.
    pub async fn connect(endpoint: &Endpoint, pdu_timeout: Duration) -> Result<Probe, ProbeError> {
        let portal = endpoint.portal_label();
        let addr = (endpoint.portal.host.as_str(), endpoint.portal.port);
        let stream = match timeout(pdu_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ProbeError::Connect { portal, source }),
            Err(_) => {
                return Err(ProbeError::Timeout {
                    portal,
                    what: "TCP connection".into(),
                    after: pdu_timeout,
                });
            }
        };
        // Small PDUs (a NOP, a Login Request) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(Probe {
            stream,
            rx: BytesMut::with_capacity(READ_CHUNK),
            encoder: PduEncoder::default(),
            decoder: PduDecoder::default(),
            portal,
            endpoint: endpoint.clone(),
            pdu_timeout,
            cmd_sn: 1,
            exp_stat_sn: 0,
            window: None,
            isid: random_isid(),
            tsih: 0,
            cid: 0,
            negotiated: Negotiated::default(),
            next_itt: 0x100,
            asides: Vec::new(),
        })
    }

    /// host:port, for messages.
    pub fn portal(&self) -> &str {
        &self.portal
    }

    /// A fresh Initiator Task Tag (never the reserved 0xffffffff).
    pub fn itt(&mut self) -> Itt {
        let itt = Itt(self.next_itt);
        self.next_itt = self.next_itt.wrapping_add(1);
        if self.next_itt == u32::MAX {
            self.next_itt = 0x100;
        }
        itt
    }

    /// Takes the CmdSN for a non-immediate command and advances it.
    pub fn take_cmd_sn(&mut self) -> u32 {
        let sn = self.cmd_sn;
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        sn
    }

    /// Switches digests and data segment limits: `ours` is the
    /// MaxRecvDataSegmentLength we declared, `theirs` the target's.
    pub fn configure(&mut self, digests: Digests, ours: u32, theirs: u32) {
        self.decoder.configure(digests, ours);
        self.encoder.configure(digests, theirs);
    }

    /// Back to login framing: no digests, 8 KiB segments.
    pub fn configure_login(&mut self) {
        self.configure(
            Digests::default(),
            LOGIN_MAX_DATA_SEGMENT_LEN,
            LOGIN_MAX_DATA_SEGMENT_LEN,
        );
    }

    /// The digests in force on sent PDUs.
    pub fn digests(&self) -> Digests {
        self.encoder.digests()
    }

    /// Encodes and sends one PDU.
    pub async fn send(&mut self, pdu: &Pdu) -> Result<(), ProbeError> {
        let encoded = self
            .encoder
            .encode_vectored(pdu)
            .map_err(|source| ProbeError::Encode {
                portal: self.portal.clone(),
                opcode: pdu.opcode(),
                source,
            })?;
        let mut wire = BytesMut::with_capacity(encoded.len());
        encoded.write_to(&mut wire);
        self.send_raw(&wire).await
    }

    /// Sends bytes as they are: malformed PDUs, split writes.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ProbeError> {
        let portal = self.portal.clone();
        match timeout(self.pdu_timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(ProbeError::Io {
                portal,
                what: "sending",
                source,
            }),
            Err(_) => Err(ProbeError::Timeout {
                portal,
                what: "room in the send buffer".into(),
                after: self.pdu_timeout,
            }),
        }
    }

    /// The header of `pdu` as it would go on the wire (BHS and AHS, no
    /// digest), for tests that corrupt it before sending.
    pub fn header_bytes(pdu: &Pdu) -> Result<BytesMut, iscsi_proto::pdu::PduError> {
        let mut out = BytesMut::new();
        pdu.encode_header(&mut out)?;
        Ok(out)
    }

    /// Sends a bare header (no data segment) as given, with the header
    /// digest appended when one was negotiated: for PDUs the codec will not
    /// build (reserved opcodes or function codes).
    pub async fn send_header(&mut self, header: &[u8]) -> Result<(), ProbeError> {
        let mut wire = header.to_vec();
        if self.digests().header {
            let crc = iscsi_proto::digest::crc32c(header);
            wire.extend_from_slice(&iscsi_proto::digest::to_wire(crc));
        }
        self.send_raw(&wire).await
    }

    /// The next PDU, waiting up to the default timeout.
    pub async fn recv(&mut self, what: &str) -> Result<Pdu, ProbeError> {
        self.recv_within(what, self.pdu_timeout).await
    }

    /// The next PDU, waiting up to `limit`. Updates ExpStatSN and the
    /// command window from it; answers nothing on its own.
    pub async fn recv_within(&mut self, what: &str, limit: Duration) -> Result<Pdu, ProbeError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.decoder.decode(&mut self.rx) {
                Ok(Some(pdu)) => {
                    self.observe(&pdu);
                    return Ok(pdu);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ProbeError::Decode {
                        portal: self.portal.clone(),
                        source,
                    });
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout_error(what, limit));
            }
            self.rx.reserve(READ_CHUNK);
            match timeout(deadline - now, self.stream.read_buf(&mut self.rx)).await {
                Ok(Ok(0)) => {
                    return Err(ProbeError::Closed {
                        portal: self.portal.clone(),
                        what: what.to_owned(),
                    });
                }
                Ok(Ok(_)) => {}
                Ok(Err(source)) => {
                    return Err(ProbeError::Io {
                        portal: self.portal.clone(),
                        what: "receiving",
                        source,
                    });
                }
                Err(_) => return Err(self.timeout_error(what, limit)),
            }
        }
    }

    fn timeout_error(&self, what: &str, after: Duration) -> ProbeError {
        ProbeError::Timeout {
            portal: self.portal.clone(),
            what: what.to_owned(),
            after,
        }
    }

    /// Keeps the sequence numbers the probe sends in step with the target.
    fn observe(&mut self, pdu: &Pdu) {
        // A target's ping carries the next StatSN without taking it
        // (RFC 7143 §11.19.2): ExpStatSN stays where it is.
        let ping = matches!(pdu, Pdu::NopIn(nop) if nop.itt.is_reserved());
        if let Some(sn) = pdu.status_sn().filter(|_| !ping) {
            self.exp_stat_sn = sn.wrapping_add(1);
        }
        if let Some(window) = pdu.command_window() {
            self.window = Some(window);
        }
    }

    /// The next PDU that is not a target ping nor an Asynchronous Message:
    /// pings are answered (RFC 7143 §11.19), both are kept in `asides`.
    pub async fn recv_reply(&mut self, what: &str) -> Result<Pdu, ProbeError> {
        loop {
            let pdu = self.recv(what).await?;
            match &pdu {
                Pdu::NopIn(nop) if nop.itt.is_reserved() => {
                    if !nop.ttt.is_reserved() {
                        let answer = self.ping_answer(nop.ttt, nop.lun);
                        self.send(&answer).await?;
                    }
                    self.asides.push(pdu);
                }
                Pdu::AsyncMessage(_) => self.asides.push(pdu),
                _ => return Ok(pdu),
            }
        }
    }

    /// The NOP-Out that answers a target's ping (ITT reserved, TTT echoed).
    pub fn ping_answer(&self, ttt: Ttt, lun: Lun) -> Pdu {
        Pdu::NopOut(NopOut {
            immediate: true,
            lun,
            itt: Itt::RESERVED,
            ttt,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data: Bytes::new(),
        })
    }

    /// Listens for `period`: `Ok(None)` when nothing arrived, the PDU when
    /// something did. A closed connection is an error.
    pub async fn quiet(&mut self, period: Duration) -> Result<Option<Pdu>, ProbeError> {
        match self.recv_within("silence", period).await {
            Ok(pdu) => Ok(Some(pdu)),
            Err(ProbeError::Timeout { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `limit` for the target to close the connection; PDUs
    /// that arrive meanwhile are returned with the verdict.
    pub async fn wait_closed(&mut self, limit: Duration) -> (bool, Vec<Pdu>) {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (false, seen);
            }
            match self.recv_within("connection close", left).await {
                Ok(pdu) => seen.push(pdu),
                Err(ProbeError::Timeout { .. }) => return (false, seen),
                // Closed, reset, or garbage: the connection is gone for us.
                Err(_) => return (true, seen),
            }
        }
    }

    /// Half-closes nothing, just drops the socket: the abrupt end a crash or
    /// a cut cable gives.
    pub fn drop_connection(self) {
        drop(self);
    }
}

/// A random-format ISID (RFC 7143 §11.12.5, T = 10b).
pub fn random_isid() -> Isid {
    let bytes: [u8; 5] = rand::random();
    Isid::random(bytes)
}
