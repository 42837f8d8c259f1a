//! The target's end of the wire, shared by the session and login harnesses:
//! its codec, its numbering and the Login Responses of a plain login. The
//! connection under test sees only bytes; this side decodes what it sends
//! (checking on the way that our PDUs are well-formed) and encodes what a
//! target would answer.

use bytes::{Bytes, BytesMut};
use iscsi_proto::codec::{Digests, PduDecoder, PduEncoder};
use iscsi_proto::pdu::{
    ISCSI_VERSION, Isid, Itt, LoginRequest, LoginResponse, LoginStatus, Pdu, Stage,
};
use iscsi_proto::text::{KeyValue, TextLimits, parse_pairs};
use iscsi_session::Connection;

/// StatSN of the target's first Login Response.
pub const FIRST_STAT_SN: u32 = 1000;
/// Largest data segment the target-side decoder takes: the RFC maximum, so
/// that a renegotiated MaxRecvDataSegmentLength never makes our own PDUs
/// look malformed here (the harness checks the negotiated limit itself).
pub const ANY_SEGMENT: u32 = 16_777_215;

/// The target's codec and counters.
#[derive(Debug)]
pub struct TargetWire {
    /// Decodes what the initiator sends.
    pub decoder: PduDecoder,
    /// Encodes what the target sends.
    pub encoder: PduEncoder,
    /// The initiator's ISID, echoed in Login Responses.
    pub isid: Isid,
    /// StatSN of the next status-bearing PDU.
    pub stat_sn: u32,
    /// ExpCmdSN the target reports.
    pub exp_cmd_sn: u32,
    /// Commands the target accepts beyond ExpCmdSN - 1.
    pub window: u32,
}

impl TargetWire {
    /// A target that has seen nothing yet, for an initiator with `isid`.
    pub fn new(isid: Isid, window: u32) -> Self {
        TargetWire {
            decoder: PduDecoder::new(Digests::default(), ANY_SEGMENT),
            encoder: PduEncoder::default(),
            isid,
            stat_sn: FIRST_STAT_SN,
            exp_cmd_sn: 1,
            window,
        }
    }

    /// MaxCmdSN as the target reports it.
    pub fn max_cmd_sn(&self) -> u32 {
        self.exp_cmd_sn.wrapping_add(self.window).wrapping_sub(1)
    }

    /// Takes the next StatSN.
    pub fn next_stat_sn(&mut self) -> u32 {
        let sn = self.stat_sn;
        self.stat_sn = self.stat_sn.wrapping_add(1);
        sn
    }

    /// Everything `conn` has to transmit, decoded. Panics if our own PDUs
    /// do not decode or a partial PDU was written: the initiator must only
    /// ever send well-formed PDUs, whatever the target did.
    pub fn sent<U>(&mut self, conn: &mut Connection<U>) -> Vec<Pdu> {
        let mut wire = BytesMut::new();
        while let Some(pdu) = conn.poll_transmit() {
            pdu.write_to(&mut wire);
        }
        let mut out = Vec::new();
        while let Some(pdu) = self
            .decoder
            .decode(&mut wire)
            .unwrap_or_else(|e| panic!("the initiator sent an undecodable PDU: {e}"))
        {
            if let Pdu::ScsiCommand(cmd) = &pdu
                && !cmd.immediate
            {
                self.exp_cmd_sn = cmd.cmd_sn.wrapping_add(1);
            }
            out.push(pdu);
        }
        assert!(wire.is_empty(), "the initiator wrote a partial PDU");
        out
    }

    /// `pdu` on the wire, with the target's digests.
    pub fn encode(&self, pdu: &Pdu) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.encoder
            .encode(pdu, &mut out)
            .expect("the target's PDU encodes");
        out.to_vec()
    }

    /// A Login Response with the target's numbering.
    pub fn login_response(
        &mut self,
        csg: Stage,
        next: Option<Stage>,
        tsih: u16,
        data: Bytes,
    ) -> LoginResponse {
        LoginResponse {
            transit: next.is_some(),
            continue_: false,
            csg,
            nsg: next.unwrap_or(csg),
            version_max: ISCSI_VERSION,
            version_active: ISCSI_VERSION,
            isid: self.isid,
            tsih,
            itt: Itt(0),
            stat_sn: self.next_stat_sn(),
            exp_cmd_sn: self.exp_cmd_sn,
            max_cmd_sn: self.max_cmd_sn(),
            status: LoginStatus::SUCCESS,
            data,
        }
    }
}

/// The target's text, written byte by byte without any checks.
pub fn text<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Bytes {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref().as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_ref().as_bytes());
        out.push(0);
    }
    Bytes::from(out)
}

/// The pairs of one of our Login Requests.
pub fn pairs_of(req: &LoginRequest) -> Vec<KeyValue> {
    parse_pairs(&req.data, TextLimits::DEFAULT).expect("our login text parses")
}

/// A target's answers to our operational offers: each offer echoed (the
/// first item of a list), its own MaxRecvDataSegmentLength declared, then
/// `overrides` applied.
pub fn answers(offers: &LoginRequest, target_mrdsl: u32, overrides: &[(&str, &str)]) -> Bytes {
    let mut out: Vec<(String, String)> = pairs_of(offers)
        .into_iter()
        .filter(|kv| kv.key != "MaxRecvDataSegmentLength")
        .map(|kv| {
            let first = kv.value.split(',').next().unwrap_or_default().to_owned();
            (kv.key, first)
        })
        .collect();
    out.push(("MaxRecvDataSegmentLength".into(), target_mrdsl.to_string()));
    for (key, value) in overrides {
        match out.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = (*value).to_owned(),
            None => out.push(((*key).to_owned(), (*value).to_owned())),
        }
    }
    text(&out)
}

/// The one Login Request among `pdus`.
pub fn one_login_request(pdus: Vec<Pdu>) -> LoginRequest {
    match <[Pdu; 1]>::try_from(pdus) {
        Ok([Pdu::LoginRequest(req)]) => req,
        Ok(other) => panic!("expected a Login Request, got {other:?}"),
        Err(other) => panic!("expected one Login Request, got {other:?}"),
    }
}
