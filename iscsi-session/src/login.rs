//! The login phase (RFC 7143 §6.3): security negotiation with CHAP, then
//! operational negotiation, then the step into full feature phase.
//!
//! [`Login`] is a sans-IO state machine: every Login Response goes in, and the
//! next Login Request, the negotiated outcome, a redirect or an error comes out.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::{ISCSI_VERSION, Isid, Itt, LoginRequest, LoginResponse, Stage};
use iscsi_proto::text::{Negotiation, Role, TextAssembler};
use rand::rngs::StdRng;
use tracing::{debug, info};

use crate::chap::{self, ChapAlgorithm, MAX_CHALLENGE_LEN, OurChallenge};
use crate::config::{ChapConfig, DigestPreference, SessionConfig};
use crate::error::{Error, PathContext};
use crate::params::SessionParams;
use crate::portal::Portal;

/// Login round trips we allow before calling the target hostile.
const MAX_LOGIN_EXCHANGES: u32 = 32;

/// Largest login text we assemble from a target (continued responses).
const MAX_LOGIN_TEXT: usize = 64 * 1024;

/// Data segment limit for login PDUs in both directions (§13.12 default).
const LOGIN_SEGMENT: usize = 8192;

/// What the connection does after a Login Response.
#[derive(Debug)]
pub(crate) enum LoginStep {
    Send(LoginRequest),
    Done(LoginDone),
    Redirect { portal: Portal, permanent: bool },
}

/// The outcome of a successful login.
#[derive(Debug)]
pub(crate) struct LoginDone {
    pub params: SessionParams,
    pub tsih: u16,
    pub cmd_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub exp_stat_sn: u32,
}

#[derive(Debug)]
enum Security {
    /// We offered AuthMethod and wait for the target's choice.
    AuthMethodOffered,
    /// We sent CHAP_A and wait for CHAP_A/CHAP_I/CHAP_C.
    AlgorithmsOffered,
    /// We answered (and challenged, for mutual CHAP) and wait for the verdict.
    Responded { algorithm: ChapAlgorithm, ours: Option<OurChallenge> },
    /// Authentication done (or None agreed) and the target may move on.
    Done,
}

/// The login state machine of one connection.
#[derive(Debug)]
pub(crate) struct Login {
    config: Arc<SessionConfig>,
    ctx: PathContext,
    isid: Isid,
    tsih: u16,
    cmd_sn: u32,
    exp_stat_sn: u32,
    stage: Stage,
    security: Security,
    negotiation: Negotiation,
    /// Operational offers sent (they go out once, in the first operational PDU).
    offered: bool,
    assembler: TextAssembler,
    /// Our text still to send, for requests continued over several PDUs.
    pending_text: Vec<u8>,
    exchanges: u32,
    rng: StdRng,
}

impl Login {
    pub fn new(
        config: Arc<SessionConfig>,
        ctx: PathContext,
        tsih: u16,
        cmd_sn: u32,
        rng: StdRng,
    ) -> Self {
        let negotiation = operational_negotiation(&config);
        Login {
            isid: config.isid(),
            config,
            ctx,
            tsih,
            cmd_sn,
            exp_stat_sn: 0,
            stage: Stage::Security,
            security: Security::AuthMethodOffered,
            negotiation,
            offered: false,
            assembler: TextAssembler::new(MAX_LOGIN_TEXT),
            pending_text: Vec::new(),
            exchanges: 0,
            rng,
        }
    }

    /// The first Login Request: who we are, where we go, how we authenticate.
    pub fn start(&mut self) -> LoginRequest {
        let mut pairs: Vec<(String, String)> = vec![
            ("InitiatorName".into(), self.config.initiator_name.clone()),
        ];
        if let Some(alias) = &self.config.initiator_alias {
            pairs.push(("InitiatorAlias".into(), alias.clone()));
        }
        match &self.config.target_name {
            Some(target) => {
                pairs.push(("SessionType".into(), "Normal".into()));
                pairs.push(("TargetName".into(), target.clone()));
            }
            None => pairs.push(("SessionType".into(), "Discovery".into())),
        }
        let methods = match &self.config.chap {
            // With mutual CHAP the target must prove itself: None is no option.
            Some(ChapConfig { target: Some(_), .. }) => "CHAP",
            Some(_) => "CHAP,None",
            None => "None",
        };
        pairs.push(("AuthMethod".into(), methods.into()));
        // Without CHAP we are ready to move on at once; with it the target
        // first picks the method.
        let transit = self.config.chap.is_none();
        self.request(&pairs, transit, Stage::Operational)
    }

