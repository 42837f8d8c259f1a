//! The fault matrix as a table: every fault of
//! `riscsi_tests::fault_matrix`, one after the other (so one scenario's load
//! does not stretch another's stalls), printed as the markdown table
//! `scripts/fault-matrix` puts into RELIABILITY.md. The pass/fail version of
//! the same runs is `tests/tests/fault_matrix.rs`.
//!
//! Usage: cargo run --release -p riscsi-tests --example fault_matrix -- [FAULT...]
//! (FAULT: a substring of a fault's name; all when none is given)

use riscsi_tests::fault_matrix::{Fault, run, table};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let filters: Vec<String> = std::env::args().skip(1).collect();
    let mut outcomes = Vec::new();
    let mut failed = false;
    for fault in Fault::ALL {
        if !filters.is_empty() && !filters.iter().any(|f| fault.name().contains(f.as_str())) {
            continue;
        }
        eprintln!("fault-matrix: {}", fault.name());
        match run(fault).await {
            Ok(outcome) => {
                failed |= !outcome.holds();
                outcomes.push(outcome);
            }
            Err(e) => {
                eprintln!("fault-matrix: {}: {e}", fault.name());
                failed = true;
            }
        }
    }
    print!("{}", table(&outcomes));
    if failed {
        std::process::exit(1);
    }
}
