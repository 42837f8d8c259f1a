//! The path checker: one task per path follows its session (logged in, lost,
//! logging in again, given up), checks a path before it carries I/O (TEST
//! UNIT READY, then the LU identity against the volume's), reinstates a
//! failed path when TEST UNIT READY succeeds again, checks idle paths so a
//! silently dead standby path is found before I/O needs it, and acts on
//! what the target reports (capacity changes, ALUA changes, logout requests).
//!
//! Login retries are the session's own ([`iscsi_session::ReconnectPolicy`],
//! set from the checker interval): the checker does not open connections.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use iscsi_proto::scsi::{FailureClass, LuIdentity};
use iscsi_session::{LuChange, ScsiExecutor, SessionState, SessionStatus, TargetEvent};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::dispatch::fail_path;
use crate::member::{Health, Member};
use crate::selection::MAIN;
use crate::volume::Shared;

/// Follows one path for the volume's life.
pub(crate) async fn monitor(shared: Weak<Shared>, member: Arc<Member>) {
    let mut status = member.session.watch_status();
    let mut events = member.session.target_events();
    let mut events_open = true;
    let interval = match shared.upgrade() {
        Some(s) => s.options.checker_interval,
        None => return,
    };
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_completed = 0;
    let mut last_revival = Instant::now();
    loop {
        let Some(volume) = shared.upgrade() else {
            return;
        };
        if volume.closing() {
            return;
        }
        let snapshot = status.borrow_and_update().clone();
        follow_session(&volume, &member, &snapshot).await;
        drop(volume);
        tokio::select! {
            changed = status.changed() => if changed.is_err() { return },
            event = events.recv(), if events_open => match event {
                Ok(event) => {
                    let Some(volume) = shared.upgrade() else { return };
                    on_target_event(&volume, &member, event).await;
                }
                Err(RecvError::Lagged(missed)) => debug!(missed, "target events missed"),
                Err(RecvError::Closed) => events_open = false,
            },
            _ = ticker.tick() => {
                let Some(volume) = shared.upgrade() else { return };
                last_completed = check(&volume, &member, last_completed).await;
                if last_revival.elapsed() >= volume.options.checker_max_interval
                    && revivable(&member)
                {
                    info!("logins stopped after repeated identical failures; trying again");
                    last_revival = Instant::now();
                    member.session.reconnect_now();
                }
            }
        }
    }
}

/// A path whose session stopped after the same failure ended several
/// connections in a row: unlike a refused login (CHAP, a missing target),
/// the cause may be transient (a middlebox, a target bug under load), and
/// like dm-multipath a path is never abandoned for good; it is retried at
/// the slowest checker pace.
fn revivable(member: &Member) -> bool {
    member.health() == Health::GaveUp
        && matches!(
            member.session.status().last_error,
            Some(iscsi_session::Error::RepeatedFailure { .. })
        )
}

/// Brings the path's health in line with its session.
async fn follow_session(shared: &Shared, member: &Member, status: &SessionStatus) {
    let error = status.last_error.as_ref().map(|e| e.to_string());
    match &status.state {
        SessionState::LoggedIn => {
            let (health, awaiting) = {
                let h = member.lock();
                (h.health.clone(), h.awaiting_login)
            };
            let new_login = awaiting.is_none_or(|n| status.reconnects > n);
            // GaveUp too: the watch keeps only the latest state, so a
            // revived session may be seen going from Failed straight to
            // LoggedIn.
            if matches!(health, Health::Down | Health::GaveUp) && new_login {
                if member.is_main() && status.reconnects > 0 {
                    shared.main_came_back();
                }
                member.lock().awaiting_login = None;
                verify(shared, member, status.reconnects).await;
            }
        }
        SessionState::Connecting { .. } | SessionState::Reconnecting { .. } => {
            mark(shared, member, Health::Down, error);
        }
        SessionState::Failed => mark(shared, member, Health::GaveUp, error),
        SessionState::Closed => mark(shared, member, Health::Down, error),
    }
    // Whoever waits for a path (open, queued I/O) looks again.
    shared.bump();
}

/// Moves a path that is not refused to `health`, and replans when that
/// takes it out of use or brings it back.
fn mark(shared: &Shared, member: &Member, health: Health, error: Option<String>) {
    let was = member.health();
    if matches!(was, Health::Refused | Health::Disabled) {
        return;
    }
    if member.set_health(health.clone(), error.clone()) {
        if was == Health::Up {
            info!(error = error.as_deref().unwrap_or("-"), "path failed");
        } else if health == Health::GaveUp {
            warn!(
                error = error.as_deref().unwrap_or("-"),
                "path failed; logins stopped"
            );
        }
        shared.replan();
    }
}

