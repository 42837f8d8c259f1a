//! What a session needs to know before it connects.

use std::time::Duration;

use iscsi_proto::pdu::Isid;
use sha2::{Digest, Sha256};

use crate::core::backoff::ReconnectPolicy;
use crate::core::chap::ChapAlgorithm;
use crate::core::portal::Portal;
use crate::core::retry::RetryPolicy;
use crate::core::secret::Secret;

/// CHAP credentials for one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChapCredentials {
    /// CHAP_N: the name we send, or the one the target must send back.
    pub username: String,
    /// The shared secret; it never prints ([`Secret`]).
    pub secret: Secret,
}

impl ChapCredentials {
    /// Credentials from a CHAP name and secret.
    pub fn new(username: impl Into<String>, secret: impl Into<Secret>) -> Self {
        ChapCredentials {
            username: username.into(),
            secret: secret.into(),
        }
    }
}

/// CHAP settings: our credentials, and the target's for mutual CHAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChapConfig {
    /// What we answer the target's challenge with.
    pub initiator: ChapCredentials,
    /// When set, we challenge the target and check its answer (mutual CHAP).
    pub target: Option<ChapCredentials>,
    /// CHAP_A offer, most preferred first. MD5 alone by default: every target
    /// has it; SHA-256/SHA-1 when configured.
    pub algorithms: Vec<ChapAlgorithm>,
}

impl ChapConfig {
    /// The target authenticates us only; CHAP_A offers MD5 alone.
    pub fn one_way(initiator: ChapCredentials) -> Self {
        ChapConfig {
            initiator,
            target: None,
            algorithms: vec![ChapAlgorithm::Md5],
        }
    }

    /// Both ways: we answer the target's challenge, then challenge it and
    /// check its answer against `target`; CHAP_A offers MD5 alone.
    pub fn mutual(initiator: ChapCredentials, target: ChapCredentials) -> Self {
        ChapConfig {
            initiator,
            target: Some(target),
            algorithms: vec![ChapAlgorithm::Md5],
        }
    }
}

/// Digest preference for one of HeaderDigest/DataDigest (RFC 7143 §13.1:
/// the target picks the first value of our list it supports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestPreference {
    /// Offer only None: a target that requires digests fails the login.
    None,
    /// Offer only CRC32C: login fails if the target refuses it.
    Crc32c,
    /// Offer CRC32C,None: digests unless the target refuses them.
    PreferCrc32c,
    /// Offer None,CRC32C, the default: the target picks. One that does not
    /// care picks None, so the default costs nothing, and one that requires
    /// digests (istgt's `UseDigest Header Data`) gets them instead of
    /// refusing None.
    #[default]
    PreferNone,
}

impl DigestPreference {
    /// The value offered for the key, most preferred first.
    pub fn offer(self) -> &'static str {
        match self {
            DigestPreference::None => "None",
            DigestPreference::Crc32c => "CRC32C",
            DigestPreference::PreferCrc32c => "CRC32C,None",
            DigestPreference::PreferNone => "None,CRC32C",
        }
    }
}

/// The operational values we offer (RFC 7143 §13). Defaults as a Linux initiator
/// would pick for throughput: large bursts, immediate data, no initial R2T.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationalPreferences {
    /// HeaderDigest (§13.1): CRC32C over each PDU header.
    pub header_digest: DigestPreference,
    /// DataDigest (§13.1): CRC32C over each data segment.
    pub data_digest: DigestPreference,
    /// MaxRecvDataSegmentLength (§13.12): the largest data segment we
    /// accept, declared to the target; 512 to 2^24 - 1 bytes.
    pub max_recv_data_segment_length: u32,
    /// MaxBurstLength (§13.13): the most data in one Data-In or solicited
    /// Data-Out sequence; 512 to 2^24 - 1 bytes.
    pub max_burst_length: u32,
    /// FirstBurstLength (§13.14): the unsolicited data (immediate and
    /// Data-Out before the first R2T) a write may carry; at most
    /// `max_burst_length`.
    pub first_burst_length: u32,
    /// InitialR2T (§13.10): `true` makes every write wait for an R2T before
    /// unsolicited Data-Out; the result is the OR of both sides' values.
    pub initial_r2t: bool,
    /// ImmediateData (§13.11): write data may ride in the SCSI Command PDU;
    /// the result is the AND of both sides' values.
    pub immediate_data: bool,
    /// MaxOutstandingR2T (§13.17): R2Ts in flight per task; 1 to 65535.
    pub max_outstanding_r2t: u32,
    /// DefaultTime2Wait (§13.15), in seconds: the least wait after a
    /// connection fails before logging in again.
    pub default_time2wait: u32,
    /// DefaultTime2Retain (§13.16), in seconds: how long the target keeps
    /// tasks for reassignment after a connection fails. 0 by default: at
    /// ErrorRecoveryLevel 0 tasks are never reassigned.
    pub default_time2retain: u32,
}

