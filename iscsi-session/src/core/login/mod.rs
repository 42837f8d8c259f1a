//! The login phase (RFC 7143 §6.3): security negotiation with CHAP, then
//! operational negotiation, then the step into full feature phase.
//!
//! [`Login`] is a sans-IO state machine: every Login Response goes in, and the
//! next Login Request, the negotiated outcome, a redirect or an error comes out.
//! All text goes through iscsi-proto's [`Negotiation`], which checks every
//! answer against the key table and computes the outcome from both offers.

use std::sync::Arc;

use bytes::Bytes;
use iscsi_proto::pdu::{ISCSI_VERSION, Isid, Itt, LoginRequest, LoginResponse, LoginStatus, Stage};
use iscsi_proto::text::{
    Digest, KeyStatus, Negotiation, OperationalParams, Policy, Role, TextAssembler, TextError,
    TextLimits, encode_pairs,
};
use rand::rngs::StdRng;
use tracing::{debug, info};

use crate::core::chap::{self, ChapAlgorithm, MAX_CHALLENGE_LEN, OurChallenge};
use crate::core::config::{ChapConfig, DigestPreference, SessionConfig};
use crate::core::error::{Error, PathContext};
use crate::core::portal::Portal;
use crate::core::text::decode_text;

/// Login round trips we allow before calling the target hostile.
const MAX_LOGIN_EXCHANGES: u32 = 32;

/// Data segment limit for login PDUs in both directions (§13.12 default).
const LOGIN_SEGMENT: usize = 8192;

/// The operational keys both sides must agree on for the session to work:
/// a wrong guess about the digests breaks the framing of every PDU, one
/// about the others the data transfer (a write waiting for an R2T the target
/// never sends, or data the target does not expect). DefaultTime2Wait and
/// DefaultTime2Retain are not among them: they only time a reconnect.
const KEYS_THAT_MATTER: &[&str] = &[
    "HeaderDigest",
    "DataDigest",
    "InitialR2T",
    "ImmediateData",
    "MaxBurstLength",
    "FirstBurstLength",
    "MaxOutstandingR2T",
    "MaxConnections",
    "DataPDUInOrder",
    "DataSequenceInOrder",
    "ErrorRecoveryLevel",
];

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
    pub params: OperationalParams,
    /// The algorithm CHAP used; `None` without CHAP.
    pub chap_algorithm: Option<ChapAlgorithm>,
    pub tsih: u16,
    pub cmd_sn: u32,
    pub exp_cmd_sn: u32,
    pub max_cmd_sn: u32,
    pub exp_stat_sn: u32,
}

/// What an authentication refusal tells, beyond the error itself
/// ([`Connection::chap_diagnosis`](crate::Connection::chap_diagnosis)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChapDiagnosis {
    /// Refused after we answered and challenged the target in one PDU: our
    /// CHAP_N/CHAP_R, or its own missing outgoing account? tgtd answers both
    /// with the same bare 0201; a credentials check can tell them apart.
    RefusedAfterMutualChallenge,
    /// Credentials check: the target accepted our response alone.
    OursAccepted,
    /// Credentials check: the target refused our response alone too.
    OursRefused,
}

#[derive(Debug)]
enum Security {
    /// We offered AuthMethod and wait for the target's choice.
    AuthMethodOffered,
    /// We sent CHAP_A and wait for CHAP_A/CHAP_I/CHAP_C.
    AlgorithmsOffered,
    /// We answered (and challenged, for mutual CHAP) and wait for the verdict.
    Responded {
        algorithm: ChapAlgorithm,
        ours: Option<OurChallenge>,
    },
    /// Authentication done (or None agreed).
    Done,
}

/// The login state machine of one connection. `Debug` leaves out the text
/// being sent, which carries our CHAP response.
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
    assembler: TextAssembler,
    /// Our text still to send, for requests continued over several PDUs.
    pending_text: Vec<u8>,
    /// T and NSG of the request being sent in pieces.
    pending_transit: Option<Stage>,
    exchanges: u32,
    rng: StdRng,
    /// A diagnostic login: answer the target's CHAP challenge without
    /// challenging it back, and stop at its verdict.
    credentials_check: bool,
    diagnosis: Option<ChapDiagnosis>,
    chap_algorithm: Option<ChapAlgorithm>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("ctx", &self.ctx)
            .field("isid", &self.isid)
            .field("tsih", &self.tsih)
            .field("stage", &self.stage)
            .field("security", &self.security)
            .field("negotiation", &self.negotiation)
            .field("pending_text_len", &self.pending_text.len())
            .field("exchanges", &self.exchanges)
            .field("credentials_check", &self.credentials_check)
            .finish_non_exhaustive()
    }
}

