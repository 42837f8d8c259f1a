//! The connector properties: what a host sends to the storage service's
//! initialize_connection, in os-brick's shape, so that Cinder's drivers
//! answer riscsi as they answer os-brick.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One host's connector object. Field order is the contract's, which is
/// also the order the JSON keys are written in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorProperties {
    /// This host's initiator IQN.
    pub initiator: String,
    /// Whether the host does multipath (riscsi always can: true by default).
    #[serde(default)]
    pub multipath: bool,
    /// Whether the storage service must refuse a single-path export.
    #[serde(default)]
    pub enforce_multipath: bool,
    /// The host name.
    pub host: String,
    /// The address the host reaches storage from.
    pub ip: String,
    /// The machine architecture, e.g. `x86_64`.
    pub platform: String,
    /// The operating system, e.g. `linux`.
    pub os_type: String,
}

impl ConnectorProperties {
    /// This host's properties: multipath on, not enforced, and this build's
    /// architecture and operating system.
    pub fn new(initiator: impl Into<String>, host: impl Into<String>, ip: IpAddr) -> Self {
        ConnectorProperties {
            initiator: initiator.into(),
            multipath: true,
            enforce_multipath: false,
            host: host.into(),
            ip: ip.to_string(),
            platform: std::env::consts::ARCH.to_owned(),
            os_type: std::env::consts::OS.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_contract_order() {
        let c = ConnectorProperties::new("iqn.i:h", "node1", "fd00::5".parse().unwrap());
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"initiator":"iqn.i:h","multipath":true,"enforce_multipath":false,"host":"node1","ip":"fd00::5","platform":"{}","os_type":"{}"}}"#,
                std::env::consts::ARCH,
                std::env::consts::OS
            )
        );
    }

    #[test]
    fn reads_an_os_brick_connector() {
        // os-brick adds keys of other transports; they are ignored.
        let c: ConnectorProperties = serde_json::from_str(
            r#"{"platform": "x86_64", "os_type": "linux", "ip": "10.0.0.5", "host": "cmp1",
                "multipath": true, "enforce_multipath": true, "initiator": "iqn.1993-08.org.debian:01:abc",
                "do_local_attach": false, "nqn": "nqn.2014-08.org.nvmexpress:uuid:x", "uuid": "u"}"#,
        )
        .unwrap();
        assert_eq!(c.initiator, "iqn.1993-08.org.debian:01:abc");
        assert!(c.multipath && c.enforce_multipath);
        assert_eq!((c.host.as_str(), c.ip.as_str()), ("cmp1", "10.0.0.5"));
        let roundtrip: ConnectorProperties =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(roundtrip, c);
    }

    #[test]
    fn multipath_flags_default_to_false_when_absent() {
        let c: ConnectorProperties = serde_json::from_str(
            r#"{"initiator": "iqn.i", "host": "h", "ip": "1.2.3.4", "platform": "aarch64", "os_type": "linux"}"#,
        )
        .unwrap();
        assert!(!c.multipath && !c.enforce_multipath);
    }
}
