//! The negotiated session and connection parameters, typed.

use super::keys;
use super::value::Value;

/// A header or data digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Digest {
    /// No digest.
    #[default]
    None,
    /// CRC32C (RFC 7143 §13.1).
    Crc32c,
}

impl Digest {
    /// Parses the negotiated list value (`None` or `CRC32C`).
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "None" => Some(Self::None),
            "CRC32C" => Some(Self::Crc32c),
            _ => None,
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Crc32c => "CRC32C",
        }
    }

    /// Bytes the digest adds after a header or data segment.
    pub const fn wire_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::Crc32c => 4,
        }
    }
}

/// Discovery or normal session (RFC 7143 §13.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionType {
    /// A session that reaches a target's LUs.
    #[default]
    Normal,
    /// A session that only issues SendTargets.
    Discovery,
}

impl SessionType {
    /// Parses `Normal` or `Discovery`.
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "Normal" => Some(Self::Normal),
            "Discovery" => Some(Self::Discovery),
            _ => None,
        }
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Discovery => "Discovery",
        }
    }
}

/// Task completion reporting semantics (RFC 7143 §13.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskReporting {
    /// Original RFC 3720 semantics.
    #[default]
    Rfc3720,
    /// ResponseFence semantics (RFC 7143 §4.2.2.3.3).
    ResponseFence,
    /// FastAbort multi-task abort semantics.
    FastAbort,
}

impl TaskReporting {
    /// Parses the wire name.
    pub fn from_value(value: &str) -> Option<Self> {
        match value {
            "RFC3720" => Some(Self::Rfc3720),
            "ResponseFence" => Some(Self::ResponseFence),
            "FastAbort" => Some(Self::FastAbort),
            _ => None,
        }
    }
}

/// Every parameter a session or connection runs with after login.
///
/// Keys that were not negotiated, or were answered `NotUnderstood`,
/// `Irrelevant` or `Reject`, keep their RFC 7143 default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationalParams {
    /// Normal or discovery session.
    pub session_type: SessionType,
    /// Digest on PDU headers.
    pub header_digest: Digest,
    /// Digest on data segments.
    pub data_digest: Digest,
    /// What WE declared: the largest data segment the peer may send us.
    pub max_recv_data_segment_length: u32,
    /// What the PEER declared: the largest data segment we may send it.
    pub max_xmit_data_segment_length: u32,
    /// Largest solicited or unsolicited data sequence.
    pub max_burst_length: u32,
    /// Largest amount of unsolicited data per command (never above
    /// `max_burst_length`).
    pub first_burst_length: u32,
    /// The initiator must wait for R2T before sending data.
    pub initial_r2t: bool,
    /// Data may ride in the SCSI Command PDU.
    pub immediate_data: bool,
    /// R2Ts outstanding per task.
    pub max_outstanding_r2t: u16,
    /// Data PDUs within a sequence arrive in order.
    pub data_pdu_in_order: bool,
    /// Data sequences arrive in order.
    pub data_sequence_in_order: bool,
    /// Error recovery level, 0 to 2.
    pub error_recovery_level: u8,
    /// Seconds to wait before reconnecting after a connection failure.
    pub default_time2wait: u16,
    /// Seconds the target keeps task state after a connection failure.
    pub default_time2retain: u16,
    /// Connections allowed in the session.
    pub max_connections: u16,
    /// Task completion reporting semantics.
    pub task_reporting: TaskReporting,
    /// RFC 7144 protocol level.
    pub iscsi_protocol_level: u8,
    /// The target portal group tag the target declared.
    pub target_portal_group_tag: Option<u16>,
    /// Declared TargetName.
    pub target_name: Option<String>,
    /// Declared InitiatorName.
    pub initiator_name: Option<String>,
    /// Declared TargetAlias.
    pub target_alias: Option<String>,
    /// Declared InitiatorAlias.
    pub initiator_alias: Option<String>,
    /// The agreed authentication method (`None` when not negotiated).
    pub auth_method: String,
}