impl Login {
    pub fn new(
        config: Arc<SessionConfig>,
        ctx: PathContext,
        tsih: u16,
        cmd_sn: u32,
        rng: StdRng,
    ) -> Self {
        let mut negotiation = Negotiation::new(Role::Initiator, policy(&config));
        negotiation.set_stage(Stage::Security);
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
            assembler: TextAssembler::new(TextLimits::DEFAULT),
            pending_text: Vec::new(),
            pending_transit: None,
            exchanges: 0,
            rng,
            credentials_check: false,
            diagnosis: None,
            chap_algorithm: None,
        }
    }

    /// Makes this login a credentials check (see [`ChapDiagnosis`]): after
    /// a mutual CHAP login was refused, it tells whether the target accepts
    /// our CHAP_N/CHAP_R when not challenged. It never reaches operational
    /// negotiation: it ends with the verdict as its error. It sends nothing
    /// the refused login did not (our response to a fresh challenge).
    pub fn check_credentials_only(mut self) -> Self {
        self.credentials_check = true;
        self
    }

    /// What the failed login found out, for the driver.
    pub fn diagnosis(&self) -> Option<ChapDiagnosis> {
        self.diagnosis
    }

    fn ctx(&self) -> PathContext {
        self.ctx.clone()
    }

    fn negotiation_error(&self, reason: impl Into<String>) -> Error {
        Error::Negotiation {
            ctx: self.ctx(),
            reason: reason.into(),
        }
    }

    fn auth_error(&self, reason: impl Into<String>) -> Error {
        Error::Authentication {
            ctx: self.ctx(),
            reason: reason.into(),
        }
    }

    /// A target text the key table refuses. During CHAP that is an
    /// authentication failure (e.g. a CHAP_C over 1024 bytes), not a mere
    /// negotiation problem.
    fn text_error(&self, e: TextError) -> Error {
        match self.security {
            Security::AlgorithmsOffered | Security::Responded { .. } => {
                self.auth_error(format!("login text: {e}"))
            }
            _ => match e {
                // An answer outside our offer: the two sides would run with
                // different values. Said the way a refusal is (`disagreement`).
                TextError::IllegalAnswer {
                    key,
                    offered,
                    answer,
                    reason,
                } => self.negotiation_error(format!(
                    "{key}: we offered {offered}, the target answered {answer} ({reason})"
                )),
                e => self.negotiation_error(format!("login text: {e}")),
            },
        }
    }

    fn offer(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.negotiation
            .offer(key, value)
            .map_err(|e| self.negotiation_error(format!("our own {key}: {e}")))
    }

    /// The first Login Request: who we are, where we go, how we authenticate.
    pub fn start(&mut self) -> Result<LoginRequest, Error> {
        let config = self.config.clone();
        self.offer("InitiatorName", &config.initiator_name)?;
        if let Some(alias) = &config.initiator_alias {
            self.offer("InitiatorAlias", alias)?;
        }
        match &config.target_name {
            Some(target) => {
                self.offer("SessionType", "Normal")?;
                self.offer("TargetName", target)?;
            }
            None => self.offer("SessionType", "Discovery")?,
        }
        let methods = match &config.chap {
            // The check is about our CHAP response: None would tell nothing.
            Some(_) if self.credentials_check => "CHAP",
            // With mutual CHAP the target must prove itself: None is no option.
            Some(ChapConfig {
                target: Some(_), ..
            }) => "CHAP",
            Some(_) => "CHAP,None",
            None => "None",
        };
        self.offer("AuthMethod", methods)?;
        // Without CHAP we are ready to move on at once; with it the target
        // first picks the method.
        let transit = config.chap.is_none().then_some(Stage::Operational);
        self.send_outgoing(transit)
    }

    /// Sends what the negotiation queued (our offers and answers), in pieces
    /// with the C bit when it exceeds one segment (§6.3 and §11.12.2).
    fn send_outgoing(&mut self, transit: Option<Stage>) -> Result<LoginRequest, Error> {
        let pairs = self.negotiation.take_outgoing();
        self.pending_text = encode_pairs(&pairs)
            .map_err(|e| self.negotiation_error(format!("encoding our login text: {e}")))?;
        self.pending_transit = transit;
        Ok(self.next_piece())
    }

    fn next_piece(&mut self) -> LoginRequest {
        let take = self.pending_text.len().min(LOGIN_SEGMENT);
        let piece: Vec<u8> = self.pending_text.drain(..take).collect();
        let more = !self.pending_text.is_empty();
        let transit = if more { None } else { self.pending_transit };
        LoginRequest {
            transit: transit.is_some(),
            continue_: more,
            csg: self.stage,
            nsg: transit.unwrap_or(self.stage),
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
            return Err(self.negotiation_error("the target keeps the login going without end"));
        }
        self.exp_stat_sn = resp.stat_sn.wrapping_add(1);
        if resp.status.is_redirect() {
            return self.redirect(&resp);
        }
        if !resp.status.is_success() {
            return Err(self.failure(resp.status));
        }
        if resp.version_active != ISCSI_VERSION {
            return Err(self.negotiation_error(format!(
                "the target speaks iSCSI version {:#04x}",
                resp.version_active
            )));
        }
        if resp.isid != self.isid {
            return Err(self.negotiation_error("the target answered with another ISID"));
        }
        if resp.csg != self.stage {
            return Err(self.negotiation_error(format!(
                "the target answered in the {} stage while we are in the {}",
                resp.csg.as_str(),
                self.stage.as_str()
            )));
        }
        // Our text did not fit one PDU: the target acknowledges each piece
        // with an empty response; send the next.
        if !self.pending_text.is_empty() {
            return Ok(LoginStep::Send(self.next_piece()));
        }
        let pairs = match self.assembler.push(&resp.data, resp.continue_) {
            Ok(Some(pairs)) => pairs,
            // §6.3: a continued response is answered with an empty request.
            Ok(None) => {
                self.pending_transit = None;
                return Ok(LoginStep::Send(self.next_piece()));
            }
            Err(e) => return Err(self.text_error(e)),
        };
        self.negotiation.set_stage(self.stage);
        self.negotiation
            .receive(&pairs)
            .map_err(|e| self.text_error(e))?;
        match self.stage {
            Stage::Security => self.security_response(&resp),
            Stage::Operational => self.operational_response(&resp),
            Stage::FullFeature => {
                Err(self.negotiation_error("Login Response in full feature phase"))
            }
        }
    }

    /// Maps a failed login status to an error. A refusal right after our
    /// CHAP_A list is how some targets reject an algorithm they do not know.
    fn failure(&mut self, status: LoginStatus) -> Error {
        // Only "initiator error" and "authentication failure" can mean the
        // target did not like an algorithm; anything else is what it says.
        let chap_refusal =
            status == LoginStatus::INITIATOR_ERROR || status == LoginStatus::AUTHENTICATION_FAILURE;
        let algorithm_suspect = match &self.security {
            // A refusal right after our CHAP_A list: some targets reject an
            // algorithm they do not know that way.
            Security::AlgorithmsOffered => true,
            // tgtd (and IET before it) number SHA-1 as CHAP_A 7, which IANA
            // gives SHA-256: they pick 7, then refuse our SHA-256 answer.
            Security::Responded { algorithm, .. } => *algorithm != ChapAlgorithm::Md5,
            _ => false,
        };
        if chap_refusal && algorithm_suspect {
            return Error::ChapAlgorithmRejected {
                ctx: self.ctx(),
                offered: self.offered_algorithms(),
                status: Some(status),
            };
        }
        if status == LoginStatus::AUTHENTICATION_FAILURE
            || (matches!(self.security, Security::Responded { .. }) && status.is_initiator_error())
        {
            let reason = self.refusal(status);
            return self.auth_error(reason);
        }
        Error::LoginRejected {
            ctx: self.ctx(),
            status,
        }
    }

    /// What the target refused, as far as its answer tells. tgtd answers a
    /// bare 0201 whether the user name is unknown or the secret wrong, hence
    /// "or". Names the user, never the secret.
    fn refusal(&mut self, status: LoginStatus) -> String {
        let code = format!("status {:02x}{:02x}", status.class, status.detail);
        let Some(chap) = &self.config.chap else {
            // tgtd answers AuthMethod=Reject and 0201 to our "None".
            return format!(
                "the target requires authentication and no CHAP credentials were given ({code})"
            );
        };
        let user = &chap.initiator.username;
        match &self.security {
            Security::Responded { ours: Some(_), .. }
                if status == LoginStatus::AUTHENTICATION_FAILURE =>
            {
                self.diagnosis = Some(ChapDiagnosis::RefusedAfterMutualChallenge);
                format!(
                    "the target refused the login after we challenged it for mutual CHAP \
                     ({code}): either our user name {user:?} or its secret is wrong, or it has \
                     no outgoing (mutual) account for this target"
                )
            }
            Security::Responded { ours: None, .. }
                if status == LoginStatus::AUTHENTICATION_FAILURE =>
            {
                if self.credentials_check {
                    self.diagnosis = Some(ChapDiagnosis::OursRefused);
                }
                format!("the target refused our user name {user:?} or its secret ({code})")
            }
            Security::Responded { .. } => {
                format!("the target refused the login after our CHAP response: {status}")
            }
            // tgtd answers AuthMethod=Reject and 0201 to "CHAP" when the
            // target has no CHAP account at all.
            Security::AuthMethodOffered => format!(
                "the target refused to authenticate with CHAP ({code}): it may have no CHAP \
                 account for this target"
            ),
            _ => format!("the target refused the login: {status}"),
        }
    }

    fn offered_algorithms(&self) -> String {
        self.config
            .chap
            .iter()
            .flat_map(|c| c.algorithms.iter().map(|a| a.name()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn redirect(&self, resp: &LoginResponse) -> Result<LoginStep, Error> {
        let permanent = resp.status == LoginStatus::TARGET_MOVED_PERMANENTLY;
        let pairs = decode_text(&resp.data)
            .map_err(|e| self.negotiation_error(format!("redirect text: {e}")))?;
        let address = pairs
            .iter()
            .find(|kv| kv.key == "TargetAddress")
            .map(|kv| kv.value.as_str())
            .ok_or_else(|| self.negotiation_error("redirect without TargetAddress"))?;
        let portal: Portal = address
            .parse()
            .map_err(|e| self.negotiation_error(format!("redirect to {address:?}: {e}")))?;
        info!(%portal, permanent, "login redirected");
        Ok(LoginStep::Redirect { portal, permanent })
    }

    fn agreed(&self, key: &str) -> Option<String> {
        match self.negotiation.status(key) {
            Some(KeyStatus::Agreed(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// The first of `keys` the target has sent already, if any: CHAP keys
    /// ahead of their step in RFC 7143 §12.1.3 (a challenge before our
    /// CHAP_A offer, the target's CHAP_N or CHAP_R before our challenge).
    fn sent_early(&self, keys: &[&'static str]) -> Option<&'static str> {
        keys.iter()
            .copied()
            .find(|key| self.negotiation.peer_declaration(key).is_some())
    }

    fn security_response(&mut self, resp: &LoginResponse) -> Result<LoginStep, Error> {
        match std::mem::replace(&mut self.security, Security::Done) {
            Security::AuthMethodOffered => {
                if let Some(key) = self.sent_early(&["CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"]) {
                    return Err(
                        self.auth_error(format!("the target sent {key} before we offered CHAP_A"))
                    );
                }
                let method = self.agreed("AuthMethod");
                match (method.as_deref(), self.config.chap.clone()) {
                    (Some("CHAP"), Some(chap)) => {
                        let list = chap
                            .algorithms
                            .iter()
                            .map(|a| a.code().to_string())
                            .collect::<Vec<_>>()
                            .join(",");
                        self.offer("CHAP_A", &list)?;
                        self.security = Security::AlgorithmsOffered;
                        return Ok(LoginStep::Send(self.send_outgoing(None)?));
                    }
                    (
                        Some("None") | None,
                        Some(ChapConfig {
                            target: Some(_), ..
                        }),
                    ) => {
                        return Err(self.auth_error("the target did not agree to mutual CHAP"));
                    }
                    (Some("None"), Some(_)) => {
                        // One-way CHAP offered "CHAP,None": the target needs no
                        // authentication. Allowed, but worth a line.
                        info!("the target does not require CHAP");
                    }
                    (Some("None") | None, None) => {}
                    (Some(other), _) => {
                        return Err(
                            self.auth_error(format!("the target chose AuthMethod {other:?}"))
                        );
                    }
                    (None, Some(_)) => {
                        return Err(self.auth_error("the target did not agree to CHAP"));
                    }
                }
            }
            Security::AlgorithmsOffered => return self.answer_challenge(),
            Security::Responded { algorithm, ours } => {
                if self.credentials_check {
                    self.diagnosis = Some(ChapDiagnosis::OursAccepted);
                    let user = self
                        .config
                        .chap
                        .as_ref()
                        .map(|c| c.initiator.username.as_str())
                        .unwrap_or_default();
                    return Err(self.auth_error(format!(
                        "the target refused the login after we challenged it for mutual CHAP, \
                         though it accepts our user name {user:?} and secret: it may have no \
                         outgoing (mutual) account for this target"
                    )));
                }
                if let Some(ours) = ours {
                    self.verify_target(algorithm, &ours)?;
                }
            }
            Security::Done => {}
        }
        // Authentication is complete; move on when the target does.
        if resp.transit {
            if resp.nsg != Stage::Operational {
                return Err(self.negotiation_error("the target skipped operational negotiation"));
            }
            self.stage = Stage::Operational;
            self.negotiation.set_stage(Stage::Operational);
            self.offer_operational()?;
            return Ok(LoginStep::Send(
                self.send_outgoing(Some(Stage::FullFeature))?,
            ));
        }
        Ok(LoginStep::Send(
            self.send_outgoing(Some(Stage::Operational))?,
        ))
    }

    /// Answers CHAP_A/CHAP_I/CHAP_C with CHAP_N/CHAP_R, and challenges the
    /// target in turn for mutual CHAP.
    fn answer_challenge(&mut self) -> Result<LoginStep, Error> {
        let chap = self
            .config
            .chap
            .clone()
            .ok_or_else(|| self.auth_error("CHAP without credentials"))?;
        let algorithm = self
            .agreed("CHAP_A")
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(ChapAlgorithm::from_code)
            .filter(|a| chap.algorithms.contains(a));
        let Some(algorithm) = algorithm else {
            return Err(Error::ChapAlgorithmRejected {
                status: None,
                ctx: self.ctx(),
                offered: self.offered_algorithms(),
            });
        };
        let identifier = self
            .negotiation
            .peer_declaration("CHAP_I")
            .and_then(|v| iscsi_proto::text::value::parse_number(v).ok())
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| self.auth_error("missing or invalid CHAP_I"))?;
        let challenge = self
            .negotiation
            .peer_declaration("CHAP_C")
            .ok_or_else(|| self.auth_error("missing CHAP_C"))
            .and_then(|v| {
                iscsi_proto::text::value::parse_binary(v)
                    .map_err(|_| self.auth_error("CHAP_C is not a binary value"))
            })?;
        if challenge.is_empty() || challenge.len() > MAX_CHALLENGE_LEN {
            return Err(self.auth_error(format!(
                "CHAP_C of {} bytes (1..={MAX_CHALLENGE_LEN} accepted)",
                challenge.len()
            )));
        }
        let response = algorithm.response(identifier, &chap.initiator.secret, &challenge);
        self.offer("CHAP_N", &chap.initiator.username)?;
        self.offer("CHAP_R", &chap::to_hex_value(&response))?;
        if let Some(key) = self.sent_early(&["CHAP_N", "CHAP_R"]) {
            return Err(self.auth_error(format!(
                "the target sent {key} with its challenge, before answering ours"
            )));
        }
        let ours = match &chap.target {
            Some(_) if !self.credentials_check => {
                let ours = OurChallenge::generate(&mut self.rng);
                // Ours is drawn after theirs arrived, so equality means a broken
                // random source; answering a challenge equal to our own would
                // hand out exactly the response a reflection attack wants.
                if ours.challenge == challenge {
                    return Err(self.auth_error("the target reflected our challenge"));
                }
                self.offer("CHAP_I", &ours.identifier.to_string())?;
                self.offer("CHAP_C", &chap::to_hex_value(&ours.challenge))?;
                Some(ours)
            }
            _ => None,
        };
        debug!(
            algorithm = algorithm.name(),
            mutual = ours.is_some(),
            "answering the CHAP challenge"
        );
        self.security = Security::Responded { algorithm, ours };
        self.chap_algorithm = Some(algorithm);
        Ok(LoginStep::Send(
            self.send_outgoing(Some(Stage::Operational))?,
        ))
    }

    /// Mutual CHAP: the target's CHAP_N must name it and its CHAP_R must
    /// answer our challenge with the target secret.
    fn verify_target(&self, algorithm: ChapAlgorithm, ours: &OurChallenge) -> Result<(), Error> {
        let expected = self
            .config
            .chap
            .as_ref()
            .and_then(|c| c.target.as_ref())
            .ok_or_else(|| self.auth_error("mutual CHAP without target credentials"))?;
        let name = self
            .negotiation
            .peer_declaration("CHAP_N")
            .ok_or_else(|| self.auth_error("the target sent no CHAP_N"))?;
        if name != expected.username {
            return Err(self.auth_error(format!(
                "the target authenticated as {name:?}, expected {:?}",
                expected.username
            )));
        }
        let response = self
            .negotiation
            .peer_declaration("CHAP_R")
            .and_then(|v| iscsi_proto::text::value::parse_binary(v).ok())
            .ok_or_else(|| self.auth_error("the target sent no valid CHAP_R"))?;
        if !ours.verify(algorithm, &expected.secret, &response) {
            return Err(self.auth_error("the target's CHAP response is wrong (mutual CHAP)"));
        }
        info!("target authenticated (mutual CHAP)");
        Ok(())
    }

    /// Our operational offers, each from the policy built from the config.
    fn offer_operational(&mut self) -> Result<(), Error> {
        let keys: &[&str] = if self.config.is_discovery() {
            &["HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"]
        } else {
            &[
                "HeaderDigest",
                "DataDigest",
                "MaxRecvDataSegmentLength",
                "InitialR2T",
                "ImmediateData",
                "MaxBurstLength",
                "FirstBurstLength",
                "MaxOutstandingR2T",
                "MaxConnections",
                "DataPDUInOrder",
                "DataSequenceInOrder",
                "ErrorRecoveryLevel",
                "DefaultTime2Wait",
                "DefaultTime2Retain",
            ]
        };
        for key in keys {
            self.negotiation
                .offer_from_policy(key)
                .map_err(|e| self.negotiation_error(format!("our own {key}: {e}")))?;
        }
        Ok(())
    }

    fn operational_response(&mut self, resp: &LoginResponse) -> Result<LoginStep, Error> {
        if resp.transit && resp.nsg == Stage::FullFeature {
            if self.negotiation.has_outgoing() {
                return Err(self.negotiation_error("the target moved on while offering keys"));
            }
            let pending = self.negotiation.pending_keys();
            if !pending.is_empty() {
                debug!(
                    ?pending,
                    "keys the target left unanswered keep their defaults"
                );
            }
            let params = self.outcome()?;
            if resp.tsih == 0 {
                return Err(self.negotiation_error("final login response without a TSIH"));
            }
            if self.tsih != 0 && resp.tsih != self.tsih {
                return Err(self.negotiation_error("the target changed the TSIH"));
            }
            return Ok(LoginStep::Done(LoginDone {
                params,
                chap_algorithm: self.chap_algorithm,
                tsih: resp.tsih,
                cmd_sn: self.cmd_sn,
                exp_cmd_sn: resp.exp_cmd_sn,
                max_cmd_sn: resp.max_cmd_sn,
                exp_stat_sn: self.exp_stat_sn,
            }));
        }
        // The target is not ready: answer what it offered, ask again to move on.
        Ok(LoginStep::Send(
            self.send_outgoing(Some(Stage::FullFeature))?,
        ))
    }

    /// Refuses a session whose keys that matter (`KEYS_THAT_MATTER`) were
    /// not agreed: RFC 7143 §6.2 says a `Reject`, `Irrelevant` or
    /// `NotUnderstood` answer leaves the default in force on both sides, but
    /// a target may do otherwise (istgt answers `HeaderDigest=Reject` to our
    /// `None` when it requires digests, then frames its PDUs with them), and
    /// a session the two sides understand differently only hangs. Exempt: an
    /// offer that decides alone (ImmediateData=No, InitialR2T=Yes: the
    /// conservative value is in force on both sides whatever the answer),
    /// and an `Irrelevant` the RFC itself calls for.
    fn check_agreement(&self) -> Result<(), Error> {
        for &key in KEYS_THAT_MATTER {
            let answer = match self.negotiation.status(key) {
                Some(KeyStatus::Rejected) => "Reject",
                Some(KeyStatus::Irrelevant) => {
                    if self.negotiation.irrelevance_expected(key) {
                        continue;
                    }
                    "Irrelevant"
                }
                Some(KeyStatus::NotUnderstood) => "NotUnderstood",
                _ => continue,
            };
            // Only our own offers: a key the target offered and we refused is
            // one it knows we do not use.
            let Some(offered) = self.negotiation.our_offer(key) else {
                continue;
            };
            if self.negotiation.offer_decides(key) {
                continue;
            }
            return Err(self.negotiation_error(format!(
                "{key}: we offered {offered:?}, the target answered {answer:?}: which value it \
                 uses is unknown, and a wrong guess {}",
                consequence(key, &offered)
            )));
        }
        Ok(())
    }

    /// The negotiated parameters, refusing outcomes we cannot honour.
    fn outcome(&self) -> Result<OperationalParams, Error> {
        let params = self.negotiation.outcome();
        let op = &self.config.operational;
        if params.error_recovery_level != 0 {
            return Err(self.negotiation_error(format!(
                "ErrorRecoveryLevel {} negotiated; we run 0",
                params.error_recovery_level
            )));
        }
        self.check_agreement()?;
        // Answers outside our offer and refusals are caught above; this is a
        // required digest the target left unanswered (its default in force).
        for (key, pref, got) in [
            ("HeaderDigest", op.header_digest, params.header_digest),
            ("DataDigest", op.data_digest, params.data_digest),
        ] {
            if pref == DigestPreference::Crc32c && got != Digest::Crc32c {
                return Err(self.negotiation_error(format!(
                    "{key}: we require \"CRC32C\", the target left it unanswered ({:?} in force)",
                    got.as_str()
                )));
            }
        }
        if params.max_xmit_data_segment_length < 512 {
            return Err(
                self.negotiation_error("the target declared a MaxRecvDataSegmentLength below 512")
            );
        }
        Ok(params)
    }
}

/// What a wrong guess about `key` breaks, and what to try, for an error.
fn consequence(key: &str, offered: &str) -> String {
    let url_key = match key {
        "HeaderDigest" => "header_digest",
        "DataDigest" => "data_digest",
        _ => return "breaks data transfer".into(),
    };
    if offered == "None" {
        // The case of istgt with `UseDigest Header Data`.
        format!(
            "breaks the framing of every PDU; the target may require CRC32C \
             ({url_key}=none_crc32c lets it choose)"
        )
    } else {
        "breaks the framing of every PDU".into()
    }
}

/// What we offer and accept, per key: our offers come from it and the
/// target's own offers are answered from it.
fn policy(config: &SessionConfig) -> Policy {
    let op = &config.operational;
    let entries: [(&str, String); 14] = [
        ("HeaderDigest", op.header_digest.offer().into()),
        ("DataDigest", op.data_digest.offer().into()),
        (
            "MaxRecvDataSegmentLength",
            op.max_recv_data_segment_length.to_string(),
        ),
        ("InitialR2T", yes_no(op.initial_r2t)),
        ("ImmediateData", yes_no(op.immediate_data)),
        ("MaxBurstLength", op.max_burst_length.to_string()),
        ("FirstBurstLength", op.first_burst_length.to_string()),
        ("MaxOutstandingR2T", op.max_outstanding_r2t.to_string()),
        ("MaxConnections", "1".into()),
        ("DataPDUInOrder", "Yes".into()),
        ("DataSequenceInOrder", "Yes".into()),
        ("ErrorRecoveryLevel", "0".into()),
        ("DefaultTime2Wait", op.default_time2wait.to_string()),
        ("DefaultTime2Retain", op.default_time2retain.to_string()),
    ];
    let mut policy = Policy::new();
    for (key, value) in entries {
        // Values were range-checked by `SessionConfig::validate`.
        if let Err(e) = policy.set(key, &value) {
            debug!(key, error = %e, "policy value refused; the RFC default stays");
        }
    }
    policy
}

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.into()
}

#[cfg(test)]
mod tests;
