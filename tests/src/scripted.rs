//! A scripted iSCSI target: the test plays the target PDU by PDU (the
//! h2-support pattern), for what tgtd cannot be made to do: login redirects,
//! forced negotiation answers, a zero or reopening command window,
//! Asynchronous Messages, Reject, a NOP-In ping with a TTT, Data-In split over
//! several PDUs, R2T sequences, residuals, a login that never answers.
//!
//! Every wait has a timeout and panics with what the script expected, so a
//! test that goes wrong fails with a reason instead of hanging.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::{Digests, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{
    AsyncEvent, AsyncMessage, BHS_LEN, DataIn, DataInStatus, Isid, Itt, LoginRequest,
    LoginResponse, LoginStatus, LogoutRequest, LogoutResponse, LogoutResponseCode, Lun, NopIn, Pdu,
    R2t, Reject, RejectReason, Residual, ScsiCommand, ScsiResponse, ServiceResponse, Stage,
    TaskMgmtRequest, TaskMgmtResponse, TmfResponse, Ttt,
};
use iscsi_proto::text::{
    KeyValue, Negotiation, Policy, Role, TextLimits, encode_pairs, parse_pairs,
};
use iscsi_session::Portal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a script waits for the initiator before failing the test.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A listening scripted target on 127.0.0.1 and a free port.
#[derive(Debug)]
pub struct ScriptedTarget {
    listener: TcpListener,
    addr: SocketAddr,
}

impl ScriptedTarget {
    pub async fn bind() -> ScriptedTarget {
        ScriptedTarget::bind_on("127.0.0.1:0".parse().expect("address")).await
    }

    /// A scripted target on a chosen address (e.g. a portal that was down
    /// when the initiator started).
    pub async fn bind_on(addr: SocketAddr) -> ScriptedTarget {
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind a scripted target");
        let addr = listener.local_addr().expect("local address");
        ScriptedTarget { listener, addr }
    }

    /// Waits up to `timeout` for the initiator to connect; `None` if it does not.
    pub async fn try_accept(&self, timeout: Duration) -> Option<ScriptedConnection> {
        let (stream, _) = tokio::time::timeout(timeout, self.listener.accept())
            .await
            .ok()?
            .ok()?;
        stream.set_nodelay(true).ok();
        Some(ScriptedConnection::new(stream))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn portal(&self) -> Portal {
        Portal::from(self.addr)
    }

    /// Waits for the initiator to connect.
    pub async fn accept(&self) -> ScriptedConnection {
        let (stream, _) = tokio::time::timeout(SCRIPT_TIMEOUT, self.listener.accept())
            .await
            .expect("the initiator did not connect to the scripted target in time")
            .expect("accept");
        stream.set_nodelay(true).ok();
        ScriptedConnection::new(stream)
    }
}

/// How the scripted target answers a login.
#[derive(Debug, Clone)]
pub struct LoginScript {
    /// What the target supports: its answers are computed from it with the
    /// key table's result functions.
    pub policy: Policy,
    /// Answers forced for these keys instead of the computed ones.
    pub overrides: Vec<(String, String)>,
    /// Keys the target declares on its own (e.g. MaxRecvDataSegmentLength).
    pub declarations: Vec<(String, String)>,
    /// Commands the window admits after login: MaxCmdSN = ExpCmdSN + window - 1
    /// (0 gives a closed window).
    pub window: u32,
    /// TSIH the target assigns.
    pub tsih: u16,
}

impl Default for LoginScript {
    fn default() -> Self {
        LoginScript {
            policy: Policy::new(),
            overrides: Vec::new(),
            declarations: vec![("MaxRecvDataSegmentLength".into(), "262144".into())],
            window: 64,
            tsih: 0x0101,
        }
    }
}

/// One accepted connection, played by the test.
#[derive(Debug)]
pub struct ScriptedConnection {
    stream: TcpStream,
    rx: BytesMut,
    decoder: PduDecoder,
    encoder: PduEncoder,
    /// StatSN of the next status we send.
    pub stat_sn: u32,
    /// CmdSN we expect next (from the initiator's non-immediate commands).
    pub exp_cmd_sn: u32,
    /// Commands the window admits beyond ExpCmdSN - 1.
    pub window: u32,
    pub isid: Isid,
    pub tsih: u16,
}

impl ScriptedConnection {
    fn new(stream: TcpStream) -> Self {
        ScriptedConnection {
            stream,
            rx: BytesMut::with_capacity(1 << 20),
            decoder: PduDecoder::new(Digests::default(), 8192),
            encoder: PduEncoder::new(Digests::default(), 8192),
            stat_sn: 0x1000,
            exp_cmd_sn: 0,
            window: 64,
            isid: Isid::default(),
            tsih: 0,
        }
    }