impl Default for OperationalPreferences {
    fn default() -> Self {
        OperationalPreferences {
            header_digest: DigestPreference::PreferNone,
            data_digest: DigestPreference::PreferNone,
            max_recv_data_segment_length: 256 * 1024,
            // "16 MiB" as far as the 24-bit field goes (RFC 7143 §13.13: up to 2^24 - 1).
            max_burst_length: 16_777_215,
            first_burst_length: 256 * 1024,
            initial_r2t: false,
            immediate_data: true,
            max_outstanding_r2t: 1,
            default_time2wait: 2,
            default_time2retain: 0,
        }
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Every wait has one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// The whole login, from connect to full feature phase.
    pub login: Duration,
    /// A SCSI command without its own timeout.
    pub command: Duration,
    /// Idle time before we send a NOP-Out ping.
    pub nop_interval: Duration,
    /// Silence after a ping that declares the connection dead.
    pub nop_timeout: Duration,
    /// A task management request (abort, LU reset).
    pub task_management: Duration,
    /// Logout request to response.
    pub logout: Duration,
    /// With [`Recovery::Replay`]: how long commands wait for the connection
    /// to come back before they fail (open-iscsi's replacement_timeout). Zero
    /// fails them at once.
    pub replacement: Duration,
}

/// What happens to commands when the connection fails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Recovery {
    /// Unfinished commands wait for the next connection (up to the
    /// replacement timeout) and are sent again there, unless their caller
    /// stopped waiting: what a user of one path wants.
    #[default]
    Replay,
    /// Every unfinished command goes back to its caller at once, marked sent
    /// or never sent ([`crate::Delivery`]); a command submitted while there
    /// is no connection fails at once, unsent. The session never sends a
    /// command twice: what a multipath layer wants, since it re-issues the
    /// command on another path itself.
    HandBack,
}

impl Timeouts {
    /// Every wait must end: the waits that guard an exchange must be set, and
    /// none may be absurd (a day at most).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let required = [
            ("connect timeout", self.connect),
            ("login timeout", self.login),
            ("command timeout", self.command),
            ("NOP timeout", self.nop_timeout),
            ("task management timeout", self.task_management),
            ("logout timeout", self.logout),
        ];
        for (name, d) in required {
            if d.is_zero() || d > DAY {
                return Err(ConfigError::OutOfRange(name));
            }
        }
        // Zero is meaningful for these two: no keepalive, fail at once.
        for (name, d) in [
            ("NOP interval", self.nop_interval),
            ("replacement timeout", self.replacement),
        ] {
            if d > DAY {
                return Err(ConfigError::OutOfRange(name));
            }
        }
        Ok(())
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            login: Duration::from_secs(15),
            command: Duration::from_secs(30),
            nop_interval: Duration::from_secs(5),
            nop_timeout: Duration::from_secs(10),
            task_management: Duration::from_secs(10),
            logout: Duration::from_secs(5),
            replacement: Duration::from_secs(60),
        }
    }
}

