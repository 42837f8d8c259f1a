//! Login with chosen keys (RFC 7143 §6.3): the probe walks the stages the
//! spec asks for, offers exactly the keys it is given, answers whatever the
//! target offers, and reports every key the target sent and how the login
//! ended. A refused or broken login is a report, not an error: the negative
//! tests need to see it.

use bytes::Bytes;
use iscsi_proto::pdu::{
    ISCSI_VERSION, Isid, Itt, LoginRequest, LoginResponse, LoginStatus, Pdu, Stage,
};
use iscsi_proto::text::{KeyValue, ResultFunction, lookup};
use iscsi_session::ChapAlgorithm;
use iscsi_session::core::chap::OurChallenge;

use crate::error::ProbeError;
use crate::probe::chap::{self, ChapPlan, Tamper, TargetChallenge};
use crate::probe::connection::Probe;
use crate::probe::negotiated::Negotiated;
use crate::probe::text;

/// Login PDUs carry at most 8 KiB of text (§13.12 default during login).
const LOGIN_SEGMENT: usize = 8192;

/// Round trips before the probe calls a login endless.
const MAX_EXCHANGES: u32 = 24;

/// The ITT every login request of the probe carries.
pub const LOGIN_ITT: Itt = Itt(0x4c00_0000);

/// The MaxRecvDataSegmentLength the probe declares unless told otherwise.
pub const DEFAULT_MRDSL: u32 = 262_144;

/// How the security stage is played.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `AuthMethod=None`.
    None,
    /// CHAP as planned.
    Chap(ChapPlan),
}

/// Everything a login request sequence can be made of.
#[derive(Clone, Debug)]
pub struct LoginSpec {
    /// InitiatorName; `None` leaves it out.
    pub initiator_name: Option<String>,
    /// TargetName; `None` leaves it out (discovery sessions).
    pub target_name: Option<String>,
    /// SessionType; `None` leaves it out (Normal by default).
    pub session_type: Option<String>,
    /// The ISID; `None` keeps the probe's.
    pub isid: Option<Isid>,
    /// 0 for a new session, else the session to join.
    pub tsih: u16,
    /// The connection ID.
    pub cid: u16,
    /// The CmdSN login requests carry: the session's first CmdSN.
    pub cmd_sn: u32,
    /// ExpStatSN of the first request.
    pub exp_stat_sn: u32,
    /// Version-max.
    pub version_max: u8,
    /// Version-min.
    pub version_min: u8,
    /// How to authenticate.
    pub auth: Auth,
    /// The AuthMethod offer as sent; `None` derives it from `auth`.
    pub auth_method: Option<String>,
    /// More keys for the first security-stage request.
    pub security_keys: Vec<KeyValue>,
    /// The operational offer, in order (defaults filled in by
    /// [`LoginSpec::normal`]); sent in the first operational request.
    pub operational: Vec<KeyValue>,
    /// Begin in LoginOperationalNegotiation, without a security stage.
    pub start_operational: bool,
    /// Go from the security stage straight to full feature phase.
    pub skip_operational: bool,
    /// The MaxRecvDataSegmentLength declared in `operational` (for framing).
    pub mrdsl: u32,
    /// Cut the text of the first request into pieces of this many bytes,
    /// sent with the C bit (§6.2).
    pub split_first: Option<usize>,
}

impl LoginSpec {
    /// A normal session to `target` with the given auth and digest offers.
    pub fn normal(initiator: &str, target: &str, auth: Auth, digests: (&str, &str)) -> LoginSpec {
        LoginSpec {
            initiator_name: Some(initiator.to_owned()),
            target_name: Some(target.to_owned()),
            session_type: Some("Normal".into()),
            isid: None,
            tsih: 0,
            cid: 0,
            cmd_sn: 1,
            exp_stat_sn: 0,
            version_max: ISCSI_VERSION,
            version_min: ISCSI_VERSION,
            auth,
            auth_method: None,
            security_keys: Vec::new(),
            operational: text::pairs(&[
                ("HeaderDigest", digests.0),
                ("DataDigest", digests.1),
                ("MaxRecvDataSegmentLength", &DEFAULT_MRDSL.to_string()),
            ]),
            start_operational: false,
            skip_operational: false,
            mrdsl: DEFAULT_MRDSL,
            split_first: None,
        }
    }

    /// A discovery session (no TargetName).
    pub fn discovery(initiator: &str, auth: Auth) -> LoginSpec {
        let mut spec = LoginSpec::normal(initiator, "", auth, ("None", "None"));
        spec.target_name = None;
        spec.session_type = Some("Discovery".into());
        spec
    }

