//! How I/O is spread over the live paths, as dm-multipath names it.

use std::fmt;
use std::str::FromStr;

/// The path selector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// All I/O on one path: the main path while it may carry I/O (see
    /// [`crate::Failback`]), else the first live secondary, kept until it fails.
    #[default]
    Failover,
    /// Each command to the next live path in turn.
    RoundRobin,
    /// Each command to the live path with the fewest commands in flight.
    QueueLength,
    /// Each command to the live path expected to finish it soonest: bytes in
    /// flight (this command's included), ties broken by recent latency.
    ServiceTime,
}

impl Policy {
    /// The dm-multipath spelling.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Failover => "failover",
            Policy::RoundRobin => "round-robin",
            Policy::QueueLength => "queue-length",
            Policy::ServiceTime => "service-time",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one of the four.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {0:?}: expected failover, round-robin, queue-length or service-time")]
pub struct PolicyParseError(String);

impl FromStr for Policy {
    type Err = PolicyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "failover" => Ok(Policy::Failover),
            "round-robin" | "roundrobin" | "rr" => Ok(Policy::RoundRobin),
            "queue-length" | "queuelength" => Ok(Policy::QueueLength),
            "service-time" | "servicetime" => Ok(Policy::ServiceTime),
            _ => Err(PolicyParseError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in [
            Policy::Failover,
            Policy::RoundRobin,
            Policy::QueueLength,
            Policy::ServiceTime,
        ] {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
        }
        assert_eq!("Round_Robin".parse::<Policy>(), Ok(Policy::RoundRobin));
        let err = "fastest".parse::<Policy>().unwrap_err();
        assert!(err.to_string().contains("round-robin"), "{err}");
    }
}