/// Configuration of one session to one target through one portal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Where to connect; a login redirect may move the session elsewhere.
    pub portal: Portal,
    /// TargetName (RFC 7143 §13.4); `None` for a discovery session.
    pub target_name: Option<String>,
    /// InitiatorName (§13.5): our IQN, which the target's ACLs check.
    pub initiator_name: String,
    /// InitiatorAlias (§13.7), sent when set: a friendly name for the
    /// target's logs.
    pub initiator_alias: Option<String>,
    /// CHAP authentication; `None` offers AuthMethod=None.
    pub chap: Option<ChapConfig>,
    /// The operational keys offered at login (§13).
    pub operational: OperationalPreferences,
    /// The timeouts of every exchange.
    pub timeouts: Timeouts,
    /// Fixed ISID; by default derived from initiator, target and portal.
    pub isid: Option<Isid>,
    /// Login redirects followed before giving up.
    pub max_redirects: u8,
    /// Commands in flight at most, whatever the target's window allows.
    pub queue_depth: u32,
    /// Replay or hand back unfinished commands after a connection failure.
    pub recovery: Recovery,
    /// When to try to log in again after a failure.
    pub reconnect: ReconnectPolicy,
    /// Same-path retries of the block API over this session.
    pub retry: RetryPolicy,
}

impl SessionConfig {
    /// A normal session with defaults.
    pub fn new(
        portal: Portal,
        target_name: impl Into<String>,
        initiator_name: impl Into<String>,
    ) -> Self {
        SessionConfig {
            portal,
            target_name: Some(target_name.into()),
            initiator_name: initiator_name.into(),
            initiator_alias: None,
            chap: None,
            operational: OperationalPreferences::default(),
            timeouts: Timeouts::default(),
            isid: None,
            max_redirects: 5,
            queue_depth: 128,
            recovery: Recovery::default(),
            reconnect: ReconnectPolicy::default(),
            retry: RetryPolicy::default(),
        }
    }

    /// A discovery session with defaults.
    pub fn discovery(portal: Portal, initiator_name: impl Into<String>) -> Self {
        SessionConfig {
            target_name: None,
            ..SessionConfig::new(portal, "", initiator_name)
        }
    }

    /// A discovery session: no target name (SessionType=Discovery).
    pub fn is_discovery(&self) -> bool {
        self.target_name.is_none()
    }

