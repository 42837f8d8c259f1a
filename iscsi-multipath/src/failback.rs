//! When the main path carries I/O again after it recovers, as multipathd's
//! `failback` names the modes, and what to do while no path is left
//! (`no_path_retry`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// When a recovered main path is used again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Failback {
    /// As soon as it is healthy again.
    #[default]
    Immediate,
    /// Not until [`crate::MultipathVolume::failback`] is called (or no other
    /// path is left).
    Manual,
    /// Only when the main path itself comes back (its session logged in
    /// again); not when it stopped carrying I/O for a SCSI-level reason while
    /// its session stayed up (an ALUA state change another initiator may
    /// have asked for, I/O errors), which multipathd leaves to whoever
    /// caused it.
    Followover,
    /// After it has been healthy without a break for this long.
    After(Duration),
}

impl fmt::Display for Failback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failback::Immediate => f.write_str("immediate"),
            Failback::Manual => f.write_str("manual"),
            Failback::Followover => f.write_str("followover"),
            Failback::After(d) => write!(f, "{}", d.as_secs()),
        }
    }
}

/// A failback or no_path_retry value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: expected {expected}")]
pub struct ModeParseError {
    what: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Failback {
    type Err = ModeParseError;

    /// `immediate`, `manual`, `followover`, or a number of seconds (multipathd's syntax).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "immediate" => Ok(Failback::Immediate),
            "manual" => Ok(Failback::Manual),
            "followover" => Ok(Failback::Followover),
            n => n
                .strip_suffix('s')
                .unwrap_or(n)
                .parse::<u32>()
                .map(|secs| Failback::After(Duration::from_secs(u64::from(secs))))
                .map_err(|_| ModeParseError {
                    what: "failback",
                    value: s.to_owned(),
                    expected: "immediate, manual, followover or a number of seconds",
                }),
        }
    }
}

/// What I/O does while no path is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoPathRetry {
    /// Wait for a path forever (dm-multipath's `queue_if_no_path`).
    Queue,
    /// Fail at once.
    Fail,
    /// Wait this long after the last path went down, then fail; I/O keeps
    /// failing at once until a path returns.
    For(Duration),
}

impl Default for NoPathRetry {
    fn default() -> Self {
        NoPathRetry::For(Duration::from_secs(30))
    }
}

impl fmt::Display for NoPathRetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoPathRetry::Queue => f.write_str("queue"),
            NoPathRetry::Fail => f.write_str("fail"),
            NoPathRetry::For(d) => write!(f, "{}s", d.as_secs_f64()),
        }
    }
}

impl FromStr for NoPathRetry {
    type Err = ModeParseError;

    /// `queue`, `fail`, or seconds (`30`, `30s`, `1.5`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "queue" => Ok(NoPathRetry::Queue),
            "fail" => Ok(NoPathRetry::Fail),
            n => n
                .strip_suffix('s')
                .unwrap_or(n)
                .parse::<f64>()
                .ok()
                .filter(|secs| secs.is_finite() && (0.0..=86_400.0).contains(secs))
                .map(|secs| NoPathRetry::For(Duration::from_secs_f64(secs)))
                .ok_or_else(|| ModeParseError {
                    what: "no_path_retry",
                    value: s.to_owned(),
                    expected: "queue, fail or seconds (at most a day)",
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failback_modes_parse() {
        assert_eq!("immediate".parse(), Ok(Failback::Immediate));
        assert_eq!("Manual".parse(), Ok(Failback::Manual));
        assert_eq!("followover".parse(), Ok(Failback::Followover));
        assert_eq!("15".parse(), Ok(Failback::After(Duration::from_secs(15))));
        assert_eq!("15s".parse(), Ok(Failback::After(Duration::from_secs(15))));
        assert!(
            "soon"
                .parse::<Failback>()
                .unwrap_err()
                .to_string()
                .contains("followover")
        );
    }

    #[test]
    fn no_path_retry_parses() {
        assert_eq!("queue".parse(), Ok(NoPathRetry::Queue));
        assert_eq!("fail".parse(), Ok(NoPathRetry::Fail));
        assert_eq!("30".parse(), Ok(NoPathRetry::For(Duration::from_secs(30))));
        assert_eq!(
            "1.5s".parse(),
            Ok(NoPathRetry::For(Duration::from_millis(1500)))
        );
        assert!("-1".parse::<NoPathRetry>().is_err());
        assert!("1e9".parse::<NoPathRetry>().is_err());
        assert!("NaN".parse::<NoPathRetry>().is_err());
    }
}
