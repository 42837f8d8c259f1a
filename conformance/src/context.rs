//! What a test body gets: the configuration, and helpers to open probe
//! connections the way most tests need them.

use std::time::Duration;

use bytes::Bytes;
use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::{Cdb, SenseKey};

use crate::endpoint::{Endpoint, SuiteConfig};
use crate::error::ProbeError;
use crate::probe::chap::ChapPlan;
use crate::probe::connection::Probe;
use crate::probe::login::{Auth, LoginReport, LoginSpec};
use crate::probe::scsi::ScsiRequest;

/// UNIT ATTENTIONs cleared after login before a test begins.
const MAX_UNIT_ATTENTIONS: usize = 6;

/// Shared by every test of a run.
#[derive(Debug)]
pub struct Ctx {
    /// The run's configuration.
    pub config: SuiteConfig,
}

impl Ctx {
    /// A context for `config`.
    pub fn new(config: SuiteConfig) -> Ctx {
        Ctx { config }
    }

    /// The LU under test.
    pub fn primary(&self) -> &Endpoint {
        &self.config.primary
    }

    /// The second path, when given.
    pub fn secondary(&self) -> Option<&Endpoint> {
        self.config.secondary.as_ref()
    }

    /// Our initiator IQN.
    pub fn initiator(&self) -> &str {
        &self.config.initiator_name
    }

    /// A second initiator IQN, for tests that need another I_T nexus
    /// owner.
    pub fn other_initiator(&self) -> String {
        format!("{}-other", self.config.initiator_name)
    }

    /// How long the probe listens for silence.
    pub fn quiet(&self) -> Duration {
        self.config.quiet_period
    }

    /// The LUN of `ep` as the BHS carries it.
    pub fn lun(&self, ep: &Endpoint) -> Lun {
        Lun::from_number(ep.lun).unwrap_or_default()
    }

    /// How `ep` authenticates (honest MD5 CHAP when it has credentials).
    pub fn auth(&self, ep: &Endpoint) -> Auth {
        match ep.initiator_chap() {
            Some(c) => Auth::Chap(ChapPlan::md5(c.clone(), ep.target_chap().cloned())),
            None => Auth::None,
        }
    }

    /// The normal-session login a test starts from.
    pub fn spec(&self, ep: &Endpoint) -> LoginSpec {
        LoginSpec::normal(
            self.initiator(),
            &ep.target,
            self.auth(ep),
            (ep.header_digest.offer(), ep.data_digest.offer()),
        )
    }

    /// A discovery-session login (CHAP as for normal sessions: the URL
    /// carries one set of credentials).
    pub fn discovery_spec(&self, ep: &Endpoint) -> LoginSpec {
        LoginSpec::discovery(self.initiator(), self.auth(ep))
    }

    /// A TCP connection to `ep`, not logged in.
    pub async fn connect(&self, ep: &Endpoint) -> Result<Probe, ProbeError> {
        Probe::connect(ep, self.config.pdu_timeout).await
    }

    /// A connection logged in with `spec`, with the login report; fails
    /// unless full feature phase was reached.
    pub async fn open_with(
        &self,
        ep: &Endpoint,
        spec: &LoginSpec,
    ) -> Result<(Probe, LoginReport), ProbeError> {
        let mut probe = self.connect(ep).await?;
        let report = probe.login(spec).await?;
        if !report.ok() {
            return Err(ProbeError::Login {
                portal: ep.portal_label(),
                target: ep.target.clone(),
                reason: report.describe(),
            });
        }
        Ok((probe, report))
    }

    /// A normal session to `ep` in full feature phase, with pending UNIT
    /// ATTENTIONs (power on, reset by an earlier test) cleared.
    pub async fn open(&self, ep: &Endpoint) -> Result<Probe, ProbeError> {
        let (mut probe, _) = self.open_with(ep, &self.spec(ep)).await?;
        self.settle(&mut probe).await?;
        Ok(probe)
    }

    /// TEST UNIT READY until it no longer reports a UNIT ATTENTION.
    pub async fn settle(&self, probe: &mut Probe) -> Result<(), ProbeError> {
        let lun = self.lun(&probe.endpoint);
        for _ in 0..MAX_UNIT_ATTENTIONS {
            let out = probe
                .execute(ScsiRequest::none(lun, Cdb::test_unit_ready().to_bytes()))
                .await?;
            if !out.is_key(SenseKey::UnitAttention) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// READ CAPACITY (16): block count and size, for the SCSI tests.
    pub async fn capacity(&self, probe: &mut Probe) -> Result<(u64, u32), ProbeError> {
        let lun = self.lun(&probe.endpoint);
        let out = probe
            .execute(ScsiRequest::read(
                lun,
                Cdb::read_capacity16(32).to_bytes(),
                32,
            ))
            .await?;
        let parsed = if out.is_good() {
            iscsi_proto::scsi::ReadCapacity16::parse(&out.data).ok()
        } else {
            None
        };
        match parsed {
            Some(rc) => Ok((rc.block_count(), rc.block_length)),
            None => {
                // Old targets: READ CAPACITY (10).
                let out10 = probe
                    .execute(ScsiRequest::read(lun, Cdb::read_capacity10().to_bytes(), 8))
                    .await?;
                let rc = iscsi_proto::scsi::ReadCapacity10::parse(&out10.data).map_err(|e| {
                    ProbeError::Precondition {
                        portal: probe.portal().to_owned(),
                        what: "READ CAPACITY".into(),
                        reason: format!("{} ({e})", out10.describe()),
                    }
                })?;
                Ok((u64::from(rc.last_lba) + 1, rc.block_length))
            }
        }
    }

    /// Logs out when it can, and drops the connection either way.
    pub async fn close(&self, mut probe: Probe) {
        let _ = tokio::time::timeout(self.config.quiet_period * 4, probe.logout_session()).await;
    }
}

/// `len` bytes of a pattern that differs per call, so that a read-back
/// cannot pass on stale data.
pub fn pattern(len: usize) -> Bytes {
    let seed: u8 = rand::random();
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
            .collect::<Vec<u8>>(),
    )
}
