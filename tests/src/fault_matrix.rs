//! The fault matrix: `riscsi attach` over two paths to tgtd, the
//! stamped-block verifier writing and reading through the NBD export, and
//! one fault injected per scenario. The paths are either each portal behind
//! a fault proxy (faults of the connection, injected at the TCP or PDU
//! level) or, for the `Link*` faults, real links: tgtd in a network
//! namespace of its own, one veth pair per portal, cut or impaired in the
//! kernel ([`Netns`]), so the initiator's TCP stack sees what a cable pull
//! or a bad link does to it. Each
//! scenario reports what an operator of a storage appliance fears: writes
//! acknowledged and lost, errors the NBD client saw while a path lived, the
//! longest stall, and how long I/O took to come back to the main path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use iscsi_proto::pdu::AsyncEvent;
use serde_json::Value;

use crate::attach::Attach;
use crate::connection_info::ConnectionInfoForm;
use crate::error::{FixtureError, Result};
use crate::export::Fixture;
use crate::lun::LunSpec;
use crate::nbd_async::NbdClient;
use crate::netns::{Impairment, Netns};
use crate::proxy::{FaultProxy, ProxyControl};
use crate::tgt::Tgt;
use crate::verifier::{self, BLOCK};

/// Blocks the verifier owns (4 KiB each).
const BLOCKS: u64 = 512;
/// The LU's size: twice what the verifier owns, so the rest stays intact.
pub const LUN_BYTES: u64 = BLOCKS * BLOCK as u64 * 2;
/// Verifier workers (requests in flight).
const WORKERS: u64 = 8;
/// I/O before the fault, so every path is up and the main one carries I/O.
const WARM_UP: Duration = Duration::from_secs(1);
/// I/O after the fault ends (and after failback), so recovery is exercised.
const COOL_DOWN: Duration = Duration::from_secs(1);
/// How late after a path is seen back an error still counts as one
/// without a path (see `window_end` in [`run`]).
const PATH_BACK_GRACE: Duration = Duration::from_millis(500);
/// How long a scenario waits for I/O to come back to the main path.
const FAILBACK_WAIT: Duration = Duration::from_secs(20);

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The main path's connections reset (RST); reconnection allowed.
    MainReset,
    /// The main path black-holed (no RST) for 5 s.
    MainBlackHole,
    /// 500 ms added to every chunk on the main path for 5 s.
    MainLatency,
    /// The main path cut (RST, refused) and restored every second for 30 s.
    MainFlapping,
    /// tgtd killed with SIGKILL and restarted on the same portals and file.
    TargetRestart,
    /// The LU unmapped from the target for 5 s, then mapped again (tgtadm
    /// delete and new: every path answers LOGICAL UNIT NOT SUPPORTED).
    LunRemoved,
    /// The LU recreated twice as large (offline, deleted, re-added).
    LunResize,
    /// An Asynchronous Message asking to log out, on the main path.
    LogoutRequest,
    /// An Asynchronous Message dropping the main path's connection.
    DropConnection,
    /// Every path down for 10 s, within no_path_retry (30 s).
    AllDownShort,
    /// Every path down for 10 s, beyond a 4 s no_path_retry: errors, then
    /// recovery once a path returns.
    AllDownLong,
    /// `riscsi attach` killed with SIGKILL mid-write and restarted.
    AttachKilled,
    /// The main path's link cut for 5 s (no carrier: no RST, no FIN,
    /// connects time out or find no route), then restored.
    LinkDown,
    /// 500 ms added to every packet the host sends on the main link, 5 s.
    LinkDelay,
    /// 20% of the packets the host sends on the main link dropped, 10 s.
    LinkLoss,
    /// The main link cut and restored every second for 30 s: each cut is
    /// shorter than the keepalive needs to declare the path dead.
    LinkFlapping,
    /// The main link cut for 3 s and restored for 1 s, 8 times: the path
    /// dies in every cut, and logs in again into a link about to go.
    LinkFlappingSlow,
    /// Every link cut for 10 s, within no_path_retry (30 s).
    AllLinksDown,
}

