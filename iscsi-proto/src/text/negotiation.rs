//! The text negotiation engine (RFC 7143 §6), usable by either side.
//!
//! One [`Negotiation`] follows one connection's login (and later text
//! exchanges). It plays both roles of RFC 7143 at once, since each side may
//! offer keys:
//!
//! - as **proposer** it sends our offers ([`Negotiation::offer`]) and checks
//!   each answer against the key's result function; an answer the function
//!   does not allow is [`TextError::IllegalAnswer`] (RFC 7143: close the
//!   connection);
//! - as **responder** it answers the peer's offers from our [`Policy`] with
//!   the key's result function, `NotUnderstood` for unknown keys,
//!   `Irrelevant` where RFC 7143 says so, and `Reject` for malformed or
//!   out-of-range offers.
//!
//! Declarative keys (names, aliases, MaxRecvDataSegmentLength, ...) need no
//! answer: each side's declaration is recorded as its own.
//!
//! Usage: `offer` what we want, send [`Negotiation::take_outgoing`], feed
//! every received text to [`Negotiation::receive`], send `take_outgoing`
//! again (answers to the peer's offers), and repeat until
//! [`Negotiation::is_settled`]. [`Negotiation::outcome`] gives the typed
//! parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::error::{Snippet, TextError};
use super::keys::{self, Irrelevance, KeyDef, ResultFunction, Role, Stage, ValueType};
use super::pairs::{KeyValue, check_key, check_value};
use super::params::{Digest, OperationalParams, SessionType, TaskReporting, narrow};
use super::policy::{Policy, check_local_value};
use super::rules::{Selection, check_answer, decided_by_offer, select};
use super::value::{self, Value};

/// Where a negotiated (non-declarative) key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStatus {
    /// We offered this value and wait for the answer.
    Pending {
        /// Our offer.
        offered: String,
    },
    /// Both sides use this value.
    Agreed(String),
    /// Answered `NotUnderstood`: the default stays in force.
    NotUnderstood,
    /// Answered `Irrelevant`: the default stays in force.
    Irrelevant,
    /// Answered `Reject`: the default stays in force; the proposer may
    /// offer again or give up.
    Rejected,
}

/// One negotiated key.
#[derive(Debug, Clone)]
struct Entry {
    status: KeyStatus,
    /// Who made the offer.
    proposer: Role,
    /// Our offer, typed (for checking the answer); `None` for unknown keys.
    offered: Option<Value>,
    /// Our offer decided the outcome by itself (AND/No, OR/Yes).
    decided: bool,
}

/// Text negotiation state for one connection.
#[derive(Clone)]
pub struct Negotiation {
    role: Role,
    policy: Policy,
    stage: Stage,
    leading: bool,
    negotiated: BTreeMap<String, Entry>,
    local_declarations: BTreeMap<String, Vec<String>>,
    peer_declarations: BTreeMap<String, Vec<String>>,
    /// Keys the peer has sent, to catch repeats.
    received: BTreeSet<String>,
    outgoing: Vec<KeyValue>,
}

/// The order in which a received batch is processed: declarations (e.g.
/// SessionType) and answers first, then offers, and FirstBurstLength last
/// because its relevance and cap depend on keys of the same batch.
fn processing_rank(kv: &KeyValue) -> u8 {
    match keys::lookup(&kv.key) {
        Some(def) if def.result == ResultFunction::Declarative => 0,
        Some(def) if def.irrelevant == Irrelevance::DiscoveryOrNoUnsolicitedData => 2,
        _ => 1,
    }
}

impl Negotiation {
    /// A fresh negotiation for `role`, answering from `policy`. It starts in
    /// the operational stage on a leading connection; see
    /// [`Negotiation::set_stage`] and [`Negotiation::set_leading`].
    pub fn new(role: Role, policy: Policy) -> Self {
        Self {
            role,
            policy,
            stage: Stage::Operational,
            leading: true,
            negotiated: BTreeMap::new(),
            local_declarations: BTreeMap::new(),
            peer_declarations: BTreeMap::new(),
            received: BTreeSet::new(),
            outgoing: Vec::new(),
        }
    }

    /// The side we speak for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The stage the next texts belong to (security, operational, full
    /// feature). Keys outside their allowed stages are refused.
    pub fn set_stage(&mut self, stage: Stage) {
        self.stage = stage;
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Whether this is the session's leading connection; leading-only keys
    /// are refused on the others.
    pub fn set_leading(&mut self, leading: bool) {
        self.leading = leading;
    }

    /// Queues an offer (or, for a declarative key, a declaration) of
    /// `value` for `key`.
    ///
    /// Known keys are checked against the table: who may send them, the
    /// stage, leading-only, and the value. Unknown keys (e.g. `X-` vendor
    /// keys) are accepted with any syntactically valid value.
    pub fn offer(&mut self, key: &str, value: &str) -> Result<(), TextError> {
        check_key(key)?;
        if value.contains('\0') {
            return Err(TextError::NulInValue {
                key: key.to_owned(),
            });
        }
        check_value(key, value)?;
        let Some(def) = keys::lookup(key) else {
            self.start_offer(key, value, None, false)?;
            return Ok(());
        };
        self.check_usage(def, self.role)?;
        let parsed = check_local_value(def, value)?;
        if def.result == ResultFunction::Declarative {
            let declared = self.local_declarations.entry(key.to_owned()).or_default();
            if !declared.is_empty() && !def.repeatable {
                return Err(TextError::AlreadyNegotiated {
                    key: key.to_owned(),
                });
            }
            declared.push(value.to_owned());
            self.outgoing.push(KeyValue::new(key, value));
            return Ok(());
        }
        let decided = decided_by_offer(def, &parsed);
        self.start_offer(key, value, Some(parsed), decided)
    }

    /// Offers `key` with our policy value (or its default).
    pub fn offer_from_policy(&mut self, key: &str) -> Result<(), TextError> {
        let def = keys::lookup(key).ok_or_else(|| TextError::UnknownKey {
            key: Snippet::new(key),
        })?;
        let value = match self.policy.get(key) {
            Some(v) => v.to_owned(),
            None => def
                .default
                .ok_or_else(|| TextError::InvalidValue {
                    key: key.to_owned(),
                    value: Snippet::new(""),
                    reason: "no policy value and no default",
                })?
                .to_owned(),
        };
        self.offer(key, &value)
    }

    fn start_offer(
        &mut self,
        key: &str,
        value: &str,
        offered: Option<Value>,
        decided: bool,
    ) -> Result<(), TextError> {
        if let Some(entry) = self.negotiated.get(key) {
            if entry.status != KeyStatus::Rejected {
                return Err(TextError::AlreadyNegotiated {
                    key: key.to_owned(),
                });
            }
            // Offering again after a Reject: the peer answers once more.
            self.received.remove(key);
        }
        self.negotiated.insert(
            key.to_owned(),
            Entry {
                status: KeyStatus::Pending {
                    offered: value.to_owned(),
                },
                proposer: self.role,
                offered,
                decided,
            },
        );
        self.outgoing.push(KeyValue::new(key, value));
        Ok(())
    }

    /// Drains the pairs to send next: our queued offers and declarations,
    /// then our answers to the peer's offers, in the order they were made.
    pub fn take_outgoing(&mut self) -> Vec<KeyValue> {
        std::mem::take(&mut self.outgoing)
    }

    /// Whether anything is waiting in [`Negotiation::take_outgoing`].
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Handles one received text (a complete, reassembled data segment):
    /// checks answers to our offers, answers the peer's offers (queued for
    /// [`Negotiation::take_outgoing`]) and records declarations.
    ///
    /// Errors are protocol violations by the peer; RFC 7143 says to fail
    /// the login or close the connection. After an error the state is
    /// unspecified.
    pub fn receive(&mut self, pairs: &[KeyValue]) -> Result<(), TextError> {
        for kv in pairs {
            let repeatable = keys::lookup(&kv.key).is_some_and(|d| d.repeatable);
            let re_offer_after_reject = self
                .negotiated
                .get(&kv.key)
                .is_some_and(|e| e.status == KeyStatus::Rejected && e.proposer != self.role);
            if !self.received.insert(kv.key.clone()) && !repeatable && !re_offer_after_reject {
                return Err(TextError::DuplicateKey {
                    key: kv.key.clone(),
                });
            }
        }
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&i| processing_rank(&pairs[i]));
        let mut answers: Vec<Option<KeyValue>> = vec![None; pairs.len()];
        for i in order {
            answers[i] = self.receive_pair(&pairs[i])?;
        }
        self.outgoing.extend(answers.into_iter().flatten());
        Ok(())
    }