    /// Sets an operational key (replacing an earlier offer of it).
    pub fn set(mut self, key: &str, value: &str) -> LoginSpec {
        if key == "MaxRecvDataSegmentLength"
            && let Some(n) = crate::probe::negotiated::parse_number(value)
        {
            self.mrdsl = u32::try_from(n).unwrap_or(u32::MAX).clamp(512, 1 << 24);
        }
        match self.operational.iter_mut().find(|kv| kv.key == key) {
            Some(kv) => kv.value = value.to_owned(),
            None => self.operational.push(KeyValue::new(key, value)),
        }
        self
    }

    /// Adds a key even if it is already offered (duplicate-key tests).
    pub fn push(mut self, key: &str, value: &str) -> LoginSpec {
        self.operational.push(KeyValue::new(key, value));
        self
    }

    /// Takes a key out of the operational offer.
    pub fn remove(mut self, key: &str) -> LoginSpec {
        self.operational.retain(|kv| kv.key != key);
        self
    }

    fn auth_offer(&self) -> String {
        if let Some(m) = &self.auth_method {
            return m.clone();
        }
        match self.auth {
            Auth::None => "None".into(),
            Auth::Chap(_) => "CHAP,None".into(),
        }
    }

    fn leading_keys(&self) -> Vec<KeyValue> {
        let mut keys = Vec::new();
        if let Some(n) = &self.initiator_name {
            keys.push(KeyValue::new("InitiatorName", n.as_str()));
        }
        if let Some(t) = &self.target_name {
            keys.push(KeyValue::new("TargetName", t.as_str()));
        }
        if let Some(s) = &self.session_type {
            keys.push(KeyValue::new("SessionType", s.as_str()));
        }
        keys
    }
}

/// How a login ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginEnd {
    /// Full feature phase.
    FullFeature,
    /// A Login Response with a non-zero status (redirects included).
    Refused(LoginStatus),
    /// The connection broke (closed, reset, timed out, garbage).
    Broken(String),
    /// The probe stopped: the target's answer leaves no way on (e.g. no
    /// challenge, a wrong mutual CHAP answer).
    Stopped(String),
}

/// Everything a login showed.
#[derive(Clone, Debug)]
pub struct LoginReport {
    /// How it ended.
    pub end: LoginEnd,
    /// Every Login Response, in order.
    pub responses: Vec<LoginResponse>,
    /// Every key the target sent, with the stage of the response.
    pub target_keys: Vec<(Stage, KeyValue)>,
    /// The target's CHAP challenge, when there was one.
    pub challenge: Option<TargetChallenge>,
    /// The outcome of checking the target's mutual CHAP answer.
    pub mutual: Option<Result<(), String>>,
}

impl LoginReport {
    fn new() -> LoginReport {
        LoginReport {
            end: LoginEnd::Broken("no response".into()),
            responses: Vec::new(),
            target_keys: Vec::new(),
            challenge: None,
            mutual: None,
        }
    }

    /// Reached full feature phase.
    pub fn ok(&self) -> bool {
        self.end == LoginEnd::FullFeature
    }

    /// The refusal status, if the login was refused.
    pub fn status(&self) -> Option<LoginStatus> {
        match self.end {
            LoginEnd::Refused(s) => Some(s),
            _ => None,
        }
    }

    /// The last value the target sent for `key`.
    pub fn answer(&self, key: &str) -> Option<&str> {
        self.target_keys
            .iter()
            .rev()
            .find(|(_, kv)| kv.key == key)
            .map(|(_, kv)| kv.value.as_str())
    }

    /// Every value the target sent for `key`.
    pub fn answers(&self, key: &str) -> Vec<&str> {
        self.target_keys
            .iter()
            .filter(|(_, kv)| kv.key == key)
            .map(|(_, kv)| kv.value.as_str())
            .collect()
    }

    /// The keys alone.
    pub fn keys(&self) -> Vec<KeyValue> {
        self.target_keys.iter().map(|(_, kv)| kv.clone()).collect()
    }

    /// The final Login Response.
    pub fn last(&self) -> Option<&LoginResponse> {
        self.responses.last()
    }

    /// One line for failure messages: how it ended, never a secret.
    pub fn describe(&self) -> String {
        match &self.end {
            LoginEnd::FullFeature => "login reached full feature phase".into(),
            LoginEnd::Refused(s) => format!("login refused: {s}"),
            LoginEnd::Broken(why) => format!("login broke: {why}"),
            LoginEnd::Stopped(why) => format!("login stopped: {why}"),
        }
    }
}

