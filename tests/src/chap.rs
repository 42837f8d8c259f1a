//! CHAP credentials a fixture configures, kept out of logs.

use std::fmt;

use crate::error::{FixtureError, Result};

/// One CHAP name and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    user: String,
    secret: String,
}

impl Chap {
    /// Credentials `user` / `secret`.
    pub fn new(user: impl Into<String>, secret: impl Into<String>) -> Self {
        Chap {
            user: user.into(),
            secret: secret.into(),
        }
    }

    /// The CHAP name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The CHAP secret (for handing to an initiator; never log it).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Both parts must survive a libiscsi URL (`user%secret@`, `&target_password=`),
    /// a tgtadm argument and a quoted istgt config value unchanged.
    fn validate(&self, role: &str) -> Result<()> {
        for (what, value) in [("user", &self.user), ("secret", &self.secret)] {
            let bad = value.is_empty()
                || value.len() > 255
                || !value
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !"%@/?&#\"\\'".contains(c));
            if bad {
                return Err(FixtureError::InvalidConfig(format!(
                    "{role} CHAP {what} must be 1-255 printable ASCII characters without \
                     % @ / ? & # quotes or backslash"
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Chap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chap")
            .field("user", &self.user)
            .field("secret", &"***")
            .finish()
    }
}

/// Every kind of CHAP a fixture can require.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChapConfig {
    /// Session CHAP: the initiator proves itself to the target (tgtd "incoming").
    pub session: Option<Chap>,
    /// Mutual session CHAP: the target proves itself back (tgtd "outgoing").
    pub mutual: Option<Chap>,
    /// CHAP on the SendTargets discovery session.
    pub discovery: Option<Chap>,
    /// Mutual CHAP on the discovery session.
    pub discovery_mutual: Option<Chap>,
}

impl ChapConfig {
    /// Checks the credentials are usable and that each mutual credential has the
    /// one-way credential it completes.
    pub fn validate(&self) -> Result<()> {
        let roles = [
            ("session", &self.session),
            ("mutual", &self.mutual),
            ("discovery", &self.discovery),
            ("discovery mutual", &self.discovery_mutual),
        ];
        for (role, chap) in roles {
            if let Some(chap) = chap {
                chap.validate(role)?;
            }
        }
        if self.mutual.is_some() && self.session.is_none() {
            return Err(FixtureError::InvalidConfig(
                "mutual CHAP needs one-way session CHAP too (call .chap first)".into(),
            ));
        }
        if self.discovery_mutual.is_some() && self.discovery.is_none() {
            return Err(FixtureError::InvalidConfig(
                "mutual discovery CHAP needs one-way discovery CHAP too".into(),
            ));
        }
        Ok(())
    }

    /// Every secret configured, for redaction.
    pub fn secrets(&self) -> Vec<String> {
        [
            &self.session,
            &self.mutual,
            &self.discovery,
            &self.discovery_mutual,
        ]
        .into_iter()
        .flatten()
        .map(|c| c.secret.clone())
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret() {
        let config = ChapConfig {
            session: Some(Chap::new("alice", "s3cr3t-value")),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }

    #[test]
    fn mutual_without_one_way_is_refused() {
        let config = ChapConfig {
            mutual: Some(Chap::new("t", "secret123456")),
            ..Default::default()
        };
        assert!(config.validate().is_err());
        let config = ChapConfig {
            discovery_mutual: Some(Chap::new("t", "secret123456")),
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn url_breaking_characters_are_refused() {
        for secret in ["a%b", "a@b", "", "with space", "quo\"te", "é"] {
            let config = ChapConfig {
                session: Some(Chap::new("user", secret)),
                ..Default::default()
            };
            assert!(config.validate().is_err(), "{secret:?} accepted");
        }
        let ok = ChapConfig {
            session: Some(Chap::new("user", "Secret-1234_x.y")),
            mutual: Some(Chap::new("target", "Other+Secret=9")),
            ..Default::default()
        };
        ok.validate().unwrap();
        assert_eq!(ok.secrets(), ["Secret-1234_x.y", "Other+Secret=9"]);
    }
}
