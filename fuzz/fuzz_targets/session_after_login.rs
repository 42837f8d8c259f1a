//! A logged-in connection fed arbitrary target bytes; see
//! `riscsi_fuzz::session` for the input layout and the invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    riscsi_fuzz::session::run(data);
});
