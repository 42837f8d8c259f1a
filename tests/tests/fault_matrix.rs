//! The fault matrix, one test per fault: `riscsi attach` over two tgtd
//! paths behind fault proxies (or over real links to tgtd in a network
//! namespace, the `*link*` tests), the stamped-block verifier pipelining writes
//! and reads through the NBD export. Each asserts that no acknowledged
//! write was lost, nothing read or stored was corrupt, and the NBD client
//! saw no error while a path lived. `scripts/fault-matrix` prints the same
//! runs as the table in RELIABILITY.md.

use riscsi_tests::fault_matrix::{Fault, Outcome, run, table};

async fn scenario(fault: Fault) -> Outcome {
    let outcome = run(fault)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", fault.name()));
    eprintln!("{}", table(std::slice::from_ref(&outcome)));
    if !outcome.holds() {
        eprintln!("riscsi attach:\n{}", outcome.attach_log);
    }
    assert!(outcome.writes > 0, "no write completed: {outcome:?}");
    assert!(outcome.holds(), "{outcome:?}");
    outcome
}

/// Faults on the main path only: the other path carries I/O, and the main
/// path takes it back once it recovers.
async fn main_path_fault(fault: Fault) {
    let outcome = scenario(fault).await;
    assert_eq!(outcome.errors_without_a_path, 0, "{outcome:?}");
    assert!(
        outcome.back_on_main.is_some(),
        "never back on the main path: {outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_path_reset() {
    main_path_fault(Fault::MainReset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_path_black_hole() {
    main_path_fault(Fault::MainBlackHole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_path_latency() {
    main_path_fault(Fault::MainLatency).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_path_flapping() {
    main_path_fault(Fault::MainFlapping).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_requested_on_the_main_path() {
    main_path_fault(Fault::LogoutRequest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_dropped_on_the_main_path() {
    main_path_fault(Fault::DropConnection).await;
}

/// Faults of the whole target: I/O queues (no_path_retry 30 s) and resumes.
async fn target_fault(fault: Fault) -> Outcome {
    let outcome = scenario(fault).await;
    assert_eq!(
        outcome.errors_without_a_path, 0,
        "queued, not failed: {outcome:?}"
    );
    assert!(
        outcome.back_on_main.is_some(),
        "I/O never resumed: {outcome:?}"
    );
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_restarted() {
    target_fault(Fault::TargetRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lun_unmapped_and_mapped_again() {
    target_fault(Fault::LunRemoved).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lun_recreated_larger() {
    let outcome = target_fault(Fault::LunResize).await;
    let grown = riscsi_tests::fault_matrix::LUN_BYTES * 2;
    assert_eq!(outcome.size_after, Some(grown), "{}", outcome.attach_log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_paths_down_within_no_path_retry() {
    target_fault(Fault::AllDownShort).await;
}

/// Beyond no_path_retry, I/O fails (the client must see it, not hang), and
/// works again once a path returns: `holds` counts any error after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_paths_down_beyond_no_path_retry() {
    let outcome = scenario(Fault::AllDownLong).await;
    assert!(
        outcome.errors_without_a_path > 0,
        "queued forever: {outcome:?}"
    );
    assert!(
        outcome.back_on_main.is_some(),
        "I/O never resumed: {outcome:?}"
    );
}

/// SIGKILL of `riscsi attach` loses nothing acknowledged, and a restarted
/// one serves exactly what the target holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_killed_and_restarted() {
    scenario(Fault::AttachKilled).await;
}

/// Real link faults: tgtd in a network namespace of its own, one veth pair
/// per portal. A cut is seen only through the NOP-Out keepalive or TCP's
/// retransmission timeouts, never through a RST or FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_link_down() {
    main_path_fault(Fault::LinkDown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_link_delayed() {
    main_path_fault(Fault::LinkDelay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_link_lossy() {
    main_path_fault(Fault::LinkLoss).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_link_flapping() {
    main_path_fault(Fault::LinkFlapping).await;
}

/// Cuts long enough for the keepalive to declare the path dead, and
/// reconnects into a link that goes away again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn main_link_flapping_slowly() {
    main_path_fault(Fault::LinkFlappingSlow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_links_down_within_no_path_retry() {
    target_fault(Fault::AllLinksDown).await;
}