/// One exchange's outcome inside the walk.
enum Step {
    /// A response to go on with.
    Go(Box<LoginResponse>),
    /// The report is complete.
    Done,
}

impl Probe {
    /// Runs a login as `spec` says. On success the probe is in full feature
    /// phase with digests, limits, TSIH and CmdSN set.
    pub async fn login(&mut self, spec: &LoginSpec) -> Result<LoginReport, ProbeError> {
        if let Some(isid) = spec.isid {
            self.isid = isid;
        }
        self.cid = spec.cid;
        self.exp_stat_sn = spec.exp_stat_sn;
        self.configure_login();
        let mut report = LoginReport::new();
        let mut walk = Walk {
            spec,
            exchanges: 0,
            first: true,
        };
        let stage = if spec.start_operational {
            Some(Stage::Operational)
        } else {
            walk.security(self, &mut report).await?
        };
        let stage = match stage {
            Some(Stage::Operational) => walk.operational(self, &mut report).await?,
            other => other,
        };
        if let Some(other) = stage.filter(|s| *s != Stage::FullFeature) {
            report.end = LoginEnd::Stopped(format!(
                "the target moved to the {} stage instead of going on",
                other.as_str()
            ));
        }
        if stage == Some(Stage::FullFeature) {
            report.end = LoginEnd::FullFeature;
            let last = report.last().cloned();
            if let Some(last) = last {
                self.tsih = last.tsih;
                self.window = Some((last.exp_cmd_sn, last.max_cmd_sn));
            }
            self.cmd_sn = spec.cmd_sn;
            self.negotiated = Negotiated::from_answers(&report.keys(), spec.mrdsl);
            let n = self.negotiated.clone();
            self.configure(n.digests(), n.our_mrdsl, n.their_mrdsl);
        }
        Ok(report)
    }
}

/// The state of one login walk.
struct Walk<'a> {
    spec: &'a LoginSpec,
    exchanges: u32,
    first: bool,
}