impl Fault {
    /// Every fault, in table order.
    pub const ALL: [Fault; 18] = [
        Fault::MainReset,
        Fault::MainBlackHole,
        Fault::MainLatency,
        Fault::MainFlapping,
        Fault::TargetRestart,
        Fault::LunRemoved,
        Fault::LunResize,
        Fault::LogoutRequest,
        Fault::DropConnection,
        Fault::AllDownShort,
        Fault::AllDownLong,
        Fault::AttachKilled,
        Fault::LinkDown,
        Fault::LinkDelay,
        Fault::LinkLoss,
        Fault::LinkFlapping,
        Fault::LinkFlappingSlow,
        Fault::AllLinksDown,
    ];

    /// The table's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::MainReset => "main path reset (RST)",
            Fault::MainBlackHole => "main path black hole, 5 s",
            Fault::MainLatency => "main path +500 ms latency, 5 s",
            Fault::MainFlapping => "main path flapping every second, 30 s",
            Fault::TargetRestart => "tgtd SIGKILL and restart",
            Fault::LunRemoved => "LU unmapped 5 s and mapped again",
            Fault::LunResize => "LU recreated twice as large",
            Fault::LogoutRequest => "target asks for logout (main path)",
            Fault::DropConnection => "target drops the connection (main path)",
            Fault::AllDownShort => "all paths down 10 s (no_path_retry 30 s)",
            Fault::AllDownLong => "all paths down 10 s (no_path_retry 4 s)",
            Fault::AttachKilled => "riscsi attach SIGKILL mid-write, restarted",
            Fault::LinkDown => "main link down 5 s (veth, no carrier)",
            Fault::LinkDelay => "main link +500 ms delay, 5 s",
            Fault::LinkLoss => "main link 20% packet loss, 10 s",
            Fault::LinkFlapping => "main link down/up every second, 30 s",
            Fault::LinkFlappingSlow => "main link down 3 s / up 1 s, 32 s",
            Fault::AllLinksDown => "all links down 10 s (no_path_retry 30 s)",
        }
    }

    /// Whether it runs over real links (tgtd in a namespace) rather than
    /// fault proxies.
    pub fn over_links(self) -> bool {
        matches!(
            self,
            Fault::LinkDown
                | Fault::LinkDelay
                | Fault::LinkLoss
                | Fault::LinkFlapping
                | Fault::LinkFlappingSlow
                | Fault::AllLinksDown
        )
    }
}

/// What a scenario measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The fault.
    pub fault: Fault,
    /// Writes acknowledged.
    pub writes: u64,
    /// Blocks whose acknowledged generation is not on the target.
    pub lost: usize,
    /// Blocks holding another block's data, a generation never written, or
    /// garbage; and reads that returned something else than the last
    /// acknowledged write.
    pub corrupt: usize,
    /// Errors the NBD client saw while a path lived.
    pub errors_with_a_path: usize,
    /// Errors while no path lived (expected only beyond no_path_retry, or
    /// while riscsi attach itself was dead).
    pub errors_without_a_path: usize,
    /// The longest time without a successful completion.
    pub longest_stall: Duration,
    /// From the end of the fault until a path was usable again.
    pub path_back: Option<Duration>,
    /// From the end of the fault until the main path completed I/O again.
    pub back_on_main: Option<Duration>,
    /// The volume's size as `riscsi status` reports it at the end.
    pub size_after: Option<u64>,
    /// Anything worth a line in the table.
    pub note: String,
    /// What `riscsi attach` wrote to stderr (`RUST_LOG` sets how much).
    pub attach_log: String,
}

impl Outcome {
    /// What the matrix promises: nothing acknowledged lost, nothing
    /// corrupt, no error while a path lived.
    pub fn holds(&self) -> bool {
        self.lost == 0 && self.corrupt == 0 && self.errors_with_a_path == 0
    }
}

/// Two tgtd portals, a proxy in front of each or a link to each, and
/// `riscsi attach` over them.
pub(crate) struct Rig {
    pub(crate) tgt: Tgt,
    /// Empty over real links.
    pub(crate) proxies: Vec<FaultProxy>,
    /// tgtd's namespace, over real links.
    netns: Option<Netns>,
    info: Value,
    attach_args: Vec<String>,
    pub(crate) attach: Option<Attach>,
}