    /// Handles one pair; returns our answer, if one is due.
    fn receive_pair(&mut self, kv: &KeyValue) -> Result<Option<KeyValue>, TextError> {
        let def = keys::lookup(&kv.key);
        let pending = self
            .negotiated
            .get(&kv.key)
            .is_some_and(|e| matches!(e.status, KeyStatus::Pending { .. }));
        if pending {
            self.handle_answer(def, kv)?;
            return Ok(None);
        }
        let Some(def) = def else {
            return self.answer_unknown(kv);
        };
        if def.result == ResultFunction::Declarative {
            if let ValueType::Obsolete { answer } = def.value_type {
                return Ok(Some(self.answer_obsolete(kv, answer)));
            }
            self.record_declaration(def, kv)?;
            return Ok(None);
        }
        self.answer_offer(def, kv).map(Some)
    }

    /// The peer's answer to our pending offer of `kv.key`.
    fn handle_answer(&mut self, def: Option<&KeyDef>, kv: &KeyValue) -> Result<(), TextError> {
        let Some(entry) = self.negotiated.get_mut(&kv.key) else {
            return Ok(());
        };
        let offered_text = match &entry.status {
            KeyStatus::Pending { offered } => offered.clone(),
            _ => String::new(),
        };
        let illegal = |reason| TextError::IllegalAnswer {
            key: kv.key.clone(),
            offered: Snippet::value_of(&kv.key, &offered_text),
            answer: Snippet::value_of(&kv.key, &kv.value),
            reason,
        };
        let answer = match def {
            Some(def) => def
                .parse_value(&kv.value)
                .map_err(|e| illegal(e.reason()))?,
            // Unknown (vendor) key: any answer is taken as the outcome.
            None => {
                Value::parse(value::ValueKind::Text, &kv.value).map_err(|e| illegal(e.reason()))?
            }
        };
        entry.status = match answer {
            Value::NotUnderstood => KeyStatus::NotUnderstood,
            Value::Irrelevant => KeyStatus::Irrelevant,
            Value::Reject => KeyStatus::Rejected,
            answer => {
                if let (Some(def), Some(offered)) = (def, &entry.offered) {
                    check_answer(def, offered, &answer).map_err(illegal)?;
                }
                KeyStatus::Agreed(answer.to_string())
            }
        };
        Ok(())
    }

    /// An offer of a key we do not know: `NotUnderstood`.
    fn answer_unknown(&mut self, kv: &KeyValue) -> Result<Option<KeyValue>, TextError> {
        if is_reserved(&kv.value) {
            return Err(TextError::UnexpectedAnswer {
                key: kv.key.clone(),
                answer: Snippet::new(&kv.value),
            });
        }
        self.record_response(&kv.key, KeyStatus::NotUnderstood);
        Ok(Some(KeyValue::new(kv.key.as_str(), value::NOT_UNDERSTOOD)))
    }

    /// RFC 7143 §13.26: obsoleted marker keys get a fixed answer.
    fn answer_obsolete(&mut self, kv: &KeyValue, answer: &str) -> KeyValue {
        let status = if answer == value::REJECT {
            KeyStatus::Rejected
        } else {
            KeyStatus::Agreed(answer.to_owned())
        };
        self.record_response(&kv.key, status);
        KeyValue::new(kv.key.as_str(), answer)
    }

    /// A declaration from the peer.
    fn record_declaration(&mut self, def: &KeyDef, kv: &KeyValue) -> Result<(), TextError> {
        if is_reserved(&kv.value) {
            // A reserved word in reply to one of our declarations carries no
            // information (some peers answer declarations anyway).
            if self.local_declarations.contains_key(def.name) {
                return Ok(());
            }
            return Err(TextError::UnexpectedAnswer {
                key: kv.key.clone(),
                answer: Snippet::new(&kv.value),
            });
        }
        if !def.senders.allows(self.role.peer()) {
            return Err(TextError::WrongSender {
                key: kv.key.clone(),
                sender: self.role.peer().as_str(),
            });
        }
        // Stage and leading-only are not enforced on received declarations:
        // they carry no negotiation, and peers differ on where they send them.
        def.parse_value(&kv.value)
            .map_err(|e| TextError::InvalidValue {
                key: kv.key.clone(),
                value: Snippet::value_of(&kv.key, &kv.value),
                reason: e.reason(),
            })?;
        self.peer_declarations
            .entry(kv.key.clone())
            .or_default()
            .push(kv.value.clone());
        Ok(())
    }

    /// The peer's offer of a negotiated key: our answer, by its result
    /// function.
    fn answer_offer(&mut self, def: &KeyDef, kv: &KeyValue) -> Result<KeyValue, TextError> {
        if is_reserved(&kv.value) {
            return Err(TextError::UnexpectedAnswer {
                key: kv.key.clone(),
                answer: Snippet::new(&kv.value),
            });
        }
        self.check_usage(def, self.role.peer())?;
        let (status, answer) = if self.is_irrelevant(def) {
            (KeyStatus::Irrelevant, Value::Irrelevant)
        } else {
            match (def.parse_value(&kv.value), self.responder_value(def)) {
                (Ok(offered), Some(ours)) => match select(def, &offered, &ours) {
                    Selection::Agreed(v) => (KeyStatus::Agreed(v.to_string()), v),
                    Selection::Reject => (KeyStatus::Rejected, Value::Reject),
                },
                // Malformed or out of range offer, or nothing we support.
                _ => (KeyStatus::Rejected, Value::Reject),
            }
        };
        self.record_response(&kv.key, status);
        Ok(KeyValue::new(kv.key.as_str(), answer.to_string()))
    }

