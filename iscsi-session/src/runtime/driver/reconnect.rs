//! What happens between connections: given how a connection or a login
//! attempt ended and the time, when to log in again, or to stop and say
//! why. Policy only: the driver sleeps, logs in and reports; this decides.
//!
//! - A lost connection is retried after the backoff's first step, unless
//!   it lived less than the longest backoff after a connection that did
//!   not live either: a target that accepts every login and drops us at
//!   once is retried on the growing backoff, as if the logins had failed
//!   (`flaps`).
//! - A failed login is retried one backoff step later than the attempt
//!   before it, unless retrying cannot help (bad credentials, an ACL):
//!   then the session stops until asked. "No such target" right after a
//!   target that worked restarts is its configuration not being back yet:
//!   retried.
//! - Connections lost the same way after every login ([`LossStreak`]) stop
//!   the session until asked, before the replacement timeout would fail
//!   the commands without a word on why.
//! - Never sooner than the Time2Wait the target asked for, until a login
//!   works.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use super::streak::{LossStreak, LostConnection, REPEATED_LOSS_LIMIT};
use crate::core::backoff::ReconnectPolicy;
use crate::core::error::{Error, PathContext};

/// What to do after a lost connection or a failed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// Log in again at this instant.
    RetryAt(Instant),
    /// Stop logging in until asked to (`Session::reconnect_now`), and
    /// report this; the next attempt, once asked, starts afresh.
    GiveUp(Error),
}

/// The between-connections state of one session.
#[derive(Debug)]
pub(crate) struct Reconnect {
    policy: ReconnectPolicy,
    /// Login attempts since the last lost connection (or the start, or a
    /// retry asked for).
    attempts: u32,
    /// Consecutive connections lost before they outlived the longest
    /// backoff. A login that works proves little if the connection dies
    /// right after it: each such loss carries the backoff on, as a failed
    /// login does.
    flaps: u32,
    streak: LossStreak,
    /// The wait the target asked for (Time2Wait) before the next login,
    /// until one works.
    time2wait: Duration,
    /// When the current (or last) connection logged in; `None` before the
    /// first login.
    logged_in_at: Option<Instant>,
}

impl Reconnect {
    pub fn new(policy: ReconnectPolicy) -> Self {
        Reconnect {
            policy,
            attempts: 0,
            flaps: 0,
            streak: LossStreak::default(),
            time2wait: Duration::ZERO,
            logged_in_at: None,
        }
    }

    /// Whether a login ever worked on this session.
    pub fn ever_logged_in(&self) -> bool {
        self.logged_in_at.is_some()
    }

    /// A login attempt begins; returns how many since the last loss.
    pub fn attempt(&mut self) -> u32 {
        self.attempts += 1;
        self.attempts
    }

    /// A login worked at `now`.
    pub fn logged_in(&mut self, now: Instant) {
        self.logged_in_at = Some(now);
        self.time2wait = Duration::ZERO;
    }

    /// The target asked us to wait this long before logging in again.
    pub fn target_asks_to_wait(&mut self, time2wait: Duration) {
        self.time2wait = time2wait;
    }

    /// The logged-in connection was lost at `now` with `error`, after doing
    /// what `lost` says.
    pub fn connection_lost(
        &mut self,
        ctx: &PathContext,
        error: &Error,
        lost: LostConnection,
        now: Instant,
    ) -> Next {
        match self.streak.record(error, lost) {
            // Logging in again would replay the same commands into the same
            // failure: stop and say why.
            Some(count) if count >= REPEATED_LOSS_LIMIT => {
                warn!(
                    %error,
                    count,
                    "connection lost the same way after every login; \
                     not reconnecting until asked to"
                );
                self.start_afresh();
                self.flaps = 0;
                Next::GiveUp(Error::RepeatedFailure {
                    ctx: ctx.clone(),
                    count,
                    cause: Box::new(error.clone()),
                })
            }
            same => {
                warn!(%error, same_in_a_row = same, "connection lost");
                self.attempts = 0;
                let lived = self
                    .logged_in_at
                    .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
                self.flaps = if lived < self.policy.max_delay {
                    self.flaps + 1
                } else {
                    0
                };
                self.retry(now, self.flaps.max(1))
            }
        }
    }