impl Rig {
    pub(crate) fn start(attach_args: &[&str], over_links: bool) -> Result<Rig> {
        if over_links {
            return Self::start_over_links(attach_args);
        }
        let tgt = Tgt::builder()
            .portal("127.0.0.1")
            .portal("127.0.0.2")
            .lun(LunSpec::new(LUN_BYTES))
            .start()?;
        let proxies: Vec<FaultProxy> = tgt
            .portals()
            .iter()
            .map(|p| FaultProxy::start(*p))
            .collect::<Result<_>>()?;
        let routes: Vec<_> = proxies
            .iter()
            .map(|p| (p.target_addr(), p.listen_addr()))
            .collect();
        let info = tgt
            .connection_info_spec()
            .map_portals(|p| {
                routes
                    .iter()
                    .find(|(t, _)| *t == p)
                    .map(|(_, l)| *l)
                    .unwrap_or(p)
            })
            .to_json(ConnectionInfoForm::Lists);
        let attach_args: Vec<String> = attach_args.iter().map(|s| s.to_string()).collect();
        let mut rig = Rig {
            tgt,
            proxies,
            netns: None,
            info,
            attach_args,
            attach: None,
        };
        rig.start_attach()?;
        Ok(rig)
    }

    /// tgtd in a namespace, a veth pair per portal, attach on the host.
    fn start_over_links(attach_args: &[&str]) -> Result<Rig> {
        let netns = Netns::create(2)?;
        let mut builder = Tgt::builder().netns(&netns);
        for link in netns.links() {
            builder = builder.portal_ip(link.target_ip.into());
        }
        let tgt = builder.lun(LunSpec::new(LUN_BYTES)).start()?;
        let info = tgt
            .connection_info_spec()
            .to_json(ConnectionInfoForm::Lists);
        let mut rig = Rig {
            tgt,
            proxies: Vec::new(),
            netns: Some(netns),
            info,
            attach_args: attach_args.iter().map(|s| s.to_string()).collect(),
            attach: None,
        };
        rig.start_attach()?;
        Ok(rig)
    }

    fn start_attach(&mut self) -> Result<()> {
        let args: Vec<&str> = self.attach_args.iter().map(String::as_str).collect();
        self.attach = Some(Attach::start(&self.info, &args)?);
        self.attach()?
            .wait_status(Duration::from_secs(20), |s| {
                s["volume"]["paths"].as_array().is_some_and(|p| {
                    p.iter()
                        .all(|p| p["state"] == "active" || p["state"] == "standby")
                })
            })
            .map_err(|s| FixtureError::InvalidConfig(format!("paths not up: {s}")))?;
        Ok(())
    }

    pub(crate) fn attach(&self) -> Result<&Attach> {
        self.attach
            .as_ref()
            .ok_or_else(|| FixtureError::InvalidConfig("riscsi attach is not running".into()))
    }

    pub(crate) fn nbd_socket(&self) -> Result<std::path::PathBuf> {
        Ok(self
            .attach()?
            .nbd_socket()
            .ok_or_else(|| FixtureError::InvalidConfig("attach serves no unix socket".into()))?
            .to_owned())
    }

