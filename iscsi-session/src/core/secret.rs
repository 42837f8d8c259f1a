//! A CHAP secret that never prints.

use std::fmt;

/// Secret bytes. `Debug` shows only that a secret is there; there is no
/// `Display`, so a secret cannot end up in a log line or an error by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of the bytes; they are zeroed (best effort) when
    /// dropped.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The secret itself, for the CHAP computation only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// An empty secret, which [`crate::SessionConfig::validate`] refuses.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s.as_bytes())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s.into_bytes())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: do not leave the secret in freed memory.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let s = Secret::from("hunter2-is-secret");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), b"hunter2-is-secret");
    }
}
