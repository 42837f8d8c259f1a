//! The path set of one volume: the paths to log in to, main first, with the
//! session CHAP they share. Building it never fails: when discovery does not
//! help, the given path alone is the set, and the origin says why.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use iscsi_session::{
    ChapConfig, DiscoveredPath, Error, OperationalPreferences, Portal, SessionConfig, Timeouts,
};
use tracing::{info, warn};

use crate::connection_info::ConnectionInfo;
use crate::discovery_merge::{DiscoveryMerge, DiscoveryOutcome, IgnoredPortal, merge_discovery};
use crate::path::PathSpec;
use crate::path_plan::PathPlan;

/// The whole SendTargets exchange (connect, login, text, logout) on the main
/// portal gets this long by default before the given path is used alone.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// What every path's session shares besides its portal, target and CHAP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTemplate {
    /// This host's initiator IQN.
    pub initiator_name: String,
    /// Timeouts for every session, discovery included; `None` keeps
    /// iscsi-session's defaults.
    pub timeouts: Option<Timeouts>,
    /// Commands in flight per path at most; `None` keeps iscsi-session's default.
    pub queue_depth: Option<u32>,
    /// Operational values to offer (digests, burst sizes); `None` keeps
    /// iscsi-session's defaults.
    pub operational: Option<OperationalPreferences>,
    /// Bound on the whole discovery exchange.
    pub discovery_timeout: Duration,
}

impl SessionTemplate {
    /// iscsi-session's defaults for `initiator_name`.
    pub fn new(initiator_name: impl Into<String>) -> Self {
        SessionTemplate {
            initiator_name: initiator_name.into(),
            timeouts: None,
            queue_depth: None,
            operational: None,
            discovery_timeout: DEFAULT_DISCOVERY_TIMEOUT,
        }
    }

    /// Copies the template's settings onto `config`.
    fn apply(&self, config: &mut SessionConfig) {
        if let Some(timeouts) = &self.timeouts {
            config.timeouts = timeouts.clone();
        }
        if let Some(depth) = self.queue_depth {
            config.queue_depth = depth;
        }
        if let Some(operational) = &self.operational {
            config.operational = operational.clone();
        }
    }

    /// The SendTargets session configuration for `portal`.
    fn discovery_config(&self, portal: &Portal, chap: Option<ChapConfig>) -> SessionConfig {
        let mut config = SessionConfig::discovery(portal.clone(), self.initiator_name.as_str());
        self.apply(&mut config);
        config.chap = chap;
        config
    }
}

/// Where a path set's paths came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathOrigin {
    /// One path named directly (a volume URL).
    Single,
    /// The `target_portals` lists.
    Given {
        /// Paths in the set.
        paths: usize,
        /// Repeated list entries dropped.
        duplicates: usize,
    },
    /// SendTargets discovery on the main portal.
    Discovery {
        /// The portal asked.
        portal: Portal,
        /// What it contributed.
        outcome: DiscoveryOutcome,
        /// Portals it named that are not used.
        ignored: Vec<IgnoredPortal>,
    },
}

impl fmt::Display for PathOrigin {
    /// One line for the attach log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathOrigin::Single => f.write_str("one path, named by its URL"),
            PathOrigin::Given { paths, duplicates } => {
                write!(f, "{} from target_portals", count(*paths))?;
                match duplicates {
                    0 => {}
                    1 => f.write_str(" (1 repeated entry dropped)")?,
                    n => write!(f, " ({n} repeated entries dropped)")?,
                }
                Ok(())
            }
            PathOrigin::Discovery {
                portal,
                outcome,
                ignored,
            } => {
                match outcome {
                    DiscoveryOutcome::Found(n) => {
                        write!(f, "discovery on {portal} found {}", count(*n))?
                    }
                    DiscoveryOutcome::OnlyItself => write!(
                        f,
                        "discovery on {portal} answered only with itself: one path"
                    )?,
                    DiscoveryOutcome::Failed(reason) => write!(
                        f,
                        "discovery on {portal} failed: {reason}; using the given path only"
                    )?,
                }
                for (i, portal) in ignored.iter().enumerate() {
                    let lead = if i == 0 { "; not using " } else { ", " };
                    write!(f, "{lead}{portal}")?;
                }
                Ok(())
            }
        }
    }
}

