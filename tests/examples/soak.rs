//! The soak as a table row for RELIABILITY.md (`scripts/soak` runs it).
//!
//! Usage: cargo run --release -p riscsi-tests --example soak -- [SECONDS]

use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let report = match riscsi_tests::soak::run(Duration::from_secs(seconds)).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    print!("{}", report.table());
    let samples: Vec<String> = report
        .samples
        .iter()
        .map(|s| format!("{:.0}s {}KiB {}fd", s.at.as_secs_f64(), s.rss_kib, s.fds))
        .collect();
    eprintln!("soak samples: {}", samples.join(", "));
    if !(report.holds() && report.steady()) {
        std::process::exit(1);
    }
}