    /// Unmaps the LU, waits `gap`, (optionally doubles its backing file)
    /// and maps it again with the same serial and device id.
    fn recreate_lun(&self, gap: Duration, grow: bool) -> Result<()> {
        let lun = self.tgt.first_lun().clone();
        // tgtd refuses to delete an LU with commands in flight: retry as an
        // operator would.
        let delete = [
            "--op",
            "delete",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
        ];
        let since = Instant::now();
        while let Err(e) = self.tgt.tgtadm(&delete) {
            if since.elapsed() > Duration::from_secs(10) {
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(gap);
        if grow {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&lun.path)
                .and_then(|f| f.set_len(lun.size * 2))
                .map_err(|e| FixtureError::io("cannot grow the backing file", e))?;
        }
        let path = lun.path.display().to_string();
        self.tgt.tgtadm(&[
            "--op",
            "new",
            "--mode",
            "logicalunit",
            "--tid",
            "1",
            "--lun",
            "1",
            "-b",
            &path,
        ])?;
        let mut params = format!("scsi_sn={}", lun.scsi_sn);
        if let Some(id) = &lun.scsi_id {
            params.push_str(&format!(",scsi_id={id}"));
        }
        self.tgt
            .tgtadm(&[
                "--op",
                "update",
                "--mode",
                "logicalunit",
                "--tid",
                "1",
                "--lun",
                "1",
                "--params",
                &params,
            ])
            .map(drop)
    }
}

pub(crate) async fn connect(socket: &std::path::Path) -> Result<NbdClient> {
    NbdClient::unix(socket, "")
        .await
        .map_err(|e| FixtureError::io("cannot connect to the NBD export", e))
}

/// Runs `f` off the async threads (it waits on processes and sleeps).
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// When the fault ran, from the start of the verifier.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start: Duration,
    end: Duration,
    /// No path lived during it (all paths down, or attach dead).
    no_path: bool,
}