    fn ctx(&self) -> PathContext {
        self.ctx.clone()
    }

    fn negotiation_error(&self, reason: impl Into<String>) -> Error {
        Error::Negotiation { ctx: self.ctx(), reason: reason.into() }
    }

    fn auth_error(&self, reason: impl Into<String>) -> Error {
        Error::Authentication { ctx: self.ctx(), reason: reason.into() }
    }

    /// Builds a Login Request in the current stage; text beyond one segment is
    /// sent in pieces with the C bit (§6.3 and §11.12.2).
    fn request(&mut self, pairs: &[(String, String)], transit: bool, nsg: Stage) -> LoginRequest {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.pending_text = encode_text(&refs).to_vec();
        self.next_piece(transit, nsg)
    }

    fn next_piece(&mut self, transit: bool, nsg: Stage) -> LoginRequest {
        let take = self.pending_text.len().min(LOGIN_SEGMENT);
        let piece: Vec<u8> = self.pending_text.drain(..take).collect();
        let more = !self.pending_text.is_empty();
        LoginRequest {
            transit: transit && !more,
            continue_: more,
            csg: self.stage,
            nsg: if transit && !more { nsg } else { self.stage },
            version_max: ISCSI_VERSION,
            version_min: ISCSI_VERSION,
            isid: self.isid,
            tsih: self.tsih,
            itt: Itt(0),
            cid: 0,
            cmd_sn: self.cmd_sn,
            exp_stat_sn: self.exp_stat_sn,
            data: Bytes::from(piece),
        }
    }

    /// Handles one Login Response.
    pub fn handle_response(&mut self, resp: LoginResponse) -> Result<LoginStep, Error> {
        self.exchanges += 1;
        if self.exchanges > MAX_LOGIN_EXCHANGES {
            return Err(self.negotiation_error("target keeps the login going without end"));
        }
        self.exp_stat_sn = resp.stat_sn.wrapping_add(1);
        if resp.status.is_redirect() {
            return self.redirect(&resp);
        }
        if !resp.status.is_success() {
            if resp.status == iscsi_proto::pdu::LoginStatus::AUTHENTICATION_FAILURE {
                return Err(self.auth_error(format!("target refused our credentials ({})", resp.status)));
            }
            return Err(Error::LoginRejected { ctx: self.ctx(), status: resp.status });
        }
        if resp.version_active != ISCSI_VERSION {
            return Err(self.negotiation_error(format!(
                "target speaks iSCSI version {:#04x}",
                resp.version_active
            )));
        }
        if resp.isid != self.isid {
            return Err(self.negotiation_error("target answered with another ISID"));
        }
        if resp.csg != self.stage {
            return Err(self.negotiation_error(format!(
                "target answered in stage {:?} while we are in {:?}",
                resp.csg, self.stage
            )));
        }
        // Our own text did not fit one PDU: the target acknowledges each piece
        // with an empty response; send the next.
        if !self.pending_text.is_empty() {
            let (transit, nsg) = self.intended_transit();
            return Ok(LoginStep::Send(self.next_piece(transit, nsg)));
        }
        let pairs = match self.assembler.push(&resp.data, resp.continue_) {
            Ok(Some(pairs)) => pairs,
            // §6.3: answer a continued response with an empty request.
            Ok(None) => return Ok(LoginStep::Send(self.empty_request())),
            Err(e) => return Err(self.negotiation_error(format!("login text: {e}"))),
        };
        let pairs: Vec<(String, String)> = pairs.into_iter().map(|kv| (kv.key, kv.value)).collect();
        match self.stage {
            Stage::Security => self.security_response(resp, pairs),
            Stage::Operational => self.operational_response(resp, pairs),
            Stage::FullFeature => Err(self.negotiation_error("Login Response in full feature phase")),
        }
    }