impl Walk<'_> {
    /// Sends one request (in pieces when asked) and reads the response,
    /// following the target's continued responses. `Step::Done` when the
    /// report has its end.
    async fn exchange(
        &mut self,
        probe: &mut Probe,
        report: &mut LoginReport,
        stage: Stage,
        next: Option<Stage>,
        keys: &[KeyValue],
    ) -> Result<Step, ProbeError> {
        self.exchanges += 1;
        if self.exchanges > MAX_EXCHANGES {
            report.end = LoginEnd::Stopped(format!(
                "no full feature phase after {MAX_EXCHANGES} login exchanges"
            ));
            return Ok(Step::Done);
        }
        let body = text::encode(keys);
        let piece_len = match (self.first, self.spec.split_first) {
            (true, Some(n)) => n.clamp(1, LOGIN_SEGMENT),
            _ => LOGIN_SEGMENT,
        };
        self.first = false;
        let pieces: Vec<&[u8]> = if body.is_empty() {
            vec![&[][..]]
        } else {
            body.chunks(piece_len).collect()
        };
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            let last_piece = i + 1 == count;
            let request = LoginRequest {
                transit: last_piece && next.is_some(),
                continue_: !last_piece,
                csg: stage,
                nsg: next.unwrap_or(stage),
                version_max: self.spec.version_max,
                version_min: self.spec.version_min,
                isid: probe.isid,
                tsih: self.spec.tsih,
                itt: LOGIN_ITT,
                cid: self.spec.cid,
                cmd_sn: self.spec.cmd_sn,
                exp_stat_sn: probe.exp_stat_sn,
                data: Bytes::copy_from_slice(piece),
            };
            if let Err(e) = probe.send(&Pdu::LoginRequest(request)).await {
                if e.is_closed() {
                    report.end = LoginEnd::Broken(e.to_string());
                    return Ok(Step::Done);
                }
                return Err(e);
            }
            if !last_piece {
                // §6.2: each continued request gets an empty response.
                match self.receive(probe, report).await? {
                    Step::Go(resp) if resp.status.is_success() => continue,
                    Step::Go(resp) => {
                        report.end = LoginEnd::Refused(resp.status);
                        return Ok(Step::Done);
                    }
                    Step::Done => return Ok(Step::Done),
                }
            }
        }
        let mut text_in = Vec::new();
        loop {
            let resp = match self.receive(probe, report).await? {
                Step::Go(r) => r,
                Step::Done => return Ok(Step::Done),
            };
            if !resp.status.is_success() {
                report.end = LoginEnd::Refused(resp.status);
                return Ok(Step::Done);
            }
            text_in.extend_from_slice(&resp.data);
            if text_in.len() > text::MAX_TEXT {
                report.end = LoginEnd::Stopped("more than 256 KiB of login text".into());
                return Ok(Step::Done);
            }
            if !resp.continue_ {
                for kv in text::decode(&text_in) {
                    report.target_keys.push((resp.csg, kv));
                }
                return Ok(Step::Go(resp));
            }
            // The target continues its text: ask for the rest with an empty request.
            let more = LoginRequest {
                transit: false,
                continue_: false,
                csg: stage,
                nsg: stage,
                version_max: self.spec.version_max,
                version_min: self.spec.version_min,
                isid: probe.isid,
                tsih: self.spec.tsih,
                itt: LOGIN_ITT,
                cid: self.spec.cid,
                cmd_sn: self.spec.cmd_sn,
                exp_stat_sn: probe.exp_stat_sn,
                data: Bytes::new(),
            };
            probe.send(&Pdu::LoginRequest(more)).await?;
        }
    }

    async fn receive(
        &mut self,
        probe: &mut Probe,
        report: &mut LoginReport,
    ) -> Result<Step, ProbeError> {
        match probe.recv("a Login Response").await {
            Ok(Pdu::LoginResponse(resp)) => {
                report.responses.push(resp.clone());
                Ok(Step::Go(Box::new(resp)))
            }
            Ok(other) => {
                report.end =
                    LoginEnd::Stopped(format!("the target sent {} during login", other.opcode()));
                Ok(Step::Done)
            }
            Err(e) => {
                report.end = LoginEnd::Broken(e.to_string());
                Ok(Step::Done)
            }
        }
    }

    /// The security stage; the stage that follows it, or `None` when the
    /// report is complete.
    async fn security(
        &mut self,
        probe: &mut Probe,
        report: &mut LoginReport,
    ) -> Result<Option<Stage>, ProbeError> {
        let after = if self.spec.skip_operational {
            Stage::FullFeature
        } else {
            Stage::Operational
        };
        let mut keys = self.spec.leading_keys();
        keys.push(KeyValue::new("AuthMethod", self.spec.auth_offer()));
        keys.extend(self.spec.security_keys.iter().cloned());
        let plan = match &self.spec.auth {
            Auth::Chap(plan) => Some(plan.clone()),
            Auth::None => None,
        };
        let transit_now = if plan.is_none() { Some(after) } else { None };
        let resp = match self
            .exchange(probe, report, Stage::Security, transit_now, &keys)
            .await?
        {
            Step::Go(r) => r,
            Step::Done => return Ok(None),
        };
        let chosen = report.answer("AuthMethod").map(str::to_owned);
        let mut resp = resp;
        if let (Some(plan), Some("CHAP")) = (&plan, chosen.as_deref()) {
            resp = match self.chap(probe, report, plan, after).await? {
                Some(r) => r,
                None => return Ok(None),
            };
        }
        // Until the target agrees to leave the stage, ask again.
        while !resp.transit {
            resp = match self
                .exchange(probe, report, Stage::Security, Some(after), &[])
                .await?
            {
                Step::Go(r) => r,
                Step::Done => return Ok(None),
            };
        }
        Ok(Some(resp.nsg))
    }

    /// CHAP_A, then the answer to the challenge; the verdict response.
    async fn chap(
        &mut self,
        probe: &mut Probe,
        report: &mut LoginReport,
        plan: &ChapPlan,
        after: Stage,
    ) -> Result<Option<Box<LoginResponse>>, ProbeError> {
        let offer = [KeyValue::new("CHAP_A", plan.algorithms.as_str())];
        match self
            .exchange(probe, report, Stage::Security, None, &offer)
            .await?
        {
            Step::Go(_) => {}
            Step::Done => return Ok(None),
        }
        let answer = chap::answer(
            plan,
            report.answer("CHAP_A"),
            report.answer("CHAP_I"),
            report.answer("CHAP_C"),
        );
        let answer = match answer {
            Ok(a) => a,
            Err(problem) => {
                report.end = LoginEnd::Stopped(problem.to_string());
                return Ok(None);
            }
        };
        report.challenge = Some(answer.challenge.clone());
        // The target's answer to our challenge must not be mistaken for
        // earlier keys: remember where this response starts.
        let before = report.target_keys.len();
        let resp = match self
            .exchange(probe, report, Stage::Security, Some(after), &answer.keys)
            .await?
        {
            Step::Go(r) => r,
            Step::Done => return Ok(None),
        };
        if let (Some(expected), Some((algorithm, ours))) = (&plan.mutual, &answer.ours) {
            let fresh: Vec<KeyValue> = report.target_keys[before..]
                .iter()
                .map(|(_, kv)| kv.clone())
                .collect();
            let verdict = check_mutual(expected, *algorithm, ours, &fresh, &plan.tamper);
            let bad = verdict.is_err();
            report.mutual = Some(verdict);
            if bad {
                report.end = LoginEnd::Stopped("the target's mutual CHAP answer is wrong".into());
                return Ok(None);
            }
        }
        Ok(Some(resp))
    }

    /// The operational stage; `Some(FullFeature)` when reached.
    async fn operational(
        &mut self,
        probe: &mut Probe,
        report: &mut LoginReport,
    ) -> Result<Option<Stage>, ProbeError> {
        let mut keys = Vec::new();
        if self.spec.start_operational {
            keys = self.spec.leading_keys();
        }
        keys.extend(self.spec.operational.iter().cloned());
        let offered: Vec<String> = keys.iter().map(|kv| kv.key.clone()).collect();
        let mut outgoing = keys;
        loop {
            let before = report.target_keys.len();
            let resp = match self
                .exchange(
                    probe,
                    report,
                    Stage::Operational,
                    Some(Stage::FullFeature),
                    &outgoing,
                )
                .await?
            {
                Step::Go(r) => r,
                Step::Done => return Ok(None),
            };
            if resp.transit && resp.nsg == Stage::FullFeature {
                return Ok(Some(Stage::FullFeature));
            }
            // Answer what the target offered of its own accord.
            let fresh: Vec<KeyValue> = report.target_keys[before..]
                .iter()
                .map(|(_, kv)| kv.clone())
                .collect();
            outgoing = answers_to_offers(&fresh, &offered);
        }
    }
}