/// Runs one scenario against its own tgtd and `riscsi attach`.
pub async fn run(fault: Fault) -> Result<Outcome> {
    let nop = ["--nop-interval", "1", "--nop-timeout", "1"];
    let mut args: Vec<&str> = nop.to_vec();
    if fault == Fault::AllDownLong {
        args.extend(["--no-path-retry", "4"]);
    }
    let rig = Arc::new(std::sync::Mutex::new(
        blocking({
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Rig::start(&args, fault.over_links())
            }
        })
        .await?,
    ));
    let socket = rig.lock().unwrap().nbd_socket()?;
    let client = connect(&socket).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let verifier = tokio::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        async move { verifier::run(&client, BLOCKS, WORKERS, stop).await }
    });
    tokio::time::sleep(WARM_UP).await;
    let (window, mut note) = inject(&rig, fault, started).await?;
    // After the fault: when is a path usable again, and when does the main
    // path carry I/O again?
    let (path_back, back_on_main) = if fault == Fault::AttachKilled {
        (Some(Duration::ZERO), None)
    } else {
        let rig = rig.clone();
        blocking(move || {
            let rig = rig.lock().unwrap();
            let main_completed = |s: &Value| s["volume"]["paths"][0]["completed"].as_u64();
            let baseline = rig.attach().ok().and_then(|a| a.status().ok());
            let baseline = baseline.as_ref().and_then(main_completed).unwrap_or(0);
            let since = Instant::now();
            let (mut path_back, mut back_on_main) = (None, None);
            while since.elapsed() < FAILBACK_WAIT && back_on_main.is_none() {
                if let Some(status) = rig.attach().ok().and_then(|a| a.status().ok()) {
                    if path_back.is_none() && status["volume"]["no_path_ms"].is_null() {
                        path_back = Some(since.elapsed());
                    }
                    if main_completed(&status).is_some_and(|c| c > baseline) {
                        back_on_main = Some(since.elapsed());
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (path_back.or(back_on_main), back_on_main)
        })
        .await
    };
    tokio::time::sleep(COOL_DOWN).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcome_run = verifier.await.expect("verifier");
    if fault == Fault::AttachKilled {
        // The first client died with attach; the restarted one must serve
        // exactly what the target holds.
        let socket = rig.lock().unwrap().nbd_socket()?;
        let fresh = connect(&socket).await?;
        let lun = rig.lock().unwrap().tgt.first_lun().clone();
        for block in 0..BLOCKS {
            let offset = block * BLOCK as u64;
            let served = fresh.read(offset, BLOCK as u32).await;
            let held = lun.read_backing(offset, BLOCK).unwrap_or_default();
            match served {
                Ok(data) if data[..] == held[..] => {}
                Ok(_) => outcome_run.bad_reads.push(format!(
                    "block {block}: served data differs from the target"
                )),
                Err(e) => outcome_run.bad_reads.push(format!("block {block}: {e}")),
            }
        }
        fresh.disconnect().await;
    } else if let Err(e) = client.flush().await {
        note.push_str(&format!("final flush failed: {e}; "));
    }
    let (lost, corrupt, size_after) = {
        let rig = rig.lock().unwrap();
        let lun = rig.tgt.first_lun().clone();
        let audit = verifier::audit(&outcome_run, |offset, len| {
            lun.read_backing(offset, len).unwrap_or_default()
        });
        let size_after = rig
            .attach()
            .ok()
            .and_then(|a| a.status().ok())
            .and_then(|s| s["volume"]["size_bytes"].as_u64());
        if fault == Fault::LunResize {
            let size = size_after.map_or("?".into(), |s| format!("{} MiB", s >> 20));
            note.push_str(&format!("size after: {size}; "));
        }
        (
            audit.lost.len(),
            audit.corrupt.len() + outcome_run.bad_reads.len(),
            size_after,
        )
    };
    // No path lives from the fault until a path is usable again (logged in
    // and checked), and a killed attach takes its NBD connection with it:
    // every error after the kill is the dead client's.
    // `path_back` is when a status poll (every 50 ms) first saw a usable
    // path; a reply the volume decided before then can reach the client a
    // little later on a loaded machine, hence the grace.
    let window_end = match path_back {
        _ if fault == Fault::AttachKilled => Duration::MAX,
        Some(back) => window.end + back + PATH_BACK_GRACE,
        None => Duration::MAX,
    };
    let in_window = |at: Duration| window.no_path && at >= window.start && at <= window_end;
    let errors_without_a_path = outcome_run
        .errors
        .iter()
        .filter(|e| in_window(e.at))
        .count();
    let errors_with_a_path = outcome_run.errors.len() - errors_without_a_path;
    if let Some(first) = outcome_run.errors.first() {
        note.push_str(&format!("first error: {}; ", first.error));
    }
    let rig = Arc::try_unwrap(rig).ok().map(|m| m.into_inner().unwrap());
    let mut attach_log = String::new();
    if let Some(mut rig) = rig
        && let Some(attach) = rig.attach.take()
    {
        attach_log = blocking(move || attach.stop()).await?;
    }
    Ok(Outcome {
        fault,
        writes: outcome_run.writes,
        lost,
        corrupt,
        errors_with_a_path,
        errors_without_a_path,
        longest_stall: outcome_run.longest_stall,
        path_back,
        back_on_main,
        size_after,
        note: note.trim_end_matches("; ").to_owned(),
        attach_log,
    })
}

/// Injects `fault`; returns when it ran and a note.
async fn inject(
    rig: &Arc<std::sync::Mutex<Rig>>,
    fault: Fault,
    started: Instant,
) -> Result<(Window, String)> {
    let start = started.elapsed();
    let (others, netns): (Vec<ProxyControl>, _) = {
        let rig = rig.lock().unwrap();
        let controls = rig.proxies.iter().map(|p| p.control()).collect();
        (controls, rig.netns.clone())
    };
    let rig_lacks =
        |what: &str| FixtureError::InvalidConfig(format!("{} needs {what}", fault.name()));
    let main = others
        .first()
        .cloned()
        .ok_or_else(|| rig_lacks("fault proxies"));
    let netns = netns.ok_or_else(|| rig_lacks("a network namespace"));
    let mut no_path = false;
    let mut note = String::new();
    match fault {
        Fault::MainReset => main?.reset(),
        Fault::MainBlackHole => {
            let main = main?;
            main.black_hole();
            tokio::time::sleep(Duration::from_secs(5)).await;
            main.resume();
        }
        Fault::MainLatency => {
            let main = main?;
            main.delay(Duration::from_millis(500));
            tokio::time::sleep(Duration::from_secs(5)).await;
            main.resume();
        }
        Fault::MainFlapping => {
            let main = main?;
            for _ in 0..30 {
                main.refuse();
                main.reset();
                tokio::time::sleep(Duration::from_millis(500)).await;
                main.resume();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Fault::TargetRestart => {
            no_path = true;
            let rig = rig.clone();
            blocking(move || {
                let mut rig = rig.lock().unwrap();
                rig.tgt.kill();
                std::thread::sleep(Duration::from_secs(2));
                rig.tgt.restart()
            })
            .await?;
        }
        Fault::LunRemoved => {
            no_path = true;
            let rig = rig.clone();
            blocking(move || {
                rig.lock()
                    .unwrap()
                    .recreate_lun(Duration::from_secs(5), false)
            })
            .await?;
        }
        Fault::LunResize => {
            no_path = true;
            let rig = rig.clone();
            blocking(move || {
                rig.lock()
                    .unwrap()
                    .recreate_lun(Duration::from_millis(500), true)
            })
            .await?;
        }
        Fault::LogoutRequest => main?.inject_async(AsyncEvent::LogoutRequest, 0, 0, 5),
        Fault::DropConnection => main?.inject_async(AsyncEvent::DropConnection, 0, 1, 0),
        Fault::AllDownShort | Fault::AllDownLong => {
            no_path = true;
            for p in &others {
                p.refuse();
                p.reset();
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            for p in &others {
                p.resume();
            }
        }
        Fault::AttachKilled => {
            no_path = true;
            let rig2 = rig.clone();
            blocking(move || -> Result<()> {
                let mut rig = rig2.lock().unwrap();
                if let Some(attach) = rig.attach.take() {
                    attach.signal(nix::sys::signal::Signal::SIGKILL)?;
                    drop(attach);
                }
                rig.start_attach()
            })
            .await?;
            note.push_str("verified after the restart; ");
        }
        Fault::LinkDown => {
            let ns = netns?;
            set_links(&ns, &[0], false).await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            set_links(&ns, &[0], true).await?;
        }
        Fault::LinkDelay | Fault::LinkLoss => {
            let ns = netns?;
            let (impairment, length) = if fault == Fault::LinkDelay {
                (Impairment::delay(Duration::from_millis(500)), 5)
            } else {
                (Impairment::loss(0.2), 10)
            };
            let stats = blocking({
                let ns = ns.clone();
                move || -> Result<_> {
                    ns.impair(0, impairment)?;
                    std::thread::sleep(Duration::from_secs(length));
                    ns.clear(0)
                }
            })
            .await?;
            note.push_str(&format!(
                "{} packets to the target, {} dropped; ",
                stats.packets, stats.dropped
            ));
        }
        Fault::LinkFlapping | Fault::LinkFlappingSlow => {
            let ns = netns?;
            let (cycles, down, up) = if fault == Fault::LinkFlapping {
                (15, 1, 1)
            } else {
                (8, 3, 1)
            };
            for _ in 0..cycles {
                set_links(&ns, &[0], false).await?;
                tokio::time::sleep(Duration::from_secs(down)).await;
                set_links(&ns, &[0], true).await?;
                tokio::time::sleep(Duration::from_secs(up)).await;
            }
        }
        Fault::AllLinksDown => {
            no_path = true;
            let ns = netns?;
            let all: Vec<usize> = (0..ns.links().len()).collect();
            set_links(&ns, &all, false).await?;
            tokio::time::sleep(Duration::from_secs(10)).await;
            set_links(&ns, &all, true).await?;
        }
    }
    let end = started.elapsed();
    Ok((
        Window {
            start,
            end,
            no_path,
        },
        note,
    ))
}

/// Cuts (`up == false`) or restores the links `indexes` of `ns`.
async fn set_links(ns: &Netns, indexes: &[usize], up: bool) -> Result<()> {
    let (ns, indexes) = (ns.clone(), indexes.to_vec());
    blocking(move || {
        indexes
            .into_iter()
            .try_for_each(|index| ns.set_link(index, up))
    })
    .await
}

/// The table RELIABILITY.md holds.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| fault | writes acked | acked writes lost | corrupt | client errors while a path lived | client errors without a path | longest stall | a path usable after | back on the main path | holds | note |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n",
    );
    for o in outcomes {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.2} s | {} | {} | {} | {} |\n",
            o.fault.name(),
            o.writes,
            o.lost,
            o.corrupt,
            o.errors_with_a_path,
            o.errors_without_a_path,
            o.longest_stall.as_secs_f64(),
            o.path_back
                .map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64())),
            o.back_on_main
                .map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64())),
            if o.holds() { "yes" } else { "**no**" },
            o.note.replace('|', "/"),
        ));
    }
    out
}
