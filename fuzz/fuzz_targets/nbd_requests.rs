//! The NBD request decoder in arbitrary chunks, and the handshake and
//! transmission phase over an in-memory stream; see `riscsi_fuzz::nbd`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    riscsi_fuzz::nbd::run(data);
});
