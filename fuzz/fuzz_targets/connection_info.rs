//! `ConnectionInfo::parse` on arbitrary text and on documents built from the
//! input; see `riscsi_fuzz::connection_info`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    riscsi_fuzz::connection_info::run(data);
});
