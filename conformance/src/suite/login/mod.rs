//! The login family: keys, the login state machine, sessions, discovery
//! and CHAP (RFC 7143 §6, §11.12, §11.13, §12, §13).

mod basic;
mod chap;
mod discovery;
mod discovery_chap;
mod keys;
mod redirect;
mod session;

use crate::registry::TestCase;

/// Every login test.
pub fn tests() -> Vec<TestCase> {
    let mut out = basic::tests();
    out.extend(keys::tests());
    out.extend(session::tests());
    out.extend(discovery::tests());
    out.extend(discovery_chap::tests());
    out.extend(chap::tests());
    out.extend(redirect::tests());
    out
}