    /// MaxCmdSN announced with every response.
    pub fn max_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn.wrapping_add(self.window).wrapping_sub(1)
    }

    /// Takes the next StatSN.
    pub fn next_stat_sn(&mut self) -> u32 {
        let sn = self.stat_sn;
        self.stat_sn = self.stat_sn.wrapping_add(1);
        sn
    }

    /// Full feature phase limits: digests and the data segment sizes each
    /// side declared.
    pub fn configure(&mut self, digests: Digests, we_receive: u32, we_send: u32) {
        self.decoder.configure(digests, we_receive);
        self.encoder.configure(digests, we_send);
    }

    /// The next PDU from the initiator, or `None` on EOF or timeout.
    pub async fn try_recv(&mut self, timeout: Duration) -> Option<Pdu> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.decoder.decode(&mut self.rx) {
                Ok(Some(pdu)) => {
                    self.observe(&pdu);
                    return Some(pdu);
                }
                Ok(None) => {}
                Err(e) => panic!("the initiator sent an undecodable PDU: {e}"),
            }
            self.rx.reserve(64 * 1024);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rx)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next PDU from the initiator; panics on EOF or timeout.
    pub async fn recv(&mut self) -> Pdu {
        self.try_recv(SCRIPT_TIMEOUT)
            .await
            .expect("the initiator sent nothing (EOF or timeout) where the script expected a PDU")
    }

    /// Asserts the initiator closes the connection within `timeout`, skipping
    /// whatever it still sends.
    pub async fn expect_eof(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.rx.clear();
            self.rx.reserve(64 * 1024);
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rx)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
                Err(_) => panic!("the initiator kept the connection open"),
            }
        }
    }

    /// Tracks the initiator's CmdSN: a non-immediate command consumes one.
    fn observe(&mut self, pdu: &Pdu) {
        let cmd_sn = match pdu {
            Pdu::ScsiCommand(c) if !c.immediate => Some(c.cmd_sn),
            Pdu::NopOut(n) if !n.immediate => Some(n.cmd_sn),
            Pdu::TextRequest(t) if !t.immediate => Some(t.cmd_sn),
            Pdu::TaskMgmtRequest(t) if !t.immediate => Some(t.cmd_sn),
            Pdu::LogoutRequest(l) if !l.immediate => Some(l.cmd_sn),
            _ => None,
        };
        if let Some(sn) = cmd_sn {
            self.exp_cmd_sn = sn.wrapping_add(1);
        }
    }

    pub async fn send(&mut self, pdu: impl Into<Pdu>) {
        let out = self.encode(pdu);
        self.send_raw(&out).await;
    }

    /// Writes bytes as they are (hostile-target tests).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .expect("write to the initiator");
    }

    /// Writes bytes unless the initiator stops taking them: `Ok(false)` when
    /// the write did not finish within `timeout` (the initiator stopped
    /// reading; part of `bytes` may have gone out), `Err` when the
    /// connection failed. For floods, where both are expected outcomes.
    pub async fn try_send_raw(&mut self, bytes: &[u8], timeout: Duration) -> std::io::Result<bool> {
        match tokio::time::timeout(timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(false),
        }
    }

    /// `pdu` encoded as the target would send it, for tests that alter or
    /// split the bytes before sending them.
    pub fn encode(&mut self, pdu: impl Into<Pdu>) -> BytesMut {
        let mut out = BytesMut::new();
        self.encoder
            .encode(&pdu.into(), &mut out)
            .expect("the script built an unencodable PDU");
        out
    }

    /// Plays a login without authentication: answers the security stage with
    /// AuthMethod=None, computes operational answers with iscsi-proto's
    /// negotiation (target role), applies `script.overrides`, and moves to
    /// full feature phase. Returns the first Login Request and the initiator's
    /// operational offers.
    pub async fn login(&mut self, script: &LoginScript) -> (LoginRequest, Vec<KeyValue>) {
        let first = self.expect_login().await;
        self.login_from(script, first).await
    }

    /// As [`ScriptedConnection::login`] from a Login Request already
    /// received: a test that played the security stage itself (CHAP) hands
    /// over the first operational request.
    pub async fn login_from(
        &mut self,
        script: &LoginScript,
        first: LoginRequest,
    ) -> (LoginRequest, Vec<KeyValue>) {
        self.isid = first.isid;
        self.exp_cmd_sn = first.cmd_sn;
        self.window = script.window.max(1);
        let mut req = first.clone();
        let mut offers = Vec::new();
        let mut negotiation = Negotiation::new(Role::Target, script.policy.clone());
        loop {
            let pairs = parse_pairs(&req.data, TextLimits::DEFAULT).expect("login text");
            let mut answers: Vec<KeyValue> = Vec::new();
            match req.csg {
                Stage::Security => {
                    if pairs.iter().any(|kv| kv.key == "AuthMethod") {
                        answers.push(KeyValue::new("AuthMethod", "None"));
                    }
                }
                _ => {
                    offers.extend(pairs.iter().cloned());
                    negotiation.set_stage(Stage::Operational);
                    negotiation
                        .receive(&pairs)
                        .expect("the initiator's offers are valid");
                    let computed = negotiation.take_outgoing();
                    for kv in computed {
                        let forced = script.overrides.iter().find(|(k, _)| *k == kv.key);
                        match forced {
                            Some((k, v)) => answers.push(KeyValue::new(k.clone(), v.clone())),
                            None => answers.push(kv),
                        }
                    }
                    for (k, v) in &script.declarations {
                        if !answers.iter().any(|kv| kv.key == *k) {
                            answers.push(KeyValue::new(k.clone(), v.clone()));
                        }
                    }
                }
            }
            let final_step = req.transit && req.nsg == Stage::FullFeature;
            let tsih = if final_step { script.tsih } else { 0 };
            self.tsih = tsih;
            let window = if final_step { script.window } else { 1 };
            let resp = LoginResponse {
                transit: req.transit,
                continue_: false,
                csg: req.csg,
                nsg: if req.transit { req.nsg } else { req.csg },
                version_max: 0,
                version_active: 0,
                isid: req.isid,
                tsih,
                itt: req.itt,
                stat_sn: self.next_stat_sn(),
                exp_cmd_sn: self.exp_cmd_sn,
                max_cmd_sn: self.exp_cmd_sn.wrapping_add(window).wrapping_sub(1),
                status: LoginStatus::SUCCESS,
                data: Bytes::from(encode_pairs(&answers).expect("encode answers")),
            };
            self.send(resp).await;
            if final_step {
                self.window = script.window;
                return (first, offers);
            }
            req = self.expect_login().await;
        }
    }

    /// Answers the next login request with a redirect to `address`.
    pub async fn redirect(&mut self, address: &str, permanent: bool) -> LoginRequest {
        let req = self.expect_login().await;
        let status = if permanent {
            LoginStatus::TARGET_MOVED_PERMANENTLY
        } else {
            LoginStatus::TARGET_MOVED_TEMPORARILY
        };
        let data = encode_pairs(&[KeyValue::new("TargetAddress", address)]).expect("encode");
        let resp = self.login_failure(&req, status, Bytes::from(data));
        self.send(resp).await;
        req
    }

    /// A Login Response refusing `req` with `status`.
    pub fn login_failure(
        &mut self,
        req: &LoginRequest,
        status: LoginStatus,
        data: Bytes,
    ) -> LoginResponse {
        LoginResponse {
            transit: false,
            continue_: false,
            csg: req.csg,
            nsg: req.csg,
            version_max: 0,
            version_active: 0,
            isid: req.isid,
            tsih: 0,
            itt: req.itt,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: req.cmd_sn,
            max_cmd_sn: req.cmd_sn,
            status,
            data,
        }
    }

    pub async fn expect_login(&mut self) -> LoginRequest {
        match self.recv().await {
            Pdu::LoginRequest(r) => r,
            other => panic!("expected a Login Request, got {other:?}"),
        }
    }

    pub async fn expect_command(&mut self) -> ScsiCommand {
        match self.recv().await {
            Pdu::ScsiCommand(c) => c,
            other => panic!("expected a SCSI Command, got {other:?}"),
        }
    }

    /// A SCSI Response to `cmd`.
    pub fn response(
        &mut self,
        cmd: &ScsiCommand,
        status: u8,
        sense: Option<&[u8]>,
        residual: Residual,
    ) -> ScsiResponse {
        let data = match sense {
            Some(s) => {
                let mut d = Vec::with_capacity(2 + s.len());
                d.extend_from_slice(&(s.len() as u16).to_be_bytes());
                d.extend_from_slice(s);
                Bytes::from(d)
            }
            None => Bytes::new(),
        };
        ScsiResponse {
            response: ServiceResponse::CompletedAtTarget,
            status,
            itt: cmd.itt,
            snack_tag: 0,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            exp_data_sn: 0,
            bidi_read_residual: Residual::None,
            residual,
            data,
        }
    }

    /// A Data-In for `cmd`; with `status`, the last one carrying the status.
    pub fn data_in(
        &mut self,
        cmd: &ScsiCommand,
        data_sn: u32,
        offset: u32,
        data: Bytes,
        status: Option<(u8, Residual)>,
    ) -> DataIn {
        let status = status.map(|(status, residual)| DataInStatus {
            status,
            stat_sn: self.next_stat_sn(),
            residual,
        });
        DataIn {
            final_: status.is_some(),
            acknowledge: false,
            status,
            lun: cmd.lun,
            itt: cmd.itt,
            ttt: Ttt::RESERVED,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data_sn,
            buffer_offset: offset,
            data,
        }
    }

    /// An R2T for `len` bytes at `offset` of `cmd`.
    pub fn r2t(&mut self, cmd: &ScsiCommand, r2t_sn: u32, ttt: u32, offset: u32, len: u32) -> R2t {
        R2t {
            lun: cmd.lun,
            itt: cmd.itt,
            ttt: Ttt(ttt),
            stat_sn: self.stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            r2t_sn,
            buffer_offset: offset,
            desired_data_transfer_length: len,
        }
    }

    /// A NOP-In: our own ping (with a TTT the initiator must echo), or a bare
    /// window update (TTT reserved).
    pub fn nop_in(&mut self, ttt: Ttt, data: Bytes) -> NopIn {
        NopIn {
            lun: Lun::default(),
            itt: Itt::RESERVED,
            ttt,
            stat_sn: self.stat_sn,
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data,
        }
    }

    /// The answer to the initiator's NOP-Out ping.
    pub fn nop_in_reply(&mut self, itt: Itt, data: Bytes) -> NopIn {
        NopIn {
            lun: Lun::default(),
            itt,
            ttt: Ttt::RESERVED,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data,
        }
    }

    pub fn async_message(
        &mut self,
        event: AsyncEvent,
        p1: u16,
        p2: u16,
        p3: u16,
        data: Bytes,
    ) -> AsyncMessage {
        AsyncMessage {
            lun: Lun::default(),
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            event,
            vcode: 0,
            parameter1: p1,
            parameter2: p2,
            parameter3: p3,
            data,
        }
    }

    /// A Reject of `rejected`, carrying its header as RFC 7143 §11.17 says.
    pub fn reject(&mut self, rejected: &Pdu, reason: RejectReason) -> Reject {
        let mut header = BytesMut::new();
        rejected
            .encode_header(&mut header)
            .expect("encode the rejected header");
        header.truncate(BHS_LEN);
        Reject {
            reason,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            data_sn_or_r2t_sn: 0,
            data: header.freeze(),
        }
    }

    /// The answer to a task management request.
    pub fn tmf_response(
        &mut self,
        req: &TaskMgmtRequest,
        response: TmfResponse,
    ) -> TaskMgmtResponse {
        TaskMgmtResponse {
            response,
            itt: req.itt,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
        }
    }

    pub fn logout_response(&mut self, req: &LogoutRequest) -> LogoutResponse {
        LogoutResponse {
            response: LogoutResponseCode::Success,
            itt: req.itt,
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            time2wait: 0,
            time2retain: 0,
        }
    }

    /// Answers PDUs until a Logout Request arrives, then answers it.
    pub async fn expect_logout(&mut self) {
        loop {
            match self.recv().await {
                Pdu::LogoutRequest(req) => {
                    let resp = self.logout_response(&req);
                    self.send(resp).await;
                    return;
                }
                Pdu::NopOut(n) if !n.itt.is_reserved() => {
                    let reply = self.nop_in_reply(n.itt, n.data);
                    self.send(reply).await;
                }
                Pdu::NopOut(_) => {}
                other => panic!("expected a Logout Request, got {other:?}"),
            }
        }
    }
}