    /// Our value when answering `def`; FirstBurstLength is also capped by
    /// the MaxBurstLength in force, since it must never exceed it.
    fn responder_value(&self, def: &KeyDef) -> Option<Value> {
        let ours = self.policy.value_for(def)?;
        if def.irrelevant == Irrelevance::DiscoveryOrNoUnsolicitedData
            && let (Value::Number(fbl), Some(mbl)) =
                (&ours, self.effective_number("MaxBurstLength"))
        {
            return Some(Value::Number((*fbl).min(mbl)));
        }
        Some(ours)
    }

    fn record_response(&mut self, key: &str, status: KeyStatus) {
        self.negotiated.insert(
            key.to_owned(),
            Entry {
                status,
                proposer: self.role.peer(),
                offered: None,
                decided: false,
            },
        );
    }

    /// Checks that `sender` may send `def` now.
    fn check_usage(&self, def: &KeyDef, sender: Role) -> Result<(), TextError> {
        if !def.senders.allows(sender) {
            return Err(TextError::WrongSender {
                key: def.name.to_owned(),
                sender: sender.as_str(),
            });
        }
        if !def.stages.contains(self.stage) {
            return Err(TextError::WrongStage {
                key: def.name.to_owned(),
                stage: self.stage.as_str(),
            });
        }
        if def.leading_only && !self.leading {
            return Err(TextError::NotLeadingConnection {
                key: def.name.to_owned(),
            });
        }
        Ok(())
    }

    /// RFC 7143 §13: keys without meaning in discovery sessions, and
    /// FirstBurstLength when no unsolicited data can flow.
    fn is_irrelevant(&self, def: &KeyDef) -> bool {
        let discovery = self.session_type() == SessionType::Discovery;
        match def.irrelevant {
            Irrelevance::Never => false,
            Irrelevance::Discovery => discovery,
            Irrelevance::DiscoveryOrNoUnsolicitedData => {
                discovery
                    || (self.effective_bool("InitialR2T") == Some(true)
                        && self.effective_bool("ImmediateData") == Some(false))
            }
        }
    }

    /// The session type either side declared (default Normal).
    pub fn session_type(&self) -> SessionType {
        self.local_declaration("SessionType")
            .or_else(|| self.peer_declaration("SessionType"))
            .and_then(SessionType::from_value)
            .unwrap_or_default()
    }

    /// The value in force for a negotiated key right now: agreed, decided by
    /// our offer, or the default.
    ///
    /// An offer that decides alone (ImmediateData=No, InitialR2T=Yes, ...)
    /// stays in force even if answered Reject or Irrelevant: it is the
    /// conservative choice whatever the peer believes.
    fn effective_value(&self, key: &str) -> Option<Value> {
        let def = keys::lookup(key)?;
        match self.negotiated.get(key) {
            Some(Entry {
                status: KeyStatus::Agreed(v),
                ..
            }) => def.parse_value(v).ok(),
            Some(Entry {
                decided: true,
                offered: Some(v),
                ..
            }) => Some(v.clone()),
            _ => def.default_value(),
        }
    }

