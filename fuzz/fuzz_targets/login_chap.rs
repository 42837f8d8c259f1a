//! A CHAP login (one-way or mutual) fed arbitrary Login Responses; see
//! `riscsi_fuzz::login` for the input layout and the invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    riscsi_fuzz::login::run(data);
});