fn check_mutual(
    expected: &iscsi_session::ChapCredentials,
    algorithm: ChapAlgorithm,
    ours: &OurChallenge,
    keys: &[KeyValue],
    tamper: &Tamper,
) -> Result<(), String> {
    let _ = tamper;
    chap::verify_target(
        expected,
        algorithm,
        ours,
        text::last(keys, "CHAP_N"),
        text::last(keys, "CHAP_R"),
    )
}

/// Our answers to keys the target sent without our offering them: echo
/// for negotiated keys (always acceptable under Min, Max, And, Or and a
/// list's first choice), NotUnderstood for unknown ones, nothing for
/// declarations and reserved answers.
pub fn answers_to_offers(target: &[KeyValue], offered: &[String]) -> Vec<KeyValue> {
    let mut out = Vec::new();
    for kv in target {
        if offered.iter().any(|k| k == &kv.key)
            || ["Reject", "Irrelevant", "NotUnderstood"].contains(&kv.value.as_str())
        {
            continue;
        }
        match lookup(&kv.key) {
            None => out.push(KeyValue::new(kv.key.as_str(), "NotUnderstood")),
            Some(def) if def.result == ResultFunction::Declarative => {}
            Some(_) => {
                let first = kv.value.split(',').next().unwrap_or_default();
                out.push(KeyValue::new(kv.key.as_str(), first));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_answered_declarations_are_not() {
        let target = text::pairs(&[
            ("TargetPortalGroupTag", "1"),
            ("MaxBurstLength", "65536"),
            ("HeaderDigest", "None"),
            ("X-vendor.key", "1"),
            ("DataDigest", "CRC32C,None"),
        ]);
        let out = answers_to_offers(&target, &["HeaderDigest".to_owned()]);
        assert_eq!(
            out,
            text::pairs(&[
                ("MaxBurstLength", "65536"),
                ("X-vendor.key", "NotUnderstood"),
                ("DataDigest", "CRC32C"),
            ])
        );
    }

    #[test]
    fn spec_set_replaces_and_tracks_mrdsl() {
        let spec = LoginSpec::normal("iqn.i", "iqn.t", Auth::None, ("None", "None"))
            .set("MaxRecvDataSegmentLength", "4096")
            .set("InitialR2T", "No");
        assert_eq!(spec.mrdsl, 4096);
        assert_eq!(text::last(&spec.operational, "InitialR2T"), Some("No"));
        assert_eq!(
            spec.operational
                .iter()
                .filter(|kv| kv.key == "MaxRecvDataSegmentLength")
                .count(),
            1
        );
    }
}