    /// The login attempt begun last failed at `now` with `error`.
    pub fn login_failed(&mut self, ctx: &PathContext, error: &Error, now: Instant) -> Next {
        if self.gives_up_on(error) {
            warn!(%error, "login failed; not retrying until asked to");
            self.start_afresh();
            return Next::GiveUp(Error::LoginGaveUp {
                ctx: ctx.clone(),
                cause: Box::new(error.clone()),
            });
        }
        debug!(%error, attempts = self.attempts, "login failed");
        self.retry(now, self.flaps.max(1) + self.attempts)
    }

    /// Credentials or an ACL that are wrong stay wrong; but "no such
    /// target" right after a target that worked restarts is its
    /// configuration not being back yet.
    fn gives_up_on(&self, e: &Error) -> bool {
        e.is_permanent_login_failure() && !(self.ever_logged_in() && e.is_target_missing())
    }

    /// After giving up: the retry that is asked for counts from scratch.
    fn start_afresh(&mut self) {
        self.streak.reset();
        self.attempts = 0;
    }

    fn retry(&self, now: Instant, step: u32) -> Next {
        let delay = self.policy.delay(step, self.time2wait);
        // As tokio's own `sleep` does with a wait too long to represent.
        let far = || now + Duration::from_secs(86_400 * 365 * 30);
        Next::RetryAt(now.checked_add(delay).unwrap_or_else(far))
    }
}

#[cfg(test)]
mod tests {
    use iscsi_proto::pdu::LoginStatus;

    use super::*;
    use crate::core::portal::Portal;