/// Checks a logged-in path before it carries I/O: TEST UNIT READY, then
/// (once per login) the LU identity against the volume's.
async fn verify(shared: &Shared, member: &Member, login: u64) {
    let was = member.health();
    if matches!(was, Health::Refused | Health::Disabled) {
        return;
    }
    if matches!(was, Health::Down | Health::GaveUp) {
        member.set_health(Health::Checking, None);
        shared.bump();
    }
    let scsi = member.session.scsi(member.lun);
    if let Err(e) = scsi.test_unit_ready().await {
        if e.is_lun_missing() {
            let why = missing_lun(member).await;
            warn!("{why}");
            // Never seen here: the connection_info names a LUN the target
            // does not have; refuse the path for good. Seen before: the LU
            // was unmapped (maintenance, a re-export); check again each tick
            // and prove its identity when it is back.
            let served_before = member.lock().identity.is_some();
            let changed = if served_before {
                member.lock().verified_login = None;
                member.set_health(Health::Faulty, Some(why))
            } else {
                member.set_sticky(Health::Refused, why)
            };
            if changed {
                shared.replan();
            }
            return;
        }
        debug!(error = %e, "TEST UNIT READY failed; the path waits");
        let health = match e.failure_class() {
            // The target answered: the path works, the LU is not ready here.
            FailureClass::Final | FailureClass::TryOtherPath
                if member.session.status().state == SessionState::LoggedIn =>
            {
                Health::Faulty
            }
            _ => Health::Checking,
        };
        if member.set_health(health, Some(e.to_string())) {
            shared.replan();
        }
        return;
    }
    let needs_identity = member.lock().verified_login != Some(login);
    if needs_identity {
        let identity = match scsi.lu_identity().await {
            Ok(identity) => identity,
            Err(e) => {
                // Not an answer about the LU: try again at the next check.
                debug!(error = %e, "LU identity not read; the path waits");
                // Replan, not only bump: after an ALUA change the path may
                // have been carrying I/O until now.
                if member.set_health(Health::Checking, Some(e.to_string())) {
                    shared.replan();
                } else {
                    shared.bump();
                }
                return;
            }
        };
        if let Err(mismatch) = admit(shared, member, &identity).await {
            error!("{mismatch}");
            member.set_sticky(Health::Refused, mismatch);
            shared.replan();
            let session = member.session.clone();
            tokio::spawn(async move {
                let _ = session.logout().await;
            });
            return;
        }
        let mut h = member.lock();
        h.identity = Some(identity);
        h.verified_login = Some(login);
    }
    if member.set_health(Health::Up, None) {
        member.lock().last_error = None;
        if was == Health::Down && member.counters.completed.load(Ordering::Relaxed) == 0 {
            info!("path joined");
        } else {
            info!("path restored");
            // It failed on something: the LU may have been recreated,
            // larger, without a unit attention (tgtd sends none).
            refresh_geometry(shared, member).await;
        }
        shared.replan();
    }
}

/// "LUN 7 does not exist on TARGET at PORTAL; it has LUNs 1, 3", from
/// REPORT LUNS when the target answers it.
async fn missing_lun(member: &Member) -> String {
    let scsi = member.session.scsi(iscsi_proto::pdu::Lun::default());
    let has = match scsi.report_luns().await {
        Ok(luns) if luns.is_empty() => "; it reports no LUN".to_owned(),
        Ok(luns) => {
            let list: Vec<String> = luns.iter().map(|l| l.to_string()).collect();
            let word = if list.len() == 1 { "LUN" } else { "LUNs" };
            format!("; it has {word} {}", list.join(", "))
        }
        Err(e) => format!(" (REPORT LUNS failed too: {e})"),
    };
    format!(
        "LUN {} does not exist on {} at {}{has}",
        member.spec.lun, member.spec.iqn, member.spec.portal
    )
}

/// Compares a path's LU identity with the volume's, setting the volume's
/// from the main path (or, when the main path is not there within the
/// grace period, from the first path to answer).
async fn admit(shared: &Shared, member: &Member, identity: &LuIdentity) -> Result<(), String> {
    let mut changes = shared.subscribe();
    let grace_end = shared.opened_at + shared.options.main_grace;
    loop {
        {
            let mut reference = shared.lock_identity();
            match reference.as_ref() {
                Some(r) if r == identity => return Ok(()),
                Some(r) => {
                    return Err(format!(
                        "refusing path {}: it leads to LU {identity}, not the volume's LU {r}",
                        member.spec
                    ));
                }
                None if member.is_main() || main_out_of_reach(shared) => {
                    *reference = Some(identity.clone());
                    return Ok(());
                }
                None if Instant::now() >= grace_end => {
                    warn!(
                        "the main path has not answered within {:?}: this path's LU identity is the volume's",
                        shared.options.main_grace
                    );
                    *reference = Some(identity.clone());
                    return Ok(());
                }
                None => {}
            }
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(grace_end) => {}
        }
    }
}

