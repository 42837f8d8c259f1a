//! `riscsi`: the command-line front end (connector, discover, inquiry, copy,
//! attach, status, bench) and, later, the NBD server that exports a multipath
//! volume as one block device.

fn main() {
    eprintln!("riscsi: no subcommands yet");
    std::process::exit(2);
}
