//! The operational values a probe connection works with after login: what
//! the target answered to our offers, or the RFC 7143 §13 default where a
//! key was not negotiated. The probe never computes an outcome itself: a
//! target that answers wrongly is for a test to catch, and the probe then
//! follows the target's answer, as its peer would.

use iscsi_proto::codec::Digests;
use iscsi_proto::text::KeyValue;

use crate::probe::text;

/// Values that shape the data transfer of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// HeaderDigest=CRC32C agreed.
    pub header_digest: bool,
    /// DataDigest=CRC32C agreed.
    pub data_digest: bool,
    /// InitialR2T (default Yes).
    pub initial_r2t: bool,
    /// ImmediateData (default Yes).
    pub immediate_data: bool,
    /// FirstBurstLength (default 65536).
    pub first_burst: u32,
    /// MaxBurstLength (default 262144).
    pub max_burst: u32,
    /// MaxOutstandingR2T (default 1).
    pub max_outstanding_r2t: u32,
    /// MaxConnections (default 1).
    pub max_connections: u32,
    /// ErrorRecoveryLevel (default 0).
    pub error_recovery_level: u32,
    /// The MaxRecvDataSegmentLength we declared: the largest data segment
    /// the target may send us.
    pub our_mrdsl: u32,
    /// The target's MaxRecvDataSegmentLength (default 8192): the largest
    /// data segment we may send.
    pub their_mrdsl: u32,
}

impl Default for Negotiated {
    fn default() -> Self {
        Negotiated {
            header_digest: false,
            data_digest: false,
            initial_r2t: true,
            immediate_data: true,
            first_burst: 65536,
            max_burst: 262_144,
            max_outstanding_r2t: 1,
            max_connections: 1,
            error_recovery_level: 0,
            our_mrdsl: 8192,
            their_mrdsl: 8192,
        }
    }
}

fn number(value: Option<&str>) -> Option<u32> {
    let v = value?;
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse::<u64>().ok(),
    };
    parsed.and_then(|n| u32::try_from(n).ok())
}

fn boolean(value: Option<&str>) -> Option<bool> {
    match value? {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

impl Negotiated {
    /// From the target's answers and declarations over the whole login,
    /// and the MaxRecvDataSegmentLength we declared.
    pub fn from_answers(answers: &[KeyValue], our_mrdsl: u32) -> Negotiated {
        let d = Negotiated::default();
        let get = |key| text::last(answers, key);
        Negotiated {
            header_digest: get("HeaderDigest") == Some("CRC32C"),
            data_digest: get("DataDigest") == Some("CRC32C"),
            initial_r2t: boolean(get("InitialR2T")).unwrap_or(d.initial_r2t),
            immediate_data: boolean(get("ImmediateData")).unwrap_or(d.immediate_data),
            first_burst: number(get("FirstBurstLength")).unwrap_or(d.first_burst),
            max_burst: number(get("MaxBurstLength")).unwrap_or(d.max_burst),
            max_outstanding_r2t: number(get("MaxOutstandingR2T")).unwrap_or(1).max(1),
            max_connections: number(get("MaxConnections")).unwrap_or(1),
            error_recovery_level: number(get("ErrorRecoveryLevel")).unwrap_or(0),
            our_mrdsl,
            // A declaration below the RFC minimum would stall us: 512 floor.
            their_mrdsl: number(get("MaxRecvDataSegmentLength"))
                .unwrap_or(d.their_mrdsl)
                .max(512),
        }
    }

    /// The digests in force once in full feature phase.
    pub fn digests(&self) -> Digests {
        Digests {
            header: self.header_digest,
            data: self.data_digest,
        }
    }
}

/// Parses a numeric value as RFC 7143 §6.1 writes them (decimal or 0x hex).
pub fn parse_number(value: &str) -> Option<u64> {
    match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse::<u64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_override_defaults() {
        let answers = text::pairs(&[
            ("HeaderDigest", "CRC32C"),
            ("InitialR2T", "No"),
            ("MaxBurstLength", "0x1000"),
            ("MaxRecvDataSegmentLength", "100"),
        ]);
        let n = Negotiated::from_answers(&answers, 4096);
        assert!(n.header_digest && !n.data_digest);
        assert!(!n.initial_r2t && n.immediate_data);
        assert_eq!(n.max_burst, 4096);
        assert_eq!(n.first_burst, 65536);
        assert_eq!(n.their_mrdsl, 512);
        assert_eq!(n.our_mrdsl, 4096);
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number("x"), None);
    }
}