    fn intended_transit(&self) -> (bool, Stage) {
        match self.stage {
            Stage::Security => (matches!(self.security, Security::Responded { .. } | Security::Done), Stage::Operational),
            _ => (true, Stage::FullFeature),
        }
    }

    fn empty_request(&mut self) -> LoginRequest {
        self.request(&[], false, self.stage)
    }

    fn redirect(&self, resp: &LoginResponse) -> Result<LoginStep, Error> {
        let permanent = resp.status == iscsi_proto::pdu::LoginStatus::TARGET_MOVED_PERMANENTLY;
        let pairs = decode_text(&resp.data)
            .map_err(|e| self.negotiation_error(format!("redirect text: {e}")))?;
        let address = pairs
            .iter()
            .find(|(k, _)| k == "TargetAddress")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| self.negotiation_error("redirect without TargetAddress"))?;
        let portal: Portal = address
            .parse()
            .map_err(|e| self.negotiation_error(format!("redirect to {address:?}: {e}")))?;
        info!(%portal, permanent, "login redirected");
        Ok(LoginStep::Redirect { portal, permanent })
    }

    fn security_response(
        &mut self,
        resp: LoginResponse,
        pairs: Vec<(String, String)>,
    ) -> Result<LoginStep, Error> {
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        loop {
            match std::mem::replace(&mut self.security, Security::Done) {
                Security::AuthMethodOffered => {
                    let method = get("AuthMethod");
                    match (method, &self.config.chap) {
                        (Some("CHAP"), Some(chap)) => {
                            let offer = chap
                                .algorithms
                                .iter()
                                .map(|a| a.code().to_string())
                                .collect::<Vec<_>>()
                                .join(",");
                            self.security = Security::AlgorithmsOffered;
                            return Ok(LoginStep::Send(self.request(
                                &[("CHAP_A".into(), offer)],
                                false,
                                Stage::Security,
                            )));
                        }
                        (Some("None") | None, None) => {}
                        (Some("None") | None, Some(ChapConfig { target: Some(_), .. })) => {
                            return Err(self.auth_error("target did not agree to mutual CHAP"));
                        }
                        (Some("None") | None, Some(_)) => {
                            // One-way CHAP offered "CHAP,None": the target needs no
                            // authentication. Allowed, but worth a line.
                            info!("target does not require CHAP");
                        }
                        (Some(other), _) => {
                            return Err(self.auth_error(format!("target chose AuthMethod {other:?}")));
                        }
                    }
                    self.security = Security::Done;
                }
                Security::AlgorithmsOffered => {
                    let chap = self.config.chap.clone().expect("CHAP offered only when configured");
                    let offered: Vec<String> =
                        chap.algorithms.iter().map(|a| a.name().to_string()).collect();
                    let algorithm = match get("CHAP_A") {
                        Some(v) => v
                            .parse::<u64>()
                            .ok()
                            .and_then(ChapAlgorithm::from_code)
                            .filter(|a| chap.algorithms.contains(a)),
                        None => None,
                    };
                    let Some(algorithm) = algorithm else {
                        return Err(Error::ChapAlgorithmRejected { ctx: self.ctx(), offered: offered.join(",") });
                    };
                    let identifier = get("CHAP_I")
                        .and_then(|v| parse_number(v))
                        .filter(|v| *v <= 255)
                        .ok_or_else(|| self.auth_error("missing or invalid CHAP_I"))?
                        as u8;
                    let challenge = get("CHAP_C")
                        .ok_or_else(|| self.auth_error("missing CHAP_C"))
                        .and_then(|v| {
                            decode_binary(v).ok_or_else(|| self.auth_error("CHAP_C is not a binary value"))
                        })?;
                    if challenge.is_empty() || challenge.len() > MAX_CHALLENGE_LEN {
                        return Err(self.auth_error(format!(
                            "CHAP_C of {} bytes (1..={MAX_CHALLENGE_LEN} accepted)",
                            challenge.len()
                        )));
                    }
                    let response = algorithm.response(identifier, &chap.initiator.secret, &challenge);
                    let mut answer = vec![
                        ("CHAP_N".to_string(), chap.initiator.username.clone()),
                        ("CHAP_R".to_string(), chap::to_hex_value(&response)),
                    ];
                    let ours = if chap.target.is_some() {
                        let ours = OurChallenge::generate(&mut self.rng);
                        // A target replaying our own challenge is a reflection attack.
                        if ours.challenge == challenge {
                            return Err(self.auth_error("target reflected our challenge"));
                        }
                        answer.push(("CHAP_I".into(), ours.identifier.to_string()));
                        answer.push(("CHAP_C".into(), chap::to_hex_value(&ours.challenge)));
                        Some(ours)
                    } else {
                        None
                    };
                    debug!(algorithm = algorithm.name(), mutual = ours.is_some(), "answering CHAP challenge");
                    self.security = Security::Responded { algorithm, ours };
                    return Ok(LoginStep::Send(self.request(&answer, true, Stage::Operational)));
                }
                Security::Responded { algorithm, ours } => {
                    if let Some(ours) = ours {
                        let chap = self.config.chap.as_ref().expect("mutual CHAP configured");
                        let target = chap.target.as_ref().expect("mutual CHAP configured");
                        let name = get("CHAP_N").ok_or_else(|| self.auth_error("target sent no CHAP_N"))?;
                        if name != target.username {
                            return Err(self.auth_error(format!(
                                "target authenticated as {name:?}, expected {:?}",
                                target.username
                            )));
                        }
                        let response = get("CHAP_R")
                            .and_then(decode_binary)
                            .ok_or_else(|| self.auth_error("target sent no valid CHAP_R"))?;
                        if !ours.verify(algorithm, &target.secret, &response) {
                            return Err(self.auth_error("target's CHAP response is wrong (mutual CHAP)"));
                        }
                        info!("target authenticated (mutual CHAP)");
                    }
                    self.security = Security::Done;
                }
                Security::Done => {
                    self.security = Security::Done;
                    break;
                }
            }
        }
        // Authentication is complete; move on when the target does.
        if resp.transit {
            self.stage = resp.nsg;
            if self.stage == Stage::FullFeature {
                return Err(self.negotiation_error("target skipped operational negotiation"));
            }
            return Ok(LoginStep::Send(self.operational_request()));
        }
        Ok(LoginStep::Send(self.request(&[], true, Stage::Operational)))
    }

    /// Our operational offers, sent once, asking to go to full feature phase.
    fn operational_request(&mut self) -> LoginRequest {
        let pairs = if self.offered { Vec::new() } else { self.negotiation.offers() };
        self.offered = true;
        self.request(&pairs, true, Stage::FullFeature)
    }

    fn operational_response(
        &mut self,
        resp: LoginResponse,
        pairs: Vec<(String, String)>,
    ) -> Result<LoginStep, Error> {
        let replies = self
            .negotiation
            .handle_answers(&pairs)
            .map_err(|e| self.negotiation_error(e.to_string()))?;
        if resp.transit && resp.nsg == Stage::FullFeature {
            if !replies.is_empty() {
                return Err(self.negotiation_error("target moved on while offering keys"));
            }
            let params = operational_outcome(&self.negotiation, &self.config)
                .map_err(|e| self.negotiation_error(e))?;
            if resp.tsih == 0 {
                return Err(self.negotiation_error("final login response without a TSIH"));
            }
            return Ok(LoginStep::Done(LoginDone {
                params,
                tsih: resp.tsih,
                cmd_sn: self.cmd_sn,
                exp_cmd_sn: resp.exp_cmd_sn,
                max_cmd_sn: resp.max_cmd_sn,
                exp_stat_sn: self.exp_stat_sn,
            }));
        }
        // The target is not ready: answer what it offered, ask again to move on.
        Ok(LoginStep::Send(self.request(&replies, true, Stage::FullFeature)))
    }
}