    fn ctx() -> PathContext {
        PathContext {
            portal: Portal::new("127.0.0.1", 3260),
            target: "iqn.t".into(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn dropped() -> Error {
        Error::ConnectionLost {
            ctx: ctx(),
            reason: "target closed the connection".into(),
        }
    }

    fn refused(status: LoginStatus) -> Error {
        Error::LoginRejected { ctx: ctx(), status }
    }

    fn unreachable() -> Error {
        Error::Connect {
            ctx: ctx(),
            reason: "connection refused".into(),
        }
    }

    const IDLE: LostConnection = LostConnection {
        completed: 0,
        unfinished: 0,
    };
    const BUSY: LostConnection = LostConnection {
        completed: 0,
        unfinished: 2,
    };

    /// Default policy: 100 ms, doubling, 5 s at most.
    fn reconnect() -> Reconnect {
        Reconnect::new(ReconnectPolicy::default())
    }

    /// Time matters here: how long each connection lived decides the next
    /// wait. Paused, tokio's clock moves only when told.
    #[tokio::test(start_paused = true)]
    async fn connections_dropped_right_after_login_back_off_like_failed_logins() {
        let mut r = reconnect();
        r.logged_in(Instant::now());
        for expected in [100, 200, 400, 800] {
            tokio::time::advance(ms(50)).await;
            let now = Instant::now();
            assert_eq!(
                r.connection_lost(&ctx(), &dropped(), IDLE, now),
                Next::RetryAt(now + ms(expected))
            );
            assert_eq!(r.attempt(), 1);
            tokio::time::advance(ms(expected)).await;
            r.logged_in(Instant::now());
        }
        // A connection that outlived the longest backoff worked: the next
        // loss starts the schedule again.
        tokio::time::advance(Duration::from_secs(5)).await;
        let now = Instant::now();
        assert_eq!(
            r.connection_lost(&ctx(), &dropped(), IDLE, now),
            Next::RetryAt(now + ms(100))
        );
    }

    #[test]
    fn failed_logins_back_off_to_the_cap() {
        let t0 = Instant::now();
        // Started down: the first retry already waits one step more.
        let mut r = reconnect();
        assert!(!r.ever_logged_in());
        for (n, expected) in [200, 400, 800, 1600, 3200, 5000, 5000]
            .into_iter()
            .enumerate()
        {
            assert_eq!(r.attempt(), n as u32 + 1);
            assert_eq!(
                r.login_failed(&ctx(), &unreachable(), t0),
                Next::RetryAt(t0 + ms(expected)),
                "attempt {}",
                n + 1
            );
        }
        // After a loss the attempts count from one again.
        r.logged_in(t0);
        let lost_at = t0 + Duration::from_secs(60);
        assert_eq!(
            r.connection_lost(&ctx(), &dropped(), IDLE, lost_at),
            Next::RetryAt(lost_at + ms(100))
        );
        r.attempt();
        assert_eq!(
            r.login_failed(&ctx(), &unreachable(), lost_at),
            Next::RetryAt(lost_at + ms(200))
        );
    }

    #[test]
    fn time2wait_is_a_floor_until_a_login_works() {
        let t0 = Instant::now();
        let mut r = reconnect();
        r.logged_in(t0);
        r.target_asks_to_wait(Duration::from_secs(2));
        let now = t0 + Duration::from_secs(10);
        assert_eq!(
            r.connection_lost(&ctx(), &dropped(), IDLE, now),
            Next::RetryAt(now + Duration::from_secs(2))
        );
        r.attempt();
        assert_eq!(
            r.login_failed(&ctx(), &unreachable(), now),
            Next::RetryAt(now + Duration::from_secs(2))
        );
        r.logged_in(now);
        let later = now + Duration::from_secs(10);
        assert_eq!(
            r.connection_lost(&ctx(), &dropped(), IDLE, later),
            Next::RetryAt(later + ms(100))
        );
    }

    #[test]
    fn the_same_loss_after_every_login_gives_up_and_a_retry_starts_afresh() {
        let t0 = Instant::now();
        let mut r = reconnect();
        let framing = Error::Protocol {
            ctx: ctx(),
            reason: "Data-In for unknown ITT 0x00000007".into(),
        };
        for expected in [100, 200] {
            r.logged_in(t0);
            assert_eq!(
                r.connection_lost(&ctx(), &framing, BUSY, t0),
                Next::RetryAt(t0 + ms(expected))
            );
            r.attempt();
        }
        r.logged_in(t0);
        match r.connection_lost(&ctx(), &framing, BUSY, t0) {
            Next::GiveUp(Error::RepeatedFailure { count, cause, .. }) => {
                assert_eq!(count, REPEATED_LOSS_LIMIT);
                assert_eq!(*cause, framing);
            }
            other => panic!("expected to give up, got {other:?}"),
        }
        // Asked to retry: attempts, flaps and the streak start from zero.
        assert_eq!(r.attempt(), 1);
        r.logged_in(t0);
        assert_eq!(
            r.connection_lost(&ctx(), &framing, BUSY, t0),
            Next::RetryAt(t0 + ms(100)),
            "the first of a new streak"
        );
    }

    #[test]
    fn permanent_login_failures_give_up_but_a_missing_target_that_worked_is_retried() {
        let t0 = Instant::now();
        let mut r = reconnect();
        r.attempt();
        match r.login_failed(&ctx(), &refused(LoginStatus::NOT_FOUND), t0) {
            Next::GiveUp(Error::LoginGaveUp { cause, .. }) => {
                assert_eq!(*cause, refused(LoginStatus::NOT_FOUND));
            }
            other => panic!("never logged in: expected to give up, got {other:?}"),
        }
        assert_eq!(r.attempt(), 1, "a retry asked for counts from one");
        r.logged_in(t0);
        r.connection_lost(&ctx(), &dropped(), IDLE, t0 + Duration::from_secs(60));
        r.attempt();
        // The target restarts: its portal listens before its targets are back.
        assert!(matches!(
            r.login_failed(&ctx(), &refused(LoginStatus::NOT_FOUND), t0),
            Next::RetryAt(_)
        ));
        r.attempt();
        let auth = refused(LoginStatus::AUTHENTICATION_FAILURE);
        assert!(auth.is_permanent_login_failure());
        assert!(matches!(
            r.login_failed(&ctx(), &auth, t0),
            Next::GiveUp(Error::LoginGaveUp { .. })
        ));
    }
}
