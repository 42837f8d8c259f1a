//! The multipath volume: every path of a [`PathSet`] logged in, one block
//! device on top. Cheap to clone, `Send + Sync`, usable from many tasks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use iscsi_proto::pdu::Lun;
use iscsi_proto::scsi::LuIdentity;
use iscsi_session::{
    BlockDevice, Command, CommandOutcome, CompletionSink, Geometry, PathContext, ReconnectPolicy,
    Recovery, ScsiExecutor, Session,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::connection_info::ConnectionInfo;
use crate::error::VolumeError;
use crate::member::{Health, Member};
use crate::options::VolumeOptions;
use crate::path_set::{PathSet, SessionTemplate, build_path_set};
use crate::selection::{Load, MAIN, PathView, Plan, Planner, Switch, pick};
use crate::status::{PathRole, PathState, PathStatus, VolumeStatus, millis};

/// One volume over every path of its path set.
#[derive(Clone, Debug)]
pub struct MultipathVolume {
    shared: Arc<Shared>,
}

/// What the volume's handles, its path monitors and its dispatch share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub name: String,
    pub ctx: PathContext,
    pub members: Vec<Arc<Member>>,
    pub options: VolumeOptions,
    pub origin: String,
    planner: Mutex<Planner>,
    plan: RwLock<Plan>,
    rotor: AtomicUsize,
    geometry: RwLock<Option<Geometry>>,
    /// The LU identity every path must match: the main path's, or the first
    /// path's to answer when the main path is not there in time.
    identity: Mutex<Option<LuIdentity>>,
    pub opened_at: Instant,
    /// Since when no path has been usable.
    no_path_since: Mutex<Option<Instant>>,
    /// Bumped on every change of a path's health or of the plan.
    changes: watch::Sender<u64>,
    closing: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl MultipathVolume {
    /// Builds the path set of `info` (SendTargets discovery for the singular
    /// form) and opens the volume over it.
    pub async fn open_connection_info(
        info: &ConnectionInfo,
        template: &SessionTemplate,
        options: VolumeOptions,
    ) -> Result<MultipathVolume, VolumeError> {
        let set = build_path_set(info, template).await;
        MultipathVolume::open(&set, template, options).await
    }

    /// Logs in to every path in parallel and returns once one of them is
    /// usable (logged in, TEST UNIT READY answered, LU identity checked) and
    /// the geometry is read; the others join in the background, and a path
    /// that is down keeps being retried. Fails when every path has failed
    /// its first attempt, or none became usable within the attach timeout.
    pub async fn open(
        set: &PathSet,
        template: &SessionTemplate,
        options: VolumeOptions,
    ) -> Result<MultipathVolume, VolumeError> {
        options.validate()?;
        let main = set.main();
        let name = format!("{} LUN {}", main.iqn, main.lun);
        let mut members = Vec::new();
        for (index, (spec, mut config)) in set
            .paths()
            .iter()
            .zip(set.session_configs(template))
            .enumerate()
        {
            config.recovery = Recovery::HandBack;
            config.retry = options.retry.clone();
            config.timeouts.login = options.path_timeout;
            config.timeouts.connect = config.timeouts.connect.min(options.path_timeout);
            config.reconnect = ReconnectPolicy {
                first_delay: options.checker_interval,
                max_delay: options.checker_max_interval,
                multiplier: 2,
            };
            let lun = Lun::from_number(spec.lun).ok_or_else(|| {
                VolumeError::Options(format!("LUN {} of {spec} cannot be addressed", spec.lun))
            })?;
            let session = Session::start(config)?;
            members.push(Arc::new(Member::new(index, spec.clone(), lun, session)));
        }
        let shared = Arc::new(Shared {
            ctx: members[MAIN].session.context().clone(),
            name,
            members,
            origin: set.origin().to_string(),
            planner: Mutex::new(Planner::new(options.policy, options.failback)),
            options,
            plan: RwLock::new(Plan::default()),
            rotor: AtomicUsize::new(0),
            geometry: RwLock::new(None),
            identity: Mutex::new(None),
            opened_at: Instant::now(),
            no_path_since: Mutex::new(None),
            changes: watch::Sender::new(0),
            closing: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let volume = MultipathVolume { shared };
        volume.spawn_monitors();
        if let Err(e) = volume.wait_first_path().await {
            volume.close().await;
            return Err(e);
        }
        // Through the volume itself, so a path failing now fails over.
        match ScsiExecutor::probe_geometry(&volume).await {
            Ok(g) => {
                *volume
                    .shared
                    .geometry
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = Some(g)
            }
            Err(e) => {
                volume.close().await;
                return Err(e);
            }
        }
        info!(volume = %volume.shared.name, "{}", volume.shared.origin);
        Ok(volume)
    }

    fn spawn_monitors(&self) {
        let mut tasks = self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for member in &self.shared.members {
            let span = info_span!("path", portal = %member.spec.portal, target = %member.spec.iqn, lun = member.spec.lun);
            let task = crate::checker::monitor(Arc::downgrade(&self.shared), member.clone());
            tasks.push(tokio::spawn(task.instrument(span)));
        }
        let timekeeper = crate::checker::timekeeper(Arc::downgrade(&self.shared));
        tasks.push(tokio::spawn(timekeeper));
    }

    /// Waits until a path is usable; fails once every path failed a login
    /// (or was refused) without one being usable, or at the attach timeout.
    async fn wait_first_path(&self) -> Result<(), VolumeError> {
        let shared = &self.shared;
        let mut changes = shared.changes.subscribe();
        let deadline = Instant::now() + shared.options.attach_timeout;
        // The path monitors bump `changes` on every session status change.
        loop {
            if shared.has_active() {
                return Ok(());
            }
            let all_failed = shared.members.iter().all(|m| {
                let status = m.session.status();
                matches!(m.health(), Health::Refused | Health::GaveUp)
                    || (status.last_error.is_some()
                        && !matches!(status.state, iscsi_session::SessionState::LoggedIn))
            });
            if all_failed || Instant::now() >= deadline {
                let reasons = shared.describe_paths();
                let detail = match shared.members.len() {
                    1 => reasons,
                    _ => format!("{}: no path could be opened: {reasons}", shared.name),
                };
                return Err(VolumeError::OpenFailed {
                    volume: shared.name.clone(),
                    detail,
                });
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The volume's status now.
    pub fn status(&self) -> VolumeStatus {
        self.shared.status()
    }

    /// A receiver that changes whenever a path's state or the plan changes
    /// (take [`MultipathVolume::status`] then).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// The volume's name: the main path's target and LUN.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The LU identity every path matched.
    pub fn identity(&self) -> Option<LuIdentity> {
        self.shared.lock_identity().clone()
    }

    /// The sessions, main first (for their own status and parameters).
    pub fn sessions(&self) -> Vec<Session> {
        self.shared
            .members
            .iter()
            .map(|m| m.session.clone())
            .collect()
    }

    /// Lets the main path carry I/O again now (failback `manual`, or
    /// before a failback delay ends).
    pub fn failback(&self) {
        self.shared.planner().failback_now();
        self.shared.replan();
    }

    /// The path whose portal is `portal` (`host:port`, `[v6]:port`).
    fn member(&self, portal: &str) -> Result<&Arc<Member>, VolumeError> {
        let wanted: Option<iscsi_session::Portal> = portal.parse().ok();
        self.shared
            .members
            .iter()
            .find(|m| {
                wanted
                    .as_ref()
                    .is_some_and(|w| crate::path::same_portal(w, &m.spec.portal))
            })
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .shared
                    .members
                    .iter()
                    .map(|m| m.spec.portal.to_string())
                    .collect();
                VolumeError::Options(format!(
                    "no path through {portal}; the paths are {}",
                    known.join(", ")
                ))
            })
    }

    /// multipathd's `fail path`: takes the path out of use until
    /// [`MultipathVolume::reinstate_path`], whatever the checker finds.
    pub fn fail_path(&self, portal: &str) -> Result<(), VolumeError> {
        let member = self.member(portal)?;
        if member.health() == Health::Refused {
            return Err(VolumeError::Options(format!(
                "the path through {portal} is refused (another LU)"
            )));
        }
        if member.set_sticky(Health::Disabled, "failed by the operator".into()) {
            info!(path = %member.spec.portal, "path failed by the operator");
            self.shared.replan();
        }
        Ok(())
    }

    /// multipathd's `reinstate path`: the checker may use the path again
    /// once it answers (at once when its session is logged in).
    pub fn reinstate_path(&self, portal: &str) -> Result<(), VolumeError> {
        let member = self.member(portal)?;
        // Checked again before it carries I/O.
        if member.clear_disabled() {
            member.session.reconnect_now();
            info!(path = %member.spec.portal, "path reinstated by the operator");
            self.shared.replan();
        }
        Ok(())
    }

    /// Logs in again now on the path through `portal` (after fixing an ACL
    /// or a secret on the target, or to skip the reconnect wait).
    pub fn reconnect_path(&self, portal: &str) -> Result<(), VolumeError> {
        let member = self.member(portal)?;
        member.session.reconnect_now();
        self.shared.bump();
        Ok(())
    }

    /// Skips the wait of every failed path: log in again and check now.
    pub fn reconnect_now(&self) {
        for m in &self.shared.members {
            m.session.reconnect_now();
        }
        self.shared.bump();
    }

    /// Stops the path checkers, fails queued I/O, and logs out of every
    /// path (in parallel, each bounded by its session's logout timeout).
    pub async fn close(&self) {
        let shared = &self.shared;
        if shared.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        shared.bump();
        let tasks: Vec<_> = shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in &tasks {
            t.abort();
        }
        let logouts = shared.members.iter().map(|m| {
            let session = m.session.clone();
            async move {
                if let Err(e) = session.logout().await {
                    // A path that was down has nothing to log out of.
                    tracing::debug!(error = %e, "logout");
                }
            }
        });
        join_all(logouts).await;
    }
}

/// Runs futures concurrently to completion (the volume's logouts).
async fn join_all<F: Future<Output = ()> + Send + 'static>(futures: impl Iterator<Item = F>) {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for h in handles {
        let _ = h.await;
    }
}

impl Shared {
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    pub fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn planner(&self) -> std::sync::MutexGuard<'_, Planner> {
        self.planner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn lock_identity(&self) -> std::sync::MutexGuard<'_, Option<LuIdentity>> {
        self.identity.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has_active(&self) -> bool {
        !self
            .plan
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .active
            .is_empty()
    }

    pub fn geometry(&self) -> Option<Geometry> {
        *self.geometry.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_geometry(&self, g: Geometry) {
        *self.geometry.write().unwrap_or_else(|p| p.into_inner()) = Some(g);
    }

    pub fn main_demoted(&self) {
        self.planner().main_demoted();
    }

    pub fn main_came_back(&self) {
        self.planner().main_came_back();
    }

    /// The path for a command of `bytes` bytes, by the policy.
    pub fn pick(&self, bytes: u64) -> Option<Arc<Member>> {
        let plan = self.plan.read().unwrap_or_else(|p| p.into_inner());
        let load = |i: usize| {
            let c = &self.members[i].counters;
            Load {
                in_flight: c.in_flight.load(Ordering::Relaxed),
                in_flight_bytes: c.in_flight_bytes.load(Ordering::Relaxed),
                latency_ns: c.latency_ns.load(Ordering::Relaxed),
            }
        };
        let index = pick(self.options.policy, &plan.active, &self.rotor, load, bytes)?;
        Some(self.members[index].clone())
    }

    /// Since when no path has been usable.
    pub fn no_path_since(&self) -> Option<Instant> {
        *self.no_path_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let views = self.views();
        self.planner().next_deadline(&views)
    }

    fn views(&self) -> Vec<PathView> {
        self.members
            .iter()
            .map(|m| {
                let h = m.lock();
                PathView {
                    usable: h.health == Health::Up,
                    usable_since: h.usable_since,
                }
            })
            .collect()
    }

    /// Plans again which paths carry I/O; logs failover and failback.
    pub fn replan(&self) {
        // One replan at a time, each reading the healths after taking the
        // lock: two racing replans could otherwise store the older view
        // last, leaving a failed path in the plan until the next change.
        let mut planner = self.planner();
        let views = self.views();
        let now = Instant::now();
        let (plan, switch) = planner.plan(&views, now);
        let empty = plan.active.is_empty();
        // Standby and active change with the plan, not with the health: note
        // each path's shown state now, so "since" is when it last changed.
        for m in &self.members {
            let health = m.lock().health.clone();
            m.shown_since(
                shown_state(&health, m.index, &plan, self.options.policy),
                now,
            );
        }
        *self.plan.write().unwrap_or_else(|p| p.into_inner()) = plan;
        {
            let mut since = self.no_path_since.lock().unwrap_or_else(|p| p.into_inner());
            match (empty, *since) {
                (true, None) if self.has_ever_had_a_path() => {
                    warn!(volume = %self.name, "no usable path left; I/O is queued ({})", self.options.no_path_retry);
                    *since = Some(now);
                }
                (false, Some(t)) => {
                    info!(volume = %self.name, after = ?now - t, "a path is usable again");
                    *since = None;
                }
                _ => {}
            }
        }
        match switch {
            Some(Switch::Failover { to, .. }) => {
                info!(volume = %self.name, to = %self.members[to].spec.portal, "failover: I/O leaves the main path")
            }
            Some(Switch::Failback { .. }) => {
                info!(volume = %self.name, to = %self.members[MAIN].spec.portal, "failback: I/O is back on the main path")
            }
            Some(Switch::Moved { from: Some(_), to }) => {
                info!(volume = %self.name, to = %self.members[to].spec.portal, "I/O moves to another path")
            }
            _ => {}
        }
        self.bump();
    }

    fn has_ever_had_a_path(&self) -> bool {
        self.geometry().is_some() || self.members.iter().any(|m| m.lock().identity.is_some())
    }

    /// Each path and why it is not usable, on one line.
    pub fn describe_paths(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let h = m.lock();
                let why = h
                    .last_error
                    .clone()
                    .or_else(|| m.session.status().last_error.map(|e| e.to_string()));
                // Session errors and refusals name their portal and target.
                match why {
                    Some(why) => why,
                    None => format!("{} ({})", m.spec, h.health.label()),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn status(&self) -> VolumeStatus {
        let plan = self.plan.read().unwrap_or_else(|p| p.into_inner()).clone();
        let now = Instant::now();
        let geometry = self.geometry();
        let paths = self
            .members
            .iter()
            .map(|m| {
                let h = m.lock();
                let state = shown_state(&h.health, m.index, &plan, self.options.policy);
                let since = m.shown_since(state, now);
                let c = &m.counters;
                PathStatus {
                    portal: m.spec.portal.to_string(),
                    iqn: m.spec.iqn.clone(),
                    lun: m.spec.lun,
                    role: if m.is_main() {
                        PathRole::Main
                    } else {
                        PathRole::Secondary
                    },
                    state,
                    state_ms: millis(now - since),
                    in_flight: c.in_flight.load(Ordering::Relaxed),
                    completed: c.completed.load(Ordering::Relaxed),
                    bytes: c.bytes.load(Ordering::Relaxed),
                    errors: c.errors.load(Ordering::Relaxed),
                    failed_over: c.failed_over.load(Ordering::Relaxed),
                    last_error: h.last_error.clone(),
                }
            })
            .collect();
        VolumeStatus {
            name: self.name.clone(),
            identity: self.lock_identity().as_ref().map(|i| i.to_string()),
            size_bytes: geometry.map_or(0, |g| g.size_bytes()),
            block_size: geometry.map_or(0, |g| g.block_size),
            policy: self.options.policy.to_string(),
            failback: self.options.failback.to_string(),
            no_path_retry: self.options.no_path_retry.to_string(),
            origin: self.origin.clone(),
            no_path_ms: self.no_path_since().map(|t| millis(now - t)),
            paths,
        }
    }
}

/// The state a status shows for a path: its health, and for a healthy
/// path whether the plan has it carrying I/O.
fn shown_state(health: &Health, index: usize, plan: &Plan, policy: crate::Policy) -> PathState {
    match health {
        Health::Up if plan.active.first() == Some(&index) => PathState::Active,
        Health::Up if policy != crate::Policy::Failover && plan.active.contains(&index) => {
            PathState::Active
        }
        Health::Up => PathState::Standby,
        Health::Faulty | Health::GaveUp | Health::Disabled => PathState::Failed,
        Health::Down | Health::Checking => PathState::Reconnecting,
        Health::Refused => PathState::Refused,
    }
}

impl ScsiExecutor for MultipathVolume {
    type Error = VolumeError;

    fn lun(&self) -> Lun {
        self.shared.members[MAIN].lun
    }

    fn context(&self) -> PathContext {
        self.shared.ctx.clone()
    }

    fn execute(
        &self,
        command: Command,
    ) -> impl Future<Output = Result<CommandOutcome, VolumeError>> + Send {
        crate::dispatch::dispatch(&self.shared, command)
    }
}

impl BlockDevice for MultipathVolume {
    fn submit_batch(
        &self,
        commands: Vec<(u64, Command)>,
        sink: Arc<dyn CompletionSink<VolumeError>>,
    ) -> impl Future<Output = ()> + Send {
        crate::batch::submit_batch(&self.shared, commands, sink)
    }

    fn geometry(&self) -> Geometry {
        // Set before open returns; a zero geometry only ever reaches the
        // probe itself, which does not look at it.
        self.shared.geometry().unwrap_or(Geometry {
            block_size: 512,
            blocks: 0,
            physical_block_size: 512,
            thin_provisioned: false,
            unmapped_reads_zero: false,
            unmap: false,
            write_same_unmap: false,
            max_transfer_blocks: 0,
            optimal_transfer_blocks: 0,
            max_unmap_blocks: 0,
            max_unmap_descriptors: 0,
        })
    }
}