/// The main path failed its login (or was refused): do not wait for it.
fn main_out_of_reach(shared: &Shared) -> bool {
    let main = &shared.members[MAIN];
    matches!(main.health(), Health::GaveUp | Health::Refused)
        || (main.session.status().last_error.is_some()
            && main.session.status().state != SessionState::LoggedIn)
}

/// The periodic check: reinstate a failed path whose TEST UNIT READY works,
/// and check an idle live path. Returns the completion count seen.
async fn check(shared: &Shared, member: &Member, last_completed: u64) -> u64 {
    let completed = member.counters.completed.load(Ordering::Relaxed);
    let logged_in = member.session.status().state == SessionState::LoggedIn;
    match member.health() {
        Health::Faulty | Health::Checking if logged_in => {
            let login = member.session.status().reconnects;
            verify(shared, member, login).await;
        }
        Health::Up
            if completed == last_completed
                && member.counters.in_flight.load(Ordering::Relaxed) == 0 =>
        {
            // Idle: make sure it still answers before I/O needs it.
            if let Err(e) = member.session.scsi(member.lun).test_unit_ready().await {
                let lost = !matches!(member.session.status().state, SessionState::LoggedIn);
                if e.failure_class() != FailureClass::RetrySamePath {
                    fail_path(shared, member, &e, lost);
                }
            }
        }
        // While no path is usable, I/O is queued against no_path_retry:
        // retry the lost paths every tick instead of after a grown backoff,
        // so I/O resumes within a tick of a path's network coming back.
        Health::Down if shared.no_path_since().is_some() && !logged_in => {
            debug!("no usable path: logging in again now");
            member.session.reconnect_now();
        }
        _ => {}
    }
    completed
}

async fn on_target_event(shared: &Shared, member: &Member, event: TargetEvent) {
    match event {
        TargetEvent::LunChanged { change, .. } => match change {
            LuChange::CapacityChanged => refresh_geometry(shared, member).await,
            // A reset or a new LU behind the same number (an array that
            // recreated it, larger): its capacity may have changed too.
            LuChange::Reset => refresh_geometry(shared, member).await,
            LuChange::AluaStateChanged | LuChange::AluaTransitionFailed => {
                info!(?change, "ALUA state changed; checking the path");
                let login = member.session.status().reconnects;
                if member.health() == Health::Up {
                    verify(shared, member, login).await;
                }
            }
            LuChange::InquiryDataChanged | LuChange::ReportedLunsChanged => {
                refresh_geometry(shared, member).await;
                info!(?change, "checking the LU identity again");
                member.lock().verified_login = None;
                if member.set_health(Health::Checking, None) {
                    shared.replan();
                }
                let login = member.session.status().reconnects;
                verify(shared, member, login).await;
            }
            LuChange::Other { .. } => debug!(?change, "unit attention"),
        },
        TargetEvent::LogoutRequested { .. } | TargetEvent::DroppingConnection { .. } => {
            // The connection is going away: no new I/O on it; the session
            // logs in again and the path is checked before it rejoins.
            let login = member.session.status().reconnects;
            member.lock().awaiting_login = Some(login);
            mark(
                shared,
                member,
                Health::Down,
                Some("the target is closing the connection".into()),
            );
        }
        TargetEvent::ScsiEvent { .. } => {}
    }
}

/// Reads the capacity again: after a CAPACITY DATA HAS CHANGED (or reset)
/// unit attention, or when a failed path is restored.
async fn refresh_geometry(shared: &Shared, member: &Member) {
    match member.session.scsi(member.lun).probe_geometry().await {
        Ok(new) => {
            let old = shared.geometry();
            if old != Some(new) {
                info!(
                    old_bytes = old.map_or(0, |g| g.size_bytes()),
                    new_bytes = new.size_bytes(),
                    "capacity changed"
                );
                shared.set_geometry(new);
                shared.bump();
            }
        }
        Err(e) => warn!(error = %e, "capacity changed, but reading it failed"),
    }
}

/// Replans when a failback delay ends.
pub(crate) async fn timekeeper(shared: Weak<Shared>) {
    loop {
        let (deadline, mut changes) = match shared.upgrade() {
            Some(s) if !s.closing() => (s.next_deadline(), s.subscribe()),
            _ => return,
        };
        tokio::select! {
            _ = changes.changed() => {}
            _ = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(s) = shared.upgrade() {
                    s.replan();
                }
            }
        }
    }
}