/// The RFC 7143 default of a numeric key, read from the key table so the
/// defaults live in one place.
pub(crate) fn table_default_number(key: &str) -> u64 {
    match keys::lookup(key).and_then(|def| def.default_value()) {
        Some(Value::Number(n)) => n,
        _ => 0,
    }
}

/// The RFC 7143 default of a boolean key, from the key table.
pub(crate) fn table_default_bool(key: &str) -> bool {
    matches!(
        keys::lookup(key).and_then(|def| def.default_value()),
        Some(Value::Boolean(true))
    )
}

/// Narrows a table-checked number; the table ranges guarantee the fit, the
/// fallback only guards against a table edit that breaks it.
pub(crate) fn narrow<T: TryFrom<u64>>(n: u64, fallback: T) -> T {
    T::try_from(n).unwrap_or(fallback)
}

impl Default for OperationalParams {
    /// RFC 7143 defaults for every key.
    fn default() -> Self {
        let num = table_default_number;
        let flag = table_default_bool;
        let mrdsl = narrow(num("MaxRecvDataSegmentLength"), 8192);
        Self {
            session_type: SessionType::Normal,
            header_digest: Digest::None,
            data_digest: Digest::None,
            max_recv_data_segment_length: mrdsl,
            max_xmit_data_segment_length: mrdsl,
            max_burst_length: narrow(num("MaxBurstLength"), 262_144),
            first_burst_length: narrow(num("FirstBurstLength"), 65_536),
            initial_r2t: flag("InitialR2T"),
            immediate_data: flag("ImmediateData"),
            max_outstanding_r2t: narrow(num("MaxOutstandingR2T"), 1),
            data_pdu_in_order: flag("DataPDUInOrder"),
            data_sequence_in_order: flag("DataSequenceInOrder"),
            error_recovery_level: narrow(num("ErrorRecoveryLevel"), 0),
            default_time2wait: narrow(num("DefaultTime2Wait"), 2),
            default_time2retain: narrow(num("DefaultTime2Retain"), 20),
            max_connections: narrow(num("MaxConnections"), 1),
            task_reporting: TaskReporting::Rfc3720,
            iscsi_protocol_level: narrow(num("iSCSIProtocolLevel"), 0),
            target_portal_group_tag: None,
            target_name: None,
            initiator_name: None,
            target_alias: None,
            initiator_alias: None,
            auth_method: "None".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rfc_7143() {
        let p = OperationalParams::default();
        assert_eq!(p.max_recv_data_segment_length, 8192);
        assert_eq!(p.max_xmit_data_segment_length, 8192);
        assert_eq!(p.max_burst_length, 262_144);
        assert_eq!(p.first_burst_length, 65_536);
        assert!(p.initial_r2t);
        assert!(p.immediate_data);
        assert_eq!(p.max_outstanding_r2t, 1);
        assert!(p.data_pdu_in_order && p.data_sequence_in_order);
        assert_eq!(p.error_recovery_level, 0);
        assert_eq!(p.default_time2wait, 2);
        assert_eq!(p.default_time2retain, 20);
        assert_eq!(p.max_connections, 1);
        assert_eq!(p.header_digest, Digest::None);
        assert_eq!(p.session_type, SessionType::Normal);
    }

    #[test]
    fn enum_names_round_trip() {
        for d in [Digest::None, Digest::Crc32c] {
            assert_eq!(Digest::from_value(d.as_str()), Some(d));
        }
        assert_eq!(Digest::Crc32c.wire_len(), 4);
        assert_eq!(Digest::None.wire_len(), 0);
        for s in [SessionType::Normal, SessionType::Discovery] {
            assert_eq!(SessionType::from_value(s.as_str()), Some(s));
        }
        assert_eq!(
            TaskReporting::from_value("FastAbort"),
            Some(TaskReporting::FastAbort)
        );
        assert_eq!(Digest::from_value("crc32c"), None);
    }
}