fn digest_offer(pref: DigestPreference) -> &'static str {
    match pref {
        DigestPreference::None => "None",
        DigestPreference::Crc32c => "CRC32C",
        DigestPreference::PreferCrc32c => "CRC32C,None",
    }
}

/// The operational keys we offer, in a proposer-side negotiation.
fn operational_negotiation(config: &SessionConfig) -> Negotiation {
    let op = &config.operational;
    let mut n = Negotiation::new(Role::Initiator);
    n.offer("HeaderDigest", digest_offer(op.header_digest));
    n.offer("DataDigest", digest_offer(op.data_digest));
    n.offer("MaxRecvDataSegmentLength", &op.max_recv_data_segment_length.to_string());
    if !config.is_discovery() {
        n.offer("InitialR2T", if op.initial_r2t { "Yes" } else { "No" });
        n.offer("ImmediateData", if op.immediate_data { "Yes" } else { "No" });
        n.offer("MaxBurstLength", &op.max_burst_length.to_string());
        n.offer("FirstBurstLength", &op.first_burst_length.to_string());
        n.offer("MaxOutstandingR2T", &op.max_outstanding_r2t.to_string());
        n.offer("MaxConnections", "1");
        n.offer("DataPDUInOrder", "Yes");
        n.offer("DataSequenceInOrder", "Yes");
        n.offer("ErrorRecoveryLevel", "0");
        n.offer("DefaultTime2Wait", &op.default_time2wait.to_string());
        n.offer("DefaultTime2Retain", &op.default_time2retain.to_string());
    }
    n
}