    /// The ISID for this initiator/target/portal triple: stable across reconnects
    /// and processes, so that a new login reinstates the old session (§6.3.5),
    /// and different per portal so that paths to one target are distinct
    /// sessions even when the portals share a portal group.
    pub fn isid(&self) -> Isid {
        if let Some(isid) = self.isid {
            return isid;
        }
        let mut h = Sha256::new();
        h.update(self.initiator_name.as_bytes());
        h.update([0]);
        h.update(self.target_name.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(self.portal.to_string().as_bytes());
        let d = h.finalize();
        Isid::random([d[0], d[1], d[2], d[3], d[4]])
    }

    /// Checks what can be checked before connecting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initiator_name.is_empty() {
            return Err(ConfigError::MissingInitiatorName);
        }
        if matches!(&self.target_name, Some(t) if t.is_empty()) {
            return Err(ConfigError::MissingTargetName);
        }
        if let Some(chap) = &self.chap {
            if chap.initiator.secret.is_empty() {
                return Err(ConfigError::EmptySecret);
            }
            if chap.algorithms.is_empty() {
                return Err(ConfigError::NoChapAlgorithm);
            }
            if let Some(target) = &chap.target {
                // RFC 7143 §12.1.3: a secret must never serve both directions,
                // or a reflected challenge would authenticate an impostor.
                if target.secret == chap.initiator.secret {
                    return Err(ConfigError::SameSecretBothWays);
                }
                if target.secret.is_empty() {
                    return Err(ConfigError::EmptySecret);
                }
            }
        }
        let op = &self.operational;
        if !(512..=16_777_215).contains(&op.max_recv_data_segment_length) {
            return Err(ConfigError::OutOfRange("MaxRecvDataSegmentLength"));
        }
        if !(512..=16_777_215).contains(&op.max_burst_length) {
            return Err(ConfigError::OutOfRange("MaxBurstLength"));
        }
        if !(512..=op.max_burst_length).contains(&op.first_burst_length) {
            return Err(ConfigError::OutOfRange("FirstBurstLength"));
        }
        if op.max_outstanding_r2t == 0 || op.max_outstanding_r2t > 65535 {
            return Err(ConfigError::OutOfRange("MaxOutstandingR2T"));
        }
        if self.queue_depth == 0 {
            return Err(ConfigError::OutOfRange("queue depth"));
        }
        let r = &self.reconnect;
        if r.first_delay.is_zero() || r.max_delay < r.first_delay || r.max_delay > DAY {
            return Err(ConfigError::OutOfRange("reconnect delay"));
        }
        self.timeouts.validate()?;
        Ok(())
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// [`SessionConfig::initiator_name`] is empty.
    #[error("no initiator name configured")]
    MissingInitiatorName,
    /// [`SessionConfig::target_name`] is `Some("")`.
    #[error("empty target name")]
    MissingTargetName,
    /// A CHAP secret, ours or the target's, is empty.
    #[error("empty CHAP secret")]
    EmptySecret,
    /// [`ChapConfig::algorithms`] is empty.
    #[error("no CHAP algorithm to offer")]
    NoChapAlgorithm,
    /// Mutual CHAP with one secret both ways, which RFC 7143 §12.1.3
    /// forbids: a reflected challenge would authenticate an impostor.
    #[error(
        "the mutual CHAP secret equals the initiator's secret; RFC 7143 forbids one secret for both directions"
    )]
    SameSecretBothWays,
    /// The named value is zero, too large, or inconsistent with another.
    #[error("{0} out of range")]
    OutOfRange(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig::new(Portal::new("127.0.0.1", 3260), "iqn.t", "iqn.i")
    }

    #[test]
    fn isid_is_stable_and_per_portal() {
        let a = config();
        let mut b = config();
        assert_eq!(a.isid(), b.isid());
        b.portal = Portal::new("127.0.0.2", 3260);
        assert_ne!(a.isid(), b.isid());
        assert_eq!(a.isid().0[0] >> 6, 0b10);
    }

    /// Debug is what a `?config` in a log line or an error's context shows:
    /// the user names, never either secret, in either form of `{:?}`.
    #[test]
    fn debug_never_shows_a_secret() {
        const OURS: &str = "initiator-secret-4411";
        const THEIRS: &str = "target-secret-7723";
        let mut c = config();
        c.chap = Some(ChapConfig::mutual(
            ChapCredentials::new("alice", OURS),
            ChapCredentials::new("array", THEIRS),
        ));
        let chap = c.chap.clone().unwrap();
        let shown = [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{chap:?}"),
            format!("{:?}", chap.initiator),
            format!("{:#?}", chap.target),
        ];
        for text in &shown {
            assert!(!text.contains(OURS) && !text.contains(THEIRS), "{text}");
        }
        assert!(shown[0].contains("alice") && shown[0].contains("array"));
        assert!(shown[0].contains("<redacted>"), "{}", shown[0]);
    }

    #[test]
    fn same_secret_both_ways_refused() {
        let mut c = config();
        c.chap = Some(ChapConfig::mutual(
            ChapCredentials::new("u", "samesecret12"),
            ChapCredentials::new("t", "samesecret12"),
        ));
        assert_eq!(c.validate(), Err(ConfigError::SameSecretBothWays));
        let msg = ConfigError::SameSecretBothWays.to_string();
        assert!(!msg.contains("samesecret12"));
    }

    #[test]
    fn absurd_timeouts_refused() {
        let mut c = config();
        c.timeouts.command = Duration::ZERO;
        assert_eq!(
            c.validate(),
            Err(ConfigError::OutOfRange("command timeout"))
        );
        let mut c = config();
        c.timeouts.login = Duration::MAX;
        assert_eq!(c.validate(), Err(ConfigError::OutOfRange("login timeout")));
        let mut c = config();
        c.timeouts.replacement = Duration::ZERO;
        c.timeouts.nop_interval = Duration::ZERO;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn defaults_validate() {
        assert_eq!(config().validate(), Ok(()));
        let d = SessionConfig::discovery(Portal::new("::1", 3260), "iqn.i");
        assert!(d.is_discovery());
        assert_eq!(d.validate(), Ok(()));
    }
}
