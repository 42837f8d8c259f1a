//! What the suite runs against: one LU behind one portal (a volume URL),
//! and optionally the same LU behind a second portal for the multipath family.

use std::fmt;
use std::time::Duration;

use iscsi_session::{ChapConfig, ChapCredentials, DigestPreference, IscsiUrl, Portal, UrlError};

/// Why a URL cannot name a conformance endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// A portal-only URL: the suite needs a target and a LUN.
    #[error("{portal}: the URL names no target (iscsi://host[:port]/target-iqn/lun)")]
    NoTarget {
        /// host:port.
        portal: String,
    },
    /// The CHAP settings of the URL do not go together.
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// One path to the logical unit under test. `Debug` never shows the CHAP
/// secrets: they are [`iscsi_session::Secret`]s.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Where to connect.
    pub portal: Portal,
    /// The target's IQN.
    pub target: String,
    /// The LUN of the logical unit.
    pub lun: u16,
    /// CHAP credentials for normal sessions, when the target wants them.
    pub chap: Option<ChapConfig>,
    /// What the probe offers for HeaderDigest (default `None,CRC32C`).
    pub header_digest: DigestPreference,
    /// What the probe offers for DataDigest (default `None,CRC32C`).
    pub data_digest: DigestPreference,
}

impl Endpoint {
    /// An endpoint from a volume URL with its CHAP settings resolved
    /// (`iscsi://[user%secret@]host[:port]/iqn/lun[?target_user=..]`).
    pub fn from_url(url: &IscsiUrl) -> Result<Endpoint, EndpointError> {
        let target = url.target.clone().ok_or_else(|| EndpointError::NoTarget {
            portal: url.portal.to_string(),
        })?;
        Ok(Endpoint {
            portal: url.portal.clone(),
            target,
            lun: url.lun.unwrap_or(0),
            chap: url.chap(None)?,
            header_digest: url.header_digest.unwrap_or(DigestPreference::PreferNone),
            data_digest: url.data_digest.unwrap_or(DigestPreference::PreferNone),
        })
    }

    /// An endpoint without CHAP and with the default digest offers.
    pub fn new(portal: Portal, target: impl Into<String>, lun: u16) -> Endpoint {
        Endpoint {
            portal,
            target: target.into(),
            lun,
            chap: None,
            header_digest: DigestPreference::PreferNone,
            data_digest: DigestPreference::PreferNone,
        }
    }

    /// The initiator's CHAP credentials, if any.
    pub fn initiator_chap(&self) -> Option<&ChapCredentials> {
        self.chap.as_ref().map(|c| &c.initiator)
    }

    /// The target's credentials for mutual CHAP, if any.
    pub fn target_chap(&self) -> Option<&ChapCredentials> {
        self.chap.as_ref().and_then(|c| c.target.as_ref())
    }

    /// `host:port`, for messages (IPv6 in brackets).
    pub fn portal_label(&self) -> String {
        self.portal.to_string()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.portal, self.target, self.lun)
    }
}

/// Everything the tests share for one run.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// The LU under test.
    pub primary: Endpoint,
    /// The same LU through another portal (multipath family).
    pub secondary: Option<Endpoint>,
    /// Our initiator IQN.
    pub initiator_name: String,
    /// Run the tests that write to the LU or reset it.
    pub dataloss: bool,
    /// How long one PDU may take to arrive before the probe gives up.
    pub pdu_timeout: Duration,
    /// How long the probe listens to conclude that the target sends nothing
    /// (a command outside the window, a NOP-Out that wants no answer).
    pub quiet_period: Duration,
    /// How long one test may run in all.
    pub test_timeout: Duration,
    /// Patterns (as for selection) of tests to report as skipped without
    /// running them: a test known to bring a target down would end the run.
    pub excluded: Vec<String>,
    /// How many tests run at once (tests marked exclusive always run alone,
    /// after the others). 1 runs everything in catalogue order.
    pub jobs: usize,
    /// A target configured to send NOP-In pings (a short NOP interval);
    /// without it the ping tests wait for pings on the LU under test.
    pub pinging: Option<Endpoint>,
    /// How long the ping tests wait for one target-sent NOP-In.
    pub nop_in_wait: Duration,
    /// A target configured to redirect every login (the redirect tests
    /// skip without it).
    pub redirected: Option<Endpoint>,
}

impl SuiteConfig {
    /// Defaults: 5 s per PDU, 300 ms of silence, 30 s per test, no dataloss,
    /// 5 s of waiting for a target's ping.
    pub fn new(primary: Endpoint, initiator_name: impl Into<String>) -> SuiteConfig {
        SuiteConfig {
            primary,
            secondary: None,
            initiator_name: initiator_name.into(),
            dataloss: false,
            pdu_timeout: Duration::from_secs(5),
            quiet_period: Duration::from_millis(300),
            test_timeout: Duration::from_secs(30),
            excluded: Vec::new(),
            jobs: 1,
            pinging: None,
            nop_in_wait: Duration::from_secs(5),
            redirected: None,
        }
    }
}