/// Turns the negotiation outcome into the parameters the session runs with,
/// refusing outcomes we cannot honour.
fn operational_outcome(n: &Negotiation, config: &SessionConfig) -> Result<SessionParams, String> {
    let o = n.outcome();
    let params = SessionParams {
        header_digest: o.header_digest.is_crc32c(),
        data_digest: o.data_digest.is_crc32c(),
        max_recv_data_segment_length: config.operational.max_recv_data_segment_length,
        max_xmit_data_segment_length: o.target_max_recv_data_segment_length,
        max_burst_length: o.max_burst_length,
        first_burst_length: o.first_burst_length,
        initial_r2t: o.initial_r2t,
        immediate_data: o.immediate_data,
        max_outstanding_r2t: o.max_outstanding_r2t,
        data_pdu_in_order: o.data_pdu_in_order,
        data_sequence_in_order: o.data_sequence_in_order,
        error_recovery_level: o.error_recovery_level,
        default_time2wait: o.default_time2wait,
        default_time2retain: o.default_time2retain,
        max_connections: o.max_connections,
        target_alias: o.target_alias.clone(),
        target_portal_group_tag: o.target_portal_group_tag,
    };
    if !params.data_pdu_in_order {
        return Err("target requires DataPDUInOrder=No, which we do not support".into());
    }
    if params.error_recovery_level != 0 {
        return Err(format!("ErrorRecoveryLevel {} negotiated; we run 0", params.error_recovery_level));
    }
    let required = |pref: DigestPreference, on: bool| pref != DigestPreference::Crc32c || on;
    if !required(config.operational.header_digest, params.header_digest)
        || !required(config.operational.data_digest, params.data_digest)
    {
        return Err("target refused the CRC32C digests we require".into());
    }
    Ok(params)
}

/// Encodes key=value pairs as a text data segment.
pub(crate) fn encode_text(pairs: &[(&str, &str)]) -> Bytes {
    let owned: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Bytes::from(iscsi_proto::text::encode_pairs(&owned))
}

/// Decodes a complete text data segment into pairs.
pub(crate) fn decode_text(data: &[u8]) -> Result<Vec<(String, String)>, iscsi_proto::text::TextError> {
    Ok(iscsi_proto::text::parse_pairs(data)?.into_iter().map(|kv| (kv.key, kv.value)).collect())
}

/// A numeric text value: decimal or `0x` hex.
fn parse_number(v: &str) -> Option<u64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// A binary text value: `0x` hex or `0b` base64 (§5.1).
fn decode_binary(v: &str) -> Option<Vec<u8>> {
    iscsi_proto::text::decode_binary(v).ok()
}
