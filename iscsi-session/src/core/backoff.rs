//! When a session tries to log in again after a failure: a capped
//! exponential backoff, never sooner than the target's Time2Wait.

use std::time::Duration;

/// The reconnect schedule of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Wait before the first new attempt after a connection is lost (the
    /// first attempt after a failed login waits this times `multiplier`).
    /// A connection lost before it lasted `max_delay` does not restart the
    /// schedule when the one before it did not last either: a target that
    /// drops every connection right after its login is retried on the
    /// growing backoff, as if the logins had failed.
    pub first_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Growth of the wait per failed attempt (1 keeps it constant).
    pub multiplier: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            multiplier: 2,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before attempt number `attempt` (1 for the first after a
    /// loss), at least `time2wait`.
    pub fn delay(&self, attempt: u32, time2wait: Duration) -> Duration {
        let mut delay = self.first_delay;
        for _ in 1..attempt.min(64) {
            delay = delay.saturating_mul(self.multiplier.max(1));
            if delay >= self.max_delay {
                break;
            }
        }
        delay.min(self.max_delay).max(time2wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_honours_time2wait() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.delay(1, Duration::ZERO), Duration::from_millis(100));
        assert_eq!(p.delay(2, Duration::ZERO), Duration::from_millis(200));
        assert_eq!(p.delay(7, Duration::ZERO), Duration::from_secs(5));
        assert_eq!(p.delay(u32::MAX, Duration::ZERO), Duration::from_secs(5));
        assert_eq!(p.delay(1, Duration::from_secs(2)), Duration::from_secs(2));
        let flat = ReconnectPolicy {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
            multiplier: 1,
        };
        assert_eq!(flat.delay(9, Duration::ZERO), Duration::from_secs(2));
    }
}