fn count(n: usize) -> String {
    match n {
        1 => "one path".to_owned(),
        n => format!("{n} paths"),
    }
}

/// The paths of one volume, main first, and the session CHAP they share.
#[derive(Clone, PartialEq, Eq)]
pub struct PathSet {
    /// Never empty; `paths[0]` is the main path.
    paths: Vec<PathSpec>,
    chap: Option<ChapConfig>,
    origin: PathOrigin,
}

impl PathSet {
    /// One path named directly (a volume URL): no discovery.
    pub fn single(path: PathSpec, chap: Option<ChapConfig>) -> PathSet {
        PathSet {
            paths: vec![path],
            chap,
            origin: PathOrigin::Single,
        }
    }

    /// The main path: where I/O goes while it works, and where failback returns.
    pub fn main(&self) -> &PathSpec {
        &self.paths[0]
    }

    /// Every path, main first.
    pub fn paths(&self) -> &[PathSpec] {
        &self.paths
    }

    /// The paths besides the main one.
    pub fn secondaries(&self) -> &[PathSpec] {
        &self.paths[1..]
    }

    /// Whether `path` is the main path.
    pub fn is_main(&self, path: &PathSpec) -> bool {
        self.main().same_nexus(path)
    }

    /// The session CHAP applied on every path.
    pub fn chap(&self) -> Option<&ChapConfig> {
        self.chap.as_ref()
    }

    /// Where the paths came from (its Display is the attach log line).
    pub fn origin(&self) -> &PathOrigin {
        &self.origin
    }

    /// One session configuration per path, main first, with the shared CHAP
    /// and the template's settings.
    pub fn session_configs(&self, template: &SessionTemplate) -> Vec<SessionConfig> {
        self.paths
            .iter()
            .map(|path| {
                let mut config = path.session_config(&template.initiator_name, self.chap.as_ref());
                template.apply(&mut config);
                config
            })
            .collect()
    }

    fn from_merge(portal: Portal, merge: DiscoveryMerge, chap: Option<ChapConfig>) -> Self {
        PathSet {
            paths: merge.paths,
            chap,
            origin: PathOrigin::Discovery {
                portal,
                outcome: merge.outcome,
                ignored: merge.ignored,
            },
        }
    }
}

/// Written by hand so that the CHAP password cannot reach a log line, even
/// if a later ChapConfig were to print more than it does today.
impl fmt::Debug for PathSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathSet")
            .field("paths", &self.paths)
            .field(
                "chap_user",
                &self.chap.as_ref().map(|c| c.initiator.username.as_str()),
            )
            .field("origin", &self.origin)
            .finish()
    }
}

/// The path set for `info`: the lists as given, or SendTargets discovery on
/// the main portal (with the discovery CHAP, bounded by
/// `template.discovery_timeout`). Discovery failing, timing out or answering
/// only with itself leaves the given path alone; that is logged, not an error.
pub async fn build_path_set(info: &ConnectionInfo, template: &SessionTemplate) -> PathSet {
    build_path_set_with(info, template, iscsi_session::discover).await
}