    fn effective_number(&self, key: &str) -> Option<u64> {
        match self.effective_value(key)? {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    fn effective_bool(&self, key: &str) -> Option<bool> {
        match self.effective_value(key)? {
            Value::Boolean(b) => Some(b),
            _ => None,
        }
    }

    fn effective_list_item(&self, key: &str) -> Option<String> {
        match self.effective_value(key)? {
            Value::None => Some(value::NONE.to_owned()),
            Value::List(items) if items.len() == 1 => items.into_iter().next(),
            _ => None,
        }
    }

    /// Where `key` stands, if it has been offered by either side.
    pub fn status(&self, key: &str) -> Option<&KeyStatus> {
        self.negotiated.get(key).map(|e| &e.status)
    }

    /// Keys we offered whose answer has not arrived, excluding offers that
    /// decide the outcome by themselves.
    pub fn pending_keys(&self) -> Vec<&str> {
        self.negotiated
            .iter()
            .filter(|(_, e)| matches!(e.status, KeyStatus::Pending { .. }) && !e.decided)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Keys whose last answer was `Reject` (by either side).
    pub fn rejected_keys(&self) -> Vec<&str> {
        self.negotiated
            .iter()
            .filter(|(_, e)| e.status == KeyStatus::Rejected)
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Our last offer of `key`, whatever its answer, when we proposed it (a
    /// known key); `None` when the peer proposed it or nobody did. The
    /// answer alone does not say what was asked, which an error about a
    /// refused key should.
    pub fn our_offer(&self, key: &str) -> Option<String> {
        self.negotiated
            .get(key)
            .filter(|e| e.proposer == self.role)
            .and_then(|e| e.offered.as_ref())
            .map(Value::to_string)
    }

    /// Whether our offer of `key` decides the outcome alone (RFC 7143 §6.2:
    /// AND with `No`, OR with `Yes`), so that its value is in force on both
    /// sides whatever the peer answers.
    pub fn offer_decides(&self, key: &str) -> bool {
        self.negotiated
            .get(key)
            .is_some_and(|e| e.proposer == self.role && e.decided)
    }

    /// Whether RFC 7143 makes `key` irrelevant in this session as it stands
    /// (§13: keys without meaning in a discovery session, FirstBurstLength
    /// when no unsolicited data can flow), so that an `Irrelevant` answer
    /// to it is expected rather than a refusal.
    pub fn irrelevance_expected(&self, key: &str) -> bool {
        keys::lookup(key).is_some_and(|def| self.is_irrelevant(def))
    }

    /// Nothing to send and no answer awaited.
    pub fn is_settled(&self) -> bool {
        self.outgoing.is_empty() && self.pending_keys().is_empty()
    }

    /// The peer's (last) declaration of `key`.
    pub fn peer_declaration(&self, key: &str) -> Option<&str> {
        self.peer_declarations
            .get(key)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every declaration of a repeatable key by the peer (TargetAddress).
    pub fn peer_declarations(&self, key: &str) -> &[String] {
        self.peer_declarations.get(key).map_or(&[], Vec::as_slice)
    }

    /// Our (last) declaration of `key`.
    pub fn local_declaration(&self, key: &str) -> Option<&str> {
        self.local_declarations
            .get(key)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// A declaration by whichever side is allowed to make it.
    fn declaration(&self, key: &str) -> Option<String> {
        self.local_declaration(key)
            .or_else(|| self.peer_declaration(key))
            .map(str::to_owned)
    }

    fn declared_number(value: Option<&str>, key: &str) -> Option<u64> {
        let def = keys::lookup(key)?;
        match def.parse_value(value?).ok()? {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The parameters in force: negotiated outcomes, declarations, and the
    /// RFC 7143 defaults for everything else.
    ///
    /// FirstBurstLength is capped at MaxBurstLength (RFC 7143 §13.14: it
    /// must not exceed it), in case the peer's answers ignored that rule.
    pub fn outcome(&self) -> OperationalParams {
        let mut p = OperationalParams::default();
        let num = |key: &str, fallback: u64| self.effective_number(key).unwrap_or(fallback);
        let flag = |key: &str, fallback: bool| self.effective_bool(key).unwrap_or(fallback);

        p.session_type = self.session_type();
        p.header_digest = self
            .effective_list_item("HeaderDigest")
            .and_then(|d| Digest::from_value(&d))
            .unwrap_or(p.header_digest);
        p.data_digest = self
            .effective_list_item("DataDigest")
            .and_then(|d| Digest::from_value(&d))
            .unwrap_or(p.data_digest);
        let mrdsl = "MaxRecvDataSegmentLength";
        if let Some(n) = Self::declared_number(self.local_declaration(mrdsl), mrdsl) {
            p.max_recv_data_segment_length = narrow(n, p.max_recv_data_segment_length);
        }
        if let Some(n) = Self::declared_number(self.peer_declaration(mrdsl), mrdsl) {
            p.max_xmit_data_segment_length = narrow(n, p.max_xmit_data_segment_length);
        }
        p.max_burst_length = narrow(
            num("MaxBurstLength", u64::from(p.max_burst_length)),
            p.max_burst_length,
        );
        p.first_burst_length = narrow(
            num("FirstBurstLength", u64::from(p.first_burst_length)),
            p.first_burst_length,
        )
        .min(p.max_burst_length);
        p.initial_r2t = flag("InitialR2T", p.initial_r2t);
        p.immediate_data = flag("ImmediateData", p.immediate_data);
        p.max_outstanding_r2t = narrow(
            num("MaxOutstandingR2T", u64::from(p.max_outstanding_r2t)),
            p.max_outstanding_r2t,
        );
        p.data_pdu_in_order = flag("DataPDUInOrder", p.data_pdu_in_order);
        p.data_sequence_in_order = flag("DataSequenceInOrder", p.data_sequence_in_order);
        p.error_recovery_level = narrow(
            num("ErrorRecoveryLevel", u64::from(p.error_recovery_level)),
            p.error_recovery_level,
        );
        p.default_time2wait = narrow(
            num("DefaultTime2Wait", u64::from(p.default_time2wait)),
            p.default_time2wait,
        );
        p.default_time2retain = narrow(
            num("DefaultTime2Retain", u64::from(p.default_time2retain)),
            p.default_time2retain,
        );
        p.max_connections = narrow(
            num("MaxConnections", u64::from(p.max_connections)),
            p.max_connections,
        );
        p.task_reporting = self
            .effective_list_item("TaskReporting")
            .and_then(|t| TaskReporting::from_value(&t))
            .unwrap_or(p.task_reporting);
        p.iscsi_protocol_level = narrow(
            num("iSCSIProtocolLevel", u64::from(p.iscsi_protocol_level)),
            p.iscsi_protocol_level,
        );
        let tpgt = "TargetPortalGroupTag";
        p.target_portal_group_tag = Self::declared_number(self.declaration(tpgt).as_deref(), tpgt)
            .and_then(|n| u16::try_from(n).ok());
        p.target_name = self.declaration("TargetName");
        p.initiator_name = self.declaration("InitiatorName");
        p.target_alias = self.declaration("TargetAlias");
        p.initiator_alias = self.declaration("InitiatorAlias");
        if let Some(auth) = self.effective_list_item("AuthMethod") {
            p.auth_method = auth;
        }
        p
    }
}

/// Declarations as pairs, whose Display hides CHAP challenges and responses.
fn declarations_as_pairs(map: &BTreeMap<String, Vec<String>>) -> Vec<KeyValue> {
    map.iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .map(move |v| KeyValue::new(k.as_str(), v.as_str()))
        })
        .collect()
}

// Hand-written so that declared CHAP values never reach a log.
impl fmt::Debug for Negotiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statuses: BTreeMap<&str, &KeyStatus> = self
            .negotiated
            .iter()
            .map(|(k, e)| (k.as_str(), &e.status))
            .collect();
        f.debug_struct("Negotiation")
            .field("role", &self.role)
            .field("stage", &self.stage)
            .field("leading", &self.leading)
            .field("policy", &self.policy)
            .field("negotiated", &statuses)
            .field(
                "local_declarations",
                &declarations_as_pairs(&self.local_declarations),
            )
            .field(
                "peer_declarations",
                &declarations_as_pairs(&self.peer_declarations),
            )
            .field("outgoing", &self.outgoing)
            .finish()
    }
}

fn is_reserved(text: &str) -> bool {
    matches!(
        text,
        value::NOT_UNDERSTOOD | value::IRRELEVANT | value::REJECT
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::pairs::{TextLimits, encode_pairs, parse_pairs};

    fn policy(entries: &[(&str, &str)]) -> Policy {
        let mut p = Policy::new();
        for (k, v) in entries {
            p.set(k, v).expect("valid policy entry");
        }
        p
    }

    /// Sends `from`'s outgoing pairs to `to` through real bytes.
    fn deliver(from: &mut Negotiation, to: &mut Negotiation) -> Result<usize, TextError> {
        let pairs = from.take_outgoing();
        if pairs.is_empty() {
            return Ok(0);
        }
        let bytes = encode_pairs(&pairs)?;
        let parsed = parse_pairs(&bytes, TextLimits::DEFAULT)?;
        to.receive(&parsed)?;
        Ok(pairs.len())
    }

    /// Runs the exchange until both sides have nothing more to say.
    fn converse(init: &mut Negotiation, tgt: &mut Negotiation) -> Result<(), TextError> {
        for _ in 0..8 {
            let sent = deliver(init, tgt)? + deliver(tgt, init)?;
            if sent == 0 {
                return Ok(());
            }
        }
        panic!("negotiation did not converge");
    }

    fn initiator(entries: &[(&str, &str)]) -> Negotiation {
        let mut n = Negotiation::new(Role::Initiator, policy(entries));
        for (k, _) in entries {
            n.offer_from_policy(k).expect("offer");
        }
        n
    }

    fn target(entries: &[(&str, &str)]) -> Negotiation {
        Negotiation::new(Role::Target, policy(entries))
    }

    /// UNH-IOL: Login #15.1
    #[test]
    fn max_burst_length_takes_the_minimum() {
        let mut i = initiator(&[("MaxBurstLength", "16777215")]);
        let mut t = target(&[("MaxBurstLength", "262144")]);
        converse(&mut i, &mut t).expect("legal exchange");
        assert_eq!(i.outcome().max_burst_length, 262_144);
        assert_eq!(t.outcome().max_burst_length, 262_144);
        assert_eq!(
            i.status("MaxBurstLength"),
            Some(&KeyStatus::Agreed("262144".into()))
        );
        assert!(i.is_settled() && t.is_settled());
    }

    /// UNH-IOL: Login #7.2, Login #9.2
    #[test]
    fn header_digest_first_acceptable() {
        let mut i = initiator(&[
            ("HeaderDigest", "CRC32C,None"),
            ("DataDigest", "CRC32C,None"),
        ]);
        let mut t = target(&[("HeaderDigest", "None"), ("DataDigest", "CRC32C,None")]);
        converse(&mut i, &mut t).expect("legal exchange");
        for side in [&i, &t] {
            let o = side.outcome();
            assert_eq!(o.header_digest, Digest::None);
            assert_eq!(o.data_digest, Digest::Crc32c);
        }
    }

    #[test]
    fn digest_required_but_refused_is_rejected() {
        let mut i = initiator(&[("HeaderDigest", "CRC32C")]);
        let mut t = target(&[]);
        converse(&mut i, &mut t).expect("legal exchange");
        assert_eq!(i.status("HeaderDigest"), Some(&KeyStatus::Rejected));
        assert_eq!(i.rejected_keys(), vec!["HeaderDigest"]);
        assert_eq!(i.outcome().header_digest, Digest::None);
    }

    /// UNH-IOL: Login #13.1
    #[test]
    fn boolean_or_and_and() {
        let mut i = initiator(&[
            ("InitialR2T", "No"),
            ("ImmediateData", "Yes"),
            ("DataPDUInOrder", "No"),
        ]);
        let mut t = target(&[
            ("InitialR2T", "Yes"),
            ("ImmediateData", "No"),
            ("DataPDUInOrder", "No"),
        ]);
        converse(&mut i, &mut t).expect("legal exchange");
        for side in [&i, &t] {
            let o = side.outcome();
            assert!(o.initial_r2t, "OR with a Yes is Yes");
            assert!(!o.immediate_data, "AND with a No is No");
            assert!(!o.data_pdu_in_order, "OR of two No is No");
        }
    }

    #[test]
    fn offer_that_decides_alone_needs_no_answer() {
        let mut i = initiator(&[("ImmediateData", "No"), ("InitialR2T", "Yes")]);
        assert!(i.pending_keys().is_empty());
        let _ = i.take_outgoing();
        let o = i.outcome();
        assert!(!o.immediate_data);
        assert!(o.initial_r2t);
        // A contradicting answer is still illegal.
        let err = i
            .receive(&[KeyValue::new("ImmediateData", "Yes")])
            .expect_err("AND answer Yes to No");
        assert!(matches!(err, TextError::IllegalAnswer { .. }));
    }

    /// UNH-IOL: Login #18.1, Login #20.1
    #[test]
    fn error_recovery_level_min_and_max_time2wait() {
        let mut i = initiator(&[("ErrorRecoveryLevel", "2"), ("DefaultTime2Wait", "1")]);
        let mut t = target(&[("ErrorRecoveryLevel", "1"), ("DefaultTime2Wait", "4")]);
        converse(&mut i, &mut t).expect("legal exchange");
        assert_eq!(i.outcome().error_recovery_level, 1);
        assert_eq!(i.outcome().default_time2wait, 4);
    }

    /// UNH-IOL: Login #7.6
    #[test]
    fn unknown_key_is_not_understood_and_keeps_default() {
        let mut i = initiator(&[]);
        i.offer("X-com.example.Feature", "On").expect("vendor key");
        i.offer("MaxConnections", "4").expect("offer");
        let mut t = target(&[("MaxConnections", "8")]);
        deliver(&mut i, &mut t).expect("legal");
        let answers = t.take_outgoing();
        assert!(answers.contains(&KeyValue::new("X-com.example.Feature", "NotUnderstood")));
        i.receive(&answers).expect("legal");
        assert_eq!(
            i.status("X-com.example.Feature"),
            Some(&KeyStatus::NotUnderstood)
        );
        assert_eq!(i.outcome().max_connections, 4);
    }

    /// UNH-IOL: Login #7.4
    #[test]
    fn illegal_min_answer_is_an_error() {
        let mut i = initiator(&[("MaxBurstLength", "65536")]);
        let _ = i.take_outgoing();
        let err = i
            .receive(&[KeyValue::new("MaxBurstLength", "262144")])
            .expect_err("answer above our offer");
        assert!(matches!(err, TextError::IllegalAnswer { ref key, .. } if key == "MaxBurstLength"));
    }

    #[test]
    fn illegal_list_answer_is_an_error() {
        let mut i = initiator(&[("HeaderDigest", "None")]);
        let _ = i.take_outgoing();
        let err = i
            .receive(&[KeyValue::new("HeaderDigest", "CRC32C")])
            .expect_err("not offered");
        assert!(matches!(err, TextError::IllegalAnswer { .. }));
    }

    #[test]
    fn out_of_range_answer_is_an_error() {
        let mut i = initiator(&[("ErrorRecoveryLevel", "2")]);
        let _ = i.take_outgoing();
        assert!(
            i.receive(&[KeyValue::new("ErrorRecoveryLevel", "7")])
                .is_err()
        );
    }

    #[test]
    fn malformed_offer_is_rejected() {
        let mut t = target(&[]);
        t.receive(&[
            KeyValue::new("MaxBurstLength", "100"),
            KeyValue::new("InitialR2T", "Maybe"),
            KeyValue::new("MaxConnections", "0x"),
        ])
        .expect("answers, not errors");
        assert_eq!(
            t.take_outgoing(),
            vec![
                KeyValue::new("MaxBurstLength", "Reject"),
                KeyValue::new("InitialR2T", "Reject"),
                KeyValue::new("MaxConnections", "Reject"),
            ]
        );
    }

    #[test]
    fn duplicate_key_is_a_protocol_error() {
        let mut t = target(&[]);
        let err = t
            .receive(&[
                KeyValue::new("MaxBurstLength", "512"),
                KeyValue::new("MaxBurstLength", "1024"),
            ])
            .expect_err("twice");
        assert_eq!(
            err,
            TextError::DuplicateKey {
                key: "MaxBurstLength".into()
            }
        );
        // Also across texts of the same login.
        let mut t = target(&[]);
        t.receive(&[KeyValue::new("ErrorRecoveryLevel", "0")])
            .expect("first");
        assert!(
            t.receive(&[KeyValue::new("ErrorRecoveryLevel", "0")])
                .is_err()
        );
        // TargetAddress may repeat.
        let mut i = initiator(&[]);
        i.receive(&[
            KeyValue::new("TargetAddress", "10.0.0.1:3260,1"),
            KeyValue::new("TargetAddress", "10.0.0.2:3260,1"),
        ])
        .expect("repeatable");
        assert_eq!(i.peer_declarations("TargetAddress").len(), 2);
    }

    #[test]
    fn discovery_session_makes_data_keys_irrelevant() {
        let mut i = Negotiation::new(Role::Initiator, Policy::new());
        i.offer("InitiatorName", "iqn.2024-01.test:init")
            .expect("decl");
        i.offer("SessionType", "Discovery").expect("decl");
        i.offer("MaxBurstLength", "262144").expect("offer");
        i.offer("ImmediateData", "Yes").expect("offer");
        i.offer("ErrorRecoveryLevel", "0").expect("offer");
        i.offer("MaxRecvDataSegmentLength", "65536").expect("decl");
        let mut t = target(&[("MaxRecvDataSegmentLength", "32768")]);
        deliver(&mut i, &mut t).expect("legal");
        let answers = t.take_outgoing();
        assert!(answers.contains(&KeyValue::new("MaxBurstLength", "Irrelevant")));
        assert!(answers.contains(&KeyValue::new("ImmediateData", "Irrelevant")));
        assert!(answers.contains(&KeyValue::new("ErrorRecoveryLevel", "0")));
        // The target declares its own receive limit.
        t.offer_from_policy("MaxRecvDataSegmentLength")
            .expect("decl");
        let mut reply = answers;
        reply.extend(t.take_outgoing());
        i.receive(&reply).expect("legal");
        let o = i.outcome();
        assert_eq!(o.session_type, SessionType::Discovery);
        assert_eq!(i.status("MaxBurstLength"), Some(&KeyStatus::Irrelevant));
        assert_eq!(o.max_burst_length, 262_144);
        assert_eq!(o.max_recv_data_segment_length, 65_536);
        assert_eq!(o.max_xmit_data_segment_length, 32_768);
        assert_eq!(t.outcome().max_recv_data_segment_length, 32_768);
        assert_eq!(t.outcome().max_xmit_data_segment_length, 65_536);
    }

    #[test]
    fn first_burst_irrelevant_without_unsolicited_data() {
        // FirstBurstLength comes first in the text but depends on the keys
        // after it.
        let mut t = target(&[("ImmediateData", "No")]);
        t.receive(&[
            KeyValue::new("FirstBurstLength", "65536"),
            KeyValue::new("InitialR2T", "Yes"),
            KeyValue::new("ImmediateData", "Yes"),
        ])
        .expect("legal");
        assert_eq!(
            t.take_outgoing(),
            vec![
                KeyValue::new("FirstBurstLength", "Irrelevant"),
                KeyValue::new("InitialR2T", "Yes"),
                KeyValue::new("ImmediateData", "No"),
            ]
        );
    }

    /// UNH-IOL: Login #16.2
    #[test]
    fn first_burst_never_exceeds_max_burst() {
        let mut i = initiator(&[
            ("InitialR2T", "No"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "262144"),
        ]);
        let mut t = target(&[("MaxBurstLength", "16384"), ("FirstBurstLength", "65536")]);
        converse(&mut i, &mut t).expect("legal");
        for side in [&i, &t] {
            let o = side.outcome();
            assert_eq!(o.max_burst_length, 16_384);
            assert_eq!(o.first_burst_length, 16_384);
        }
    }

    /// UNH-IOL: Login #17.1, Login #19.1
    #[test]
    fn target_offers_get_answered_by_the_initiator() {
        let mut i = initiator(&[("MaxOutstandingR2T", "4")]);
        let _ = i.take_outgoing();
        i.receive(&[
            KeyValue::new("MaxOutstandingR2T", "2"),
            KeyValue::new("DefaultTime2Retain", "60"),
            KeyValue::new("MaxRecvDataSegmentLength", "131072"),
        ])
        .expect("legal");
        // Answer to the target's own offer; nothing for the declaration.
        assert_eq!(
            i.take_outgoing(),
            vec![KeyValue::new("DefaultTime2Retain", "20")]
        );
        let o = i.outcome();
        assert_eq!(o.max_outstanding_r2t, 2);
        assert_eq!(o.default_time2retain, 20);
        assert_eq!(o.max_xmit_data_segment_length, 131_072);
    }

    #[test]
    fn sender_stage_and_leading_rules() {
        let mut i = Negotiation::new(Role::Initiator, Policy::new());
        assert!(matches!(
            i.offer("TargetAlias", "disk"),
            Err(TextError::WrongSender { .. })
        ));
        i.set_stage(Stage::Security);
        assert!(matches!(
            i.offer("MaxBurstLength", "512"),
            Err(TextError::WrongStage { .. })
        ));
        assert!(i.offer("AuthMethod", "CHAP,None").is_ok());
        i.set_stage(Stage::Operational);
        i.set_leading(false);
        assert!(matches!(
            i.offer("MaxConnections", "2"),
            Err(TextError::NotLeadingConnection { .. })
        ));
        assert!(i.offer("HeaderDigest", "None").is_ok());
        // The target may not declare an InitiatorName.
        assert!(matches!(
            i.receive(&[KeyValue::new("InitiatorName", "iqn.x")]),
            Err(TextError::WrongSender { .. })
        ));
    }

    /// UNH-IOL: Login #6.1
    #[test]
    fn offering_twice_is_refused_but_reoffer_after_reject_works() {
        let mut i = initiator(&[("HeaderDigest", "CRC32C")]);
        assert!(matches!(
            i.offer("HeaderDigest", "None"),
            Err(TextError::AlreadyNegotiated { .. })
        ));
        let _ = i.take_outgoing();
        i.receive(&[KeyValue::new("HeaderDigest", "Reject")])
            .expect("legal");
        i.offer("HeaderDigest", "CRC32C,None").expect("re-offer");
        i.receive(&[KeyValue::new("HeaderDigest", "None")])
            .expect("answer to the new offer");
        assert_eq!(
            i.status("HeaderDigest"),
            Some(&KeyStatus::Agreed("None".into()))
        );
    }

    #[test]
    fn reserved_answer_for_unoffered_key_is_an_error() {
        let mut i = initiator(&[]);
        assert!(matches!(
            i.receive(&[KeyValue::new("MaxBurstLength", "Reject")]),
            Err(TextError::UnexpectedAnswer { .. })
        ));
    }

    #[test]
    fn obsolete_marker_keys() {
        let mut t = target(&[]);
        t.receive(&[
            KeyValue::new("IFMarker", "No"),
            KeyValue::new("OFMarkInt", "2048~8192"),
        ])
        .expect("legal");
        assert_eq!(
            t.take_outgoing(),
            vec![
                KeyValue::new("IFMarker", "No"),
                KeyValue::new("OFMarkInt", "Reject"),
            ]
        );
        assert!(t.offer("OFMarker", "No").is_err());
    }

    #[test]
    fn debug_output_hides_chap_values() {
        let mut i = Negotiation::new(Role::Initiator, Policy::new());
        i.set_stage(Stage::Security);
        i.offer("CHAP_R", "0x00112233445566778899").expect("decl");
        i.receive(&[KeyValue::new("CHAP_C", "0xaabbccddeeff00112233")])
            .expect("decl");
        let shown = format!("{i:?}");
        assert!(!shown.contains("00112233445566778899"), "{shown}");
        assert!(!shown.contains("aabbccddeeff"), "{shown}");
        assert!(shown.contains("CHAP_R=<redacted>"));
    }

    fn arbitrary_pair() -> impl proptest::strategy::Strategy<Value = KeyValue> {
        use proptest::prelude::*;
        let known: Vec<&'static str> = keys::KEYS.iter().map(|d| d.name).collect();
        let key = prop_oneof![
            proptest::sample::select(known).prop_map(str::to_owned),
            "X-[a-z]{1,8}",
        ];
        let value = prop_oneof![
            Just("Reject".to_owned()),
            Just("Irrelevant".to_owned()),
            Just("None".to_owned()),
            Just("Yes".to_owned()),
            Just("CRC32C,None".to_owned()),
            "[0-9]{1,8}",
            "0x[0-9a-f]{1,20}",
            "[ -~]{0,20}",
        ];
        (key, value).prop_map(|(k, v)| KeyValue::new(k, v))
    }

    proptest::proptest! {
        /// Hostile texts end in answers or errors, never panics, for both
        /// roles and every stage.
        #[test]
        fn arbitrary_received_pairs_never_panic(
            batches in proptest::collection::vec(
                proptest::collection::vec(arbitrary_pair(), 0..12), 1..4),
            initiator_role: bool,
            stage in 0u8..3,
        ) {
            let role = if initiator_role { Role::Initiator } else { Role::Target };
            let mut n = Negotiation::new(role, Policy::new());
            n.set_stage(match stage {
                0 => Stage::Security,
                1 => Stage::Operational,
                _ => Stage::FullFeature,
            });
            for batch in batches {
                if n.receive(&batch).is_err() {
                    break;
                }
                // Whatever we answer must itself be sendable text.
                proptest::prop_assert!(encode_pairs(&n.take_outgoing()).is_ok());
                let _ = n.outcome();
            }
        }
    }

    #[test]
    fn chap_exchange_through_the_engine() {
        let mut i = Negotiation::new(
            Role::Initiator,
            policy(&[("AuthMethod", "CHAP,None"), ("CHAP_A", "7,5")]),
        );
        let mut t = Negotiation::new(
            Role::Target,
            policy(&[("AuthMethod", "CHAP"), ("CHAP_A", "5")]),
        );
        for side in [&mut i, &mut t] {
            side.set_stage(Stage::Security);
        }
        i.offer("InitiatorName", "iqn.2024-01.test:init")
            .expect("decl");
        i.offer("TargetName", "iqn.2024-01.test:tgt").expect("decl");
        i.offer_from_policy("AuthMethod").expect("offer");
        deliver(&mut i, &mut t).expect("legal");
        t.offer("TargetPortalGroupTag", "1").expect("decl");
        deliver(&mut t, &mut i).expect("legal");
        assert_eq!(i.outcome().auth_method, "CHAP");
        i.offer_from_policy("CHAP_A").expect("offer");
        deliver(&mut i, &mut t).expect("legal");
        t.offer("CHAP_I", "1").expect("decl");
        t.offer("CHAP_C", "0x0102030405060708").expect("decl");
        deliver(&mut t, &mut i).expect("legal");
        assert_eq!(i.status("CHAP_A"), Some(&KeyStatus::Agreed("5".into())));
        assert_eq!(i.peer_declaration("CHAP_C"), Some("0x0102030405060708"));
        assert_eq!(i.outcome().target_portal_group_tag, Some(1));
        assert!(i.is_settled() && t.is_settled());
    }

    /// Our initiator's offer as libiscsi made it to tgtd, minus the markers
    /// RFC 7143 obsoleted.
    fn libiscsi_like_initiator() -> Negotiation {
        let mut i = Negotiation::new(Role::Initiator, Policy::new());
        for (k, v) in [
            (
                "InitiatorName",
                "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq",
            ),
            ("TargetName", "iqn.2024-01.test:text"),
            ("SessionType", "Normal"),
            ("HeaderDigest", "None,CRC32C"),
            ("DataDigest", "None"),
            ("InitialR2T", "No"),
            ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "262144"),
            ("DefaultTime2Wait", "2"),
            ("DefaultTime2Retain", "0"),
            ("MaxOutstandingR2T", "1"),
            ("ErrorRecoveryLevel", "0"),
            ("MaxConnections", "1"),
            ("MaxRecvDataSegmentLength", "262144"),
            ("DataPDUInOrder", "Yes"),
            ("DataSequenceInOrder", "Yes"),
        ] {
            i.offer(k, v).expect("valid offer");
        }
        let _ = i.take_outgoing();
        i
    }

    #[test]
    fn tgtd_login_response_bytes() {
        // tgtd 1.0.85's operational-stage Login Response data segment
        // (captured with tshark, padding included).
        let data = b"TargetPortalGroupTag=1\0HeaderDigest=None\0DataDigest=None\0\
InitialR2T=Yes\0ImmediateData=Yes\0MaxBurstLength=262144\0FirstBurstLength=65536\0\
DefaultTime2Wait=2\0DefaultTime2Retain=0\0MaxOutstandingR2T=1\0ErrorRecoveryLevel=0\0\
IFMarker=No\0OFMarker=No\0MaxConnections=1\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0";
        let pairs = parse_pairs(data, TextLimits::DEFAULT).expect("valid text");
        let mut i = libiscsi_like_initiator();
        i.receive(&pairs).expect("tgtd's answers are legal");
        // tgtd echoes the marker keys we did not offer: we answer them.
        assert_eq!(
            i.take_outgoing(),
            vec![
                KeyValue::new("IFMarker", "No"),
                KeyValue::new("OFMarker", "No")
            ]
        );
        assert!(i.pending_keys().is_empty());
        let o = i.outcome();
        assert_eq!(o.target_portal_group_tag, Some(1));
        assert_eq!(o.header_digest, Digest::None);
        assert!(o.initial_r2t);
        assert!(o.immediate_data);
        assert_eq!(o.max_burst_length, 262_144);
        assert_eq!(o.first_burst_length, 65_536);
        assert_eq!(o.default_time2retain, 0);
        assert_eq!(o.max_recv_data_segment_length, 262_144);
        // tgtd declared no MaxRecvDataSegmentLength: the default applies.
        assert_eq!(o.max_xmit_data_segment_length, 8192);
        assert_eq!(o.target_name.as_deref(), Some("iqn.2024-01.test:text"));
    }

    #[test]
    fn istgt_discovery_login_response_bytes() {
        // istgt's discovery Login Response: Irrelevant answers and its own
        // MaxRecvDataSegmentLength declaration.
        let data = b"HeaderDigest=None\0DataDigest=None\0InitialR2T=Irrelevant\0\
ImmediateData=Irrelevant\0MaxBurstLength=Irrelevant\0FirstBurstLength=Irrelevant\0\
DefaultTime2Wait=2\0DefaultTime2Retain=0\0MaxOutstandingR2T=Irrelevant\0\
ErrorRecoveryLevel=0\0MaxConnections=Irrelevant\0MaxRecvDataSegmentLength=262144\0\
DataPDUInOrder=Irrelevant\0DataSequenceInOrder=Irrelevant\0";
        let pairs = parse_pairs(data, TextLimits::DEFAULT).expect("valid text");
        let mut i = Negotiation::new(Role::Initiator, Policy::new());
        i.offer("InitiatorName", "iqn.test:i").expect("decl");
        i.offer("SessionType", "Discovery").expect("decl");
        for (k, v) in [
            ("HeaderDigest", "None"),
            ("DataDigest", "None"),
            ("InitialR2T", "No"),
            ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "262144"),
            ("DefaultTime2Wait", "2"),
            ("DefaultTime2Retain", "0"),
            ("MaxOutstandingR2T", "1"),
            ("ErrorRecoveryLevel", "0"),
            ("MaxConnections", "1"),
            ("MaxRecvDataSegmentLength", "262144"),
            ("DataPDUInOrder", "Yes"),
            ("DataSequenceInOrder", "Yes"),
        ] {
            i.offer(k, v).expect("valid offer");
        }
        let _ = i.take_outgoing();
        i.receive(&pairs).expect("istgt's answers are legal");
        assert!(i.is_settled());
        let o = i.outcome();
        assert_eq!(o.session_type, SessionType::Discovery);
        assert!(o.initial_r2t, "Irrelevant keeps the default");
        assert_eq!(o.max_xmit_data_segment_length, 262_144);
        assert_eq!(o.default_time2retain, 0);
        assert_eq!(i.status("InitialR2T"), Some(&KeyStatus::Irrelevant));
        // RFC 7143 §13: these Irrelevant answers are the expected ones in a
        // discovery session; the digests have meaning there.
        assert!(i.irrelevance_expected("InitialR2T"));
        assert!(i.irrelevance_expected("MaxBurstLength"));
        assert!(!i.irrelevance_expected("HeaderDigest"));
    }

    /// What a refusal leaves known: our offer, and whether it decided alone.
    #[test]
    fn our_offer_and_its_weight_outlive_the_answer() {
        let mut i = initiator(&[
            ("HeaderDigest", "None,CRC32C"),
            ("ImmediateData", "No"),
            ("InitialR2T", "No"),
        ]);
        let _ = i.take_outgoing();
        i.receive(&[
            KeyValue::new("HeaderDigest", "Reject"),
            KeyValue::new("ImmediateData", "Reject"),
            KeyValue::new("InitialR2T", "Irrelevant"),
            KeyValue::new("TaskReporting", "RFC3720"),
        ])
        .expect("reserved answers are legal");
        assert_eq!(i.status("HeaderDigest"), Some(&KeyStatus::Rejected));
        assert_eq!(i.our_offer("HeaderDigest").as_deref(), Some("None,CRC32C"));
        assert_eq!(i.our_offer("InitialR2T").as_deref(), Some("No"));
        assert!(i.offer_decides("ImmediateData"), "AND with No");
        assert!(
            !i.offer_decides("InitialR2T"),
            "OR with No needs the answer"
        );
        assert!(!i.irrelevance_expected("InitialR2T"), "a normal session");
        // The peer's own offer is not ours.
        assert_eq!(i.our_offer("TaskReporting"), None);
        assert_eq!(i.our_offer("MaxBurstLength"), None);
    }

    fn digest_list() -> impl proptest::strategy::Strategy<Value = Vec<&'static str>> {
        use proptest::prelude::*;
        prop_oneof![
            Just(vec!["None"]),
            Just(vec!["CRC32C"]),
            Just(vec!["CRC32C", "None"]),
            Just(vec!["None", "CRC32C"]),
        ]
    }

    proptest::proptest! {
        /// Random policies on both sides: both engines reach the same
        /// outcome, and it is what each key's result function gives.
        #[test]
        fn both_sides_agree_on_the_model_outcome(
            mbl in (512u64..=16_777_215, 512u64..=16_777_215),
            fbl in (512u64..=16_777_215, 512u64..=16_777_215),
            t2w in (0u64..=3600, 0u64..=3600),
            erl in (0u64..=2, 0u64..=2),
            ir2t: (bool, bool),
            imm: (bool, bool),
            seq: (bool, bool),
            hd in (digest_list(), digest_list()),
        ) {
            let yn = value::format_boolean;
            let (mbl_i, mbl_t) = (mbl.0.to_string(), mbl.1.to_string());
            let (fbl_i, fbl_t) = (fbl.0.to_string(), fbl.1.to_string());
            let (t2w_i, t2w_t) = (t2w.0.to_string(), t2w.1.to_string());
            let (erl_i, erl_t) = (erl.0.to_string(), erl.1.to_string());
            let (hd_i, hd_t) = (hd.0.join(","), hd.1.join(","));
            let mut i = initiator(&[
                ("MaxBurstLength", &mbl_i), ("FirstBurstLength", &fbl_i),
                ("DefaultTime2Wait", &t2w_i), ("ErrorRecoveryLevel", &erl_i),
                ("InitialR2T", yn(ir2t.0)), ("ImmediateData", yn(imm.0)),
                ("DataSequenceInOrder", yn(seq.0)), ("HeaderDigest", &hd_i),
            ]);
            let mut t = target(&[
                ("MaxBurstLength", &mbl_t), ("FirstBurstLength", &fbl_t),
                ("DefaultTime2Wait", &t2w_t), ("ErrorRecoveryLevel", &erl_t),
                ("InitialR2T", yn(ir2t.1)), ("ImmediateData", yn(imm.1)),
                ("DataSequenceInOrder", yn(seq.1)), ("HeaderDigest", &hd_t),
            ]);
            converse(&mut i, &mut t).expect("engines only give legal answers");
            proptest::prop_assert!(i.is_settled() && t.is_settled());
            let (oi, ot) = (i.outcome(), t.outcome());

            let mbl_out = mbl.0.min(mbl.1);
            let ir2t_out = ir2t.0 || ir2t.1;
            let imm_out = imm.0 && imm.1;
            let fbl_out = if ir2t_out && !imm_out {
                65_536u64.min(mbl_out) // Irrelevant: default, capped
            } else {
                fbl.0.min(fbl.1).min(mbl_out)
            };
            let hd_out = hd.0.iter().find(|d| hd.1.contains(d)).copied().unwrap_or("None");
            for o in [&oi, &ot] {
                proptest::prop_assert_eq!(u64::from(o.max_burst_length), mbl_out);
                proptest::prop_assert_eq!(u64::from(o.first_burst_length), fbl_out);
                proptest::prop_assert_eq!(u64::from(o.default_time2wait), t2w.0.max(t2w.1));
                proptest::prop_assert_eq!(u64::from(o.error_recovery_level), erl.0.min(erl.1));
                proptest::prop_assert_eq!(o.initial_r2t, ir2t_out);
                proptest::prop_assert_eq!(o.immediate_data, imm_out);
                proptest::prop_assert_eq!(o.data_sequence_in_order, seq.0 || seq.1);
                proptest::prop_assert_eq!(o.header_digest.as_str(), hd_out);
            }
        }
    }

    #[test]
    fn target_engine_answers_tgtd_style_initiator() {
        // The initiator text libiscsi sent to tgtd, answered by our engine
        // playing a tgtd-like target.
        let data = b"InitiatorName=iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq\0\
TargetName=iqn.2024-01.test:text\0SessionType=Normal\0HeaderDigest=None,CRC32C\0\
DataDigest=None\0InitialR2T=No\0ImmediateData=Yes\0MaxBurstLength=262144\0\
FirstBurstLength=262144\0DefaultTime2Wait=2\0DefaultTime2Retain=0\0MaxOutstandingR2T=1\0\
ErrorRecoveryLevel=0\0IFMarker=No\0OFMarker=No\0MaxConnections=1\0\
MaxRecvDataSegmentLength=262144\0DataPDUInOrder=Yes\0DataSequenceInOrder=Yes\0";
        let pairs = parse_pairs(data, TextLimits::DEFAULT).expect("valid text");
        let mut t = target(&[
            ("InitialR2T", "Yes"),
            ("DefaultTime2Retain", "0"),
            ("HeaderDigest", "None"),
        ]);
        t.receive(&pairs).expect("legal offers");
        let answers = t.take_outgoing();
        // The same answers tgtd gave.
        for (k, v) in [
            ("HeaderDigest", "None"),
            ("InitialR2T", "Yes"),
            ("ImmediateData", "Yes"),
            ("MaxBurstLength", "262144"),
            ("FirstBurstLength", "65536"),
            ("DefaultTime2Retain", "0"),
            ("IFMarker", "No"),
        ] {
            assert!(answers.contains(&KeyValue::new(k, v)), "{k}={v}");
        }
        assert_eq!(
            t.outcome().initiator_name.as_deref(),
            Some("iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq")
        );
    }
}
