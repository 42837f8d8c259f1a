//! Connecting and logging in: TCP, the login exchange, login redirects, and
//! the CHAP MD5 fallback.

use std::sync::Arc;

use tokio::time::sleep_until;
use tracing::{debug, info};

use super::now;
use super::request::Pending;
use crate::core::chap::ChapAlgorithm;
use crate::core::config::SessionConfig;
use crate::core::connection::{Connection, ConnectionEvent};
use crate::core::error::{Error, PathContext};
use crate::core::login::ChapDiagnosis;
use crate::core::portal::Portal;
use crate::runtime::transport::Transport;
use iscsi_proto::text::OperationalParams;

/// How a login attempt ended.
enum LoginEnd {
    LoggedIn { params: OperationalParams },
    Redirected { portal: Portal, permanent: bool },
    Failed(Error),
}

/// A logged-in connection.
pub(crate) struct Established {
    pub conn: Connection<Pending>,
    pub io: Transport,
    pub params: OperationalParams,
    /// Where the connection goes (after redirects).
    pub portal: Portal,
    /// Where the next reconnect should go: the connected portal after a
    /// permanent redirect, the one asked for otherwise.
    pub home: Portal,
}

/// Connects and logs in, following redirects and falling back to CHAP MD5 when
/// the target refuses our algorithm list.
pub(crate) async fn establish(
    config: &Arc<SessionConfig>,
    portal: &Portal,
) -> Result<Established, Error> {
    let mut cfg = config.clone();
    let mut target = portal.clone();
    let mut home = portal.clone();
    let mut redirects = 0u8;
    loop {
        let ctx = PathContext {
            portal: target.clone(),
            target: cfg.target_name.clone().unwrap_or_default(),
        };
        let mut io = Transport::connect(&target, cfg.timeouts.connect)
            .await
            .map_err(|reason| Error::Connect {
                ctx: ctx.clone(),
                reason,
            })?;
        let mut this = (*cfg).clone();
        this.portal = target.clone();
        let mut conn = Connection::with_token(Arc::new(this), 0, now());
        match run_login(&mut conn, &mut io).await {
            LoginEnd::LoggedIn { params } => {
                return Ok(Established {
                    conn,
                    io,
                    params,
                    portal: target,
                    home,
                });
            }
            LoginEnd::Redirected { portal, permanent } => {
                redirects += 1;
                if redirects > cfg.max_redirects {
                    return Err(Error::TooManyRedirects { ctx, last: portal });
                }
                info!(from = %target, to = %portal, permanent, "following login redirect");
                if permanent {
                    home = portal.clone();
                }
                target = portal;
            }
            // MD5 alone, once, and only when the user allowed MD5: never a
            // downgrade the configuration did not ask for.
            LoginEnd::Failed(Error::ChapAlgorithmRejected { .. })
                if cfg.chap.as_ref().is_some_and(|c| {
                    c.algorithms.contains(&ChapAlgorithm::Md5)
                        && c.algorithms != [ChapAlgorithm::Md5]
                }) =>
            {
                info!("the target refused our CHAP algorithm list; retrying with MD5 alone");
                let mut md5 = (*cfg).clone();
                if let Some(chap) = md5.chap.as_mut() {
                    chap.algorithms = vec![ChapAlgorithm::Md5];
                }
                cfg = Arc::new(md5);
            }
            LoginEnd::Failed(e) => {
                io.abort();
                if conn.chap_diagnosis() == Some(ChapDiagnosis::RefusedAfterMutualChallenge) {
                    return Err(check_credentials(&cfg, &target, e).await);
                }
                return Err(e);
            }
        }
    }
}

/// After a mutual CHAP login was refused: a second login that answers the
/// target's challenge without challenging it back says whether it was our
/// user name and secret it refused, or its own missing outgoing account
/// (tgtd answers both the same way). The refusal stands if the check cannot
/// tell.
async fn check_credentials(cfg: &Arc<SessionConfig>, portal: &Portal, refusal: Error) -> Error {
    let Ok(mut io) = Transport::connect(portal, cfg.timeouts.connect).await else {
        return refusal;
    };
    let mut this = (**cfg).clone();
    this.portal = portal.clone();
    let mut conn = Connection::checking_credentials(Arc::new(this), now());
    let end = run_login(&mut conn, &mut io).await;
    io.abort();
    match (end, conn.chap_diagnosis()) {
        (
            LoginEnd::Failed(verdict),
            Some(ChapDiagnosis::OursAccepted | ChapDiagnosis::OursRefused),
        ) => {
            debug!(error = %verdict, "CHAP credentials checked without the mutual challenge");
            verdict
        }
        _ => refusal,
    }
}

/// Pumps a connection until its login ends.
async fn run_login(conn: &mut Connection<Pending>, io: &mut Transport) -> LoginEnd {
    let mut redirect = None;
    loop {
        io.queue_from(conn);
        if let Err(e) = io.try_flush() {
            conn.handle_disconnect(e.to_string());
        }
        while let Some(event) = conn.poll_event() {
            match event {
                ConnectionEvent::LoggedIn { params, .. } => return LoginEnd::LoggedIn { params },
                ConnectionEvent::Redirected { portal, permanent } => {
                    redirect = Some((portal, permanent))
                }
                ConnectionEvent::Closed { error: Some(e), .. } => return LoginEnd::Failed(e),
                ConnectionEvent::Closed { error: None, .. } => {
                    if let Some((portal, permanent)) = redirect.take() {
                        return LoginEnd::Redirected { portal, permanent };
                    }
                    let ctx = conn.context().clone();
                    return LoginEnd::Failed(Error::Closed { ctx });
                }
                other => debug!(?other, "event during login"),
            }
        }
        let deadline = conn.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            r = io.readable() => match r {
                Ok(()) => super::read_once(conn, io),
                Err(e) => conn.handle_disconnect(e.to_string()),
            },
            r = io.writable(), if io.wants_write() => {
                if let Err(e) = r { conn.handle_disconnect(e.to_string()); }
            }
            _ = sleep_until(deadline.unwrap_or_else(super::far_future)), if deadline.is_some() => {
                conn.handle_timeout(now());
            }
        }
    }
}