/// [`build_path_set`] with the discovery exchange as a parameter, so that
/// the fallbacks can be driven without a network.
pub async fn build_path_set_with<D, F>(
    info: &ConnectionInfo,
    template: &SessionTemplate,
    discover: D,
) -> PathSet
where
    D: FnOnce(SessionConfig) -> F,
    F: Future<Output = Result<Vec<DiscoveredPath>, Error>>,
{
    let chap = info.session_chap();
    let set = match info.path_plan() {
        PathPlan::Given { paths, duplicates } => PathSet {
            origin: PathOrigin::Given {
                paths: paths.len(),
                duplicates,
            },
            paths,
            chap,
        },
        PathPlan::Discover(main) => {
            let config = template.discovery_config(&main.portal, info.discovery_chap());
            let merge =
                match tokio::time::timeout(template.discovery_timeout, discover(config)).await {
                    Ok(Ok(answer)) => merge_discovery(&main, &answer),
                    // Error's Display names the portal and the failure, never a secret.
                    Ok(Err(e)) => DiscoveryMerge::failed(&main, e.to_string()),
                    Err(_) => DiscoveryMerge::failed(
                        &main,
                        format!("no answer within {:?}", template.discovery_timeout),
                    ),
                };
            PathSet::from_merge(main.portal.clone(), merge, chap)
        }
    };
    match set.origin() {
        PathOrigin::Discovery {
            outcome: DiscoveryOutcome::Failed(_),
            ..
        } => warn!(main = %set.main(), "{}", set.origin()),
        origin => info!(main = %set.main(), "{origin}"),
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use iscsi_session::PathContext;
    use std::sync::{Arc, Mutex};

    const PASSWORD: &str = "s3cret-session-pw";
    const DISCOVERY_PASSWORD: &str = "s3cret-discovery-pw";

    fn singular() -> ConnectionInfo {
        ConnectionInfo::parse(&format!(
            r#"{{"driver_volume_type": "iscsi", "data": {{
                "target_portal": "[fd00::1]:3260", "target_iqn": "iqn.t:vol", "target_lun": 4,
                "auth_method": "CHAP", "auth_username": "u", "auth_password": "{PASSWORD}",
                "discovery_auth_method": "CHAP", "discovery_auth_username": "du",
                "discovery_auth_password": "{DISCOVERY_PASSWORD}"}}}}"#
        ))
        .unwrap()
    }

    fn template() -> SessionTemplate {
        let mut t = SessionTemplate::new("iqn.2026-11.io.riscsi:host");
        t.discovery_timeout = Duration::from_millis(200);
        t
    }

    fn record(target: &str, portal: &str) -> DiscoveredPath {
        DiscoveredPath {
            target: target.into(),
            portal: portal.parse().unwrap(),
            tpgt: Some(1),
        }
    }

    async fn run_with(
        answer: Result<Vec<DiscoveredPath>, Error>,
    ) -> (PathSet, Option<SessionConfig>) {
        let seen = Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let set = build_path_set_with(&singular(), &template(), move |config| {
            *seen2.lock().unwrap() = Some(config);
            async move { answer }
        })
        .await;
        let config = seen.lock().unwrap().take();
        (set, config)
    }

    #[tokio::test]
    async fn singular_form_discovers_with_discovery_chap() {
        let (set, config) = run_with(Ok(vec![
            record("iqn.t:vol", "[fd00::1]:3260"),
            record("iqn.t:vol", "[fd00::2]:3260"),
        ]))
        .await;
        let config = config.expect("discovery ran");
        assert!(config.is_discovery());
        assert_eq!(config.portal.to_string(), "[fd00::1]:3260");
        let chap = config.chap.expect("discovery CHAP");
        assert_eq!(chap.initiator.username, "du");
        assert_eq!(
            chap.initiator.secret.expose(),
            DISCOVERY_PASSWORD.as_bytes()
        );

        assert_eq!(set.paths().len(), 2);
        assert_eq!(set.main().portal.to_string(), "[fd00::1]:3260");
        assert_eq!(set.secondaries()[0].portal.to_string(), "[fd00::2]:3260");
        assert_eq!(set.secondaries()[0].lun, 4);
        assert!(set.is_main(&set.paths()[0]) && !set.is_main(&set.paths()[1]));
        assert_eq!(
            set.origin().to_string(),
            "discovery on [fd00::1]:3260 found 2 paths"
        );
    }

    #[tokio::test]
    async fn discovery_only_itself_is_one_path() {
        let (set, _) = run_with(Ok(vec![record("iqn.t:vol", "[fd00::1]:3260")])).await;
        assert_eq!(set.paths().len(), 1);
        assert_eq!(
            set.origin().to_string(),
            "discovery on [fd00::1]:3260 answered only with itself: one path"
        );
    }

    #[tokio::test]
    async fn discovery_error_falls_back_to_the_given_path() {
        let portal: Portal = "[fd00::1]:3260".parse().unwrap();
        let error = Error::Connect {
            ctx: PathContext {
                portal: portal.clone(),
                target: String::new(),
            },
            reason: "connection refused".into(),
        };
        let (set, _) = run_with(Err(error)).await;
        assert_eq!(set.paths(), &[singular().main_path().clone()]);
        let line = set.origin().to_string();
        assert_eq!(
            line,
            "discovery on [fd00::1]:3260 failed: cannot connect to [fd00::1]:3260: connection refused; using the given path only"
        );
        assert!(!line.contains(PASSWORD) && !line.contains(DISCOVERY_PASSWORD));
    }

    #[tokio::test]
    async fn discovery_timeout_falls_back_to_the_given_path() {
        let set = build_path_set_with(&singular(), &template(), |_| {
            std::future::pending::<Result<Vec<DiscoveredPath>, Error>>()
        })
        .await;
        assert_eq!(set.paths().len(), 1);
        assert_eq!(
            set.origin(),
            &PathOrigin::Discovery {
                portal: "[fd00::1]:3260".parse().unwrap(),
                outcome: DiscoveryOutcome::Failed("no answer within 200ms".into()),
                ignored: vec![],
            }
        );
    }

    #[tokio::test]
    async fn ignored_portals_are_named_in_the_line() {
        let (set, _) = run_with(Ok(vec![
            record("iqn.t:vol", "[fd00::2]:3260"),
            record("iqn.o:a", "10.0.0.9:3260"),
            record("iqn.o:b", "10.0.0.9:3260"),
        ]))
        .await;
        assert_eq!(
            set.origin().to_string(),
            "discovery on [fd00::1]:3260 found 2 paths; not using 10.0.0.9:3260 (it reports 2 other targets)"
        );
    }

    #[tokio::test]
    async fn lists_form_never_discovers_and_applies_chap_everywhere() {
        let info = ConnectionInfo::parse(&format!(
            r#"{{"target_portals": ["10.0.0.1:3260", "[fd00::2]:3260", "10.0.0.1:3260,1"],
                "target_iqns": ["iqn.t:a", "iqn.t:b", "iqn.t:a"], "target_luns": [1, "2", 1],
                "target_portal": "[fd00::2]:3260", "target_iqn": "iqn.t:b", "target_lun": 2,
                "auth_method": "CHAP", "auth_username": "u", "auth_password": "{PASSWORD}"}}"#
        ))
        .unwrap();
        let mut template = template();
        template.queue_depth = Some(7);
        let set = build_path_set_with(&info, &template, |_| async {
            panic!("the lists form must not run discovery")
        })
        .await;
        assert_eq!(set.main().iqn, "iqn.t:b");
        assert_eq!(set.main().lun, 2);
        assert_eq!(set.paths().len(), 2);
        assert_eq!(
            set.origin().to_string(),
            "2 paths from target_portals (1 repeated entry dropped)"
        );
        let configs = set.session_configs(&template);
        assert_eq!(configs.len(), 2);
        for (config, path) in configs.iter().zip(set.paths()) {
            assert_eq!(config.portal, path.portal);
            assert_eq!(config.target_name.as_deref(), Some(path.iqn.as_str()));
            assert_eq!(config.queue_depth, 7);
            let chap = config.chap.as_ref().expect("session CHAP on every path");
            assert_eq!(chap.initiator.username, "u");
            assert_eq!(chap.initiator.secret.expose(), PASSWORD.as_bytes());
            assert_eq!(chap.target, None);
        }
        assert!(!format!("{set:?}").contains(PASSWORD));
    }

    #[tokio::test]
    async fn template_timeouts_reach_discovery_and_sessions() {
        let mut template = template();
        let timeouts = Timeouts {
            connect: Duration::from_secs(2),
            ..Timeouts::default()
        };
        template.timeouts = Some(timeouts.clone());
        let seen = Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let set = build_path_set_with(&singular(), &template, move |config| {
            *seen2.lock().unwrap() = Some(config.timeouts.clone());
            async { Ok(vec![]) }
        })
        .await;
        assert_eq!(seen.lock().unwrap().take(), Some(timeouts.clone()));
        assert_eq!(set.session_configs(&template)[0].timeouts, timeouts);
    }
}
