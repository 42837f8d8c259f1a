//! The short soak of CI (the 30-minute one is `scripts/soak`, recorded in
//! RELIABILITY.md): random faults on one path at a time for a minute; no
//! acknowledged write lost, no client error, and after the warm-up no
//! growth of the attach process's memory or descriptors.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_random_path_faults() {
    let report = riscsi_tests::soak::run(Duration::from_secs(60))
        .await
        .expect("soak");
    eprintln!("{}", report.table());
    assert!(report.faults >= 8, "{report:?}");
    assert!(report.writes > 0, "{report:?}");
    assert!(report.holds(), "{}", report.table());
    assert!(report.steady(), "{}\n{:?}", report.table(), report.samples);
}
