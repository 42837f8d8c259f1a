//! The tokio side: a task per session that owns the socket and the timers
//! and drives the sans-IO core, the cloneable async [`Session`] handle, and
//! SendTargets discovery on top of it.

pub mod discovery;
mod driver;
mod session;
mod transport;

pub use session::{Session, SessionState, SessionStatus};
