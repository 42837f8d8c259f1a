//! libiscsi's volume URL: `iscsi://[user[%password]@]host[:port]/target-iqn/lun`
//! with the query arguments `target_user`, `target_password` (mutual CHAP),
//! `header_digest` and `data_digest`. Also the portal-only form
//! `iscsi://host[:port]` used for discovery.

use std::fmt;
use std::str::FromStr;

use crate::core::config::{ChapConfig, ChapCredentials, DigestPreference, SessionConfig};
use crate::core::portal::Portal;
use crate::core::secret::Secret;

/// A parsed volume URL. Its `Debug` never shows the passwords (they are
/// [`Secret`]s) and its `Display` prints them as `***`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IscsiUrl {
    /// `host[:port]` (port 3260 when absent).
    pub portal: Portal,
    /// `None` for a portal-only URL.
    pub target: Option<String>,
    /// The LUN after the target (below 16384); `None` for a portal-only URL.
    pub lun: Option<u16>,
    /// Our CHAP name, from `user@`.
    pub user: Option<String>,
    /// Our CHAP secret, from `user%password@`; without it, [`IscsiUrl::chap`]
    /// takes the fallback secret.
    pub password: Option<Secret>,
    /// The target's CHAP name for mutual CHAP (`target_user=`).
    pub target_user: Option<String>,
    /// The target's CHAP secret for mutual CHAP (`target_password=`).
    pub target_password: Option<Secret>,
    /// `header_digest=none|crc32c|none_crc32c|crc32c_none` (libiscsi's
    /// values; the list forms name the preferred value first); `None` keeps
    /// the configuration's default (`none_crc32c`).
    pub header_digest: Option<DigestPreference>,
    /// `data_digest=`, with the same values as `header_digest`.
    pub data_digest: Option<DigestPreference>,
}

/// Why a URL is not usable. The message never echoes a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid iSCSI URL: {0}")]
pub struct UrlError(String);

impl IscsiUrl {
    /// CHAP settings from the URL, when it names a user. `fallback_secret` is
    /// used when the URL carries a user but no password (secret from a file or
    /// the environment).
    pub fn chap(&self, fallback_secret: Option<&Secret>) -> Result<Option<ChapConfig>, UrlError> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let secret = self
            .password
            .clone()
            .or_else(|| fallback_secret.cloned())
            .ok_or_else(|| UrlError(format!("user {user:?} given without a CHAP secret")))?;
        let initiator = ChapCredentials {
            username: user.clone(),
            secret,
        };
        let target = match (&self.target_user, &self.target_password) {
            (Some(u), Some(p)) => Some(ChapCredentials {
                username: u.clone(),
                secret: p.clone(),
            }),
            (None, None) => None,
            _ => {
                return Err(UrlError(
                    "target_user and target_password go together".into(),
                ));
            }
        };
        Ok(Some(ChapConfig {
            target,
            ..ChapConfig::one_way(initiator)
        }))
    }

    /// A session configuration for this volume's target.
    pub fn session_config(
        &self,
        initiator_name: &str,
        fallback_secret: Option<&Secret>,
    ) -> Result<SessionConfig, UrlError> {
        let target = self
            .target
            .clone()
            .ok_or_else(|| UrlError("the URL names no target".into()))?;
        let mut config = SessionConfig::new(self.portal.clone(), target, initiator_name);
        config.chap = self.chap(fallback_secret)?;
        self.apply_digests(&mut config);
        Ok(config)
    }

    /// Sets the digest offers the URL names on `config`, leaving the others
    /// at their values.
    pub fn apply_digests(&self, config: &mut SessionConfig) {
        if let Some(d) = self.header_digest {
            config.operational.header_digest = d;
        }
        if let Some(d) = self.data_digest {
            config.operational.data_digest = d;
        }
    }
}

/// libiscsi's values (`none`, `crc32c`, `none_crc32c`, `crc32c_none`), and
/// the same with a hyphen, which riscsi accepted first.
fn parse_digest(key: &str, v: &str) -> Result<DigestPreference, UrlError> {
    match v.to_ascii_lowercase().replace('-', "_").as_str() {
        "none" => Ok(DigestPreference::None),
        "crc32c" => Ok(DigestPreference::Crc32c),
        "none_crc32c" => Ok(DigestPreference::PreferNone),
        "crc32c_none" => Ok(DigestPreference::PreferCrc32c),
        _ => Err(UrlError(format!(
            "unknown {key} {v:?} (none, crc32c, none_crc32c or crc32c_none)"
        ))),
    }
}

impl FromStr for IscsiUrl {
    type Err = UrlError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let rest = input
            .strip_prefix("iscsi://")
            .ok_or_else(|| UrlError("must start with iscsi://".into()))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once('%') {
                Some((name, secret)) => (Some(name.to_owned()), Some(Secret::from(secret))),
                None => (Some(u.to_owned()), None),
            },
        };
        if matches!(&user, Some(u) if u.is_empty()) {
            return Err(UrlError("empty user name".into()));
        }
        let portal: Portal = hostport
            .parse()
            .map_err(|e: crate::core::portal::PortalParseError| UrlError(e.to_string()))?;
        let path = path.trim_end_matches('/');
        let (target, lun) = if path.is_empty() {
            (None, None)
        } else {
            let (target, lun) = path
                .rsplit_once('/')
                .ok_or_else(|| UrlError("expected /target-iqn/lun after the portal".into()))?;
            if target.is_empty() || target.contains('/') {
                return Err(UrlError(format!("bad target name {target:?}")));
            }
            let lun: u16 = lun
                .parse()
                .ok()
                .filter(|l| *l < 16384)
                .ok_or_else(|| UrlError(format!("bad LUN {lun:?}")))?;
            (Some(target.to_owned()), Some(lun))
        };
        let mut url = IscsiUrl {
            portal,
            target,
            lun,
            user,
            password,
            target_user: None,
            target_password: None,
            header_digest: None,
            data_digest: None,
        };
        for arg in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|a| !a.is_empty())
        {
            let (k, v) = arg.split_once('=').unwrap_or((arg, ""));
            match k {
                "target_user" => url.target_user = Some(v.to_owned()),
                "target_password" => url.target_password = Some(Secret::from(v)),
                "header_digest" => url.header_digest = Some(parse_digest(k, v)?),
                "data_digest" => url.data_digest = Some(parse_digest(k, v)?),
                other => return Err(UrlError(format!("unknown URL argument {other:?}"))),
            }
        }
        Ok(url)
    }
}

impl fmt::Display for IscsiUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("iscsi://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}")?;
            if self.password.is_some() {
                f.write_str("%***")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.portal)?;
        if let (Some(t), Some(l)) = (&self.target, self.lun) {
            write!(f, "/{t}/{l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url_with_mutual_chap() {
        let u: IscsiUrl = "iscsi://alice%s3cret-pass@10.0.0.1:3261/iqn.2026-11.test:vol/3?target_user=tgt&target_password=t4rget-pass&header_digest=crc32c"
            .parse()
            .unwrap();
        assert_eq!(u.portal, Portal::new("10.0.0.1", 3261));
        assert_eq!(u.target.as_deref(), Some("iqn.2026-11.test:vol"));
        assert_eq!(u.lun, Some(3));
        assert_eq!(u.header_digest, Some(DigestPreference::Crc32c));
        let chap = u.chap(None).unwrap().unwrap();
        assert_eq!(chap.initiator.username, "alice");
        assert_eq!(chap.initiator.secret.expose(), b"s3cret-pass");
        assert_eq!(chap.target.unwrap().secret.expose(), b"t4rget-pass");
        let shown = format!("{u} {u:?}");
        assert!(
            !shown.contains("s3cret-pass") && !shown.contains("t4rget-pass"),
            "{shown}"
        );
    }

    #[test]
    fn digest_values_as_libiscsi_spells_them() {
        for (text, expected) in [
            ("none", DigestPreference::None),
            ("crc32c", DigestPreference::Crc32c),
            ("CRC32C", DigestPreference::Crc32c),
            ("none_crc32c", DigestPreference::PreferNone),
            ("crc32c_none", DigestPreference::PreferCrc32c),
            ("none-crc32c", DigestPreference::PreferNone),
            ("crc32c-none", DigestPreference::PreferCrc32c),
        ] {
            let u: IscsiUrl =
                format!("iscsi://h/iqn.a:b/0?header_digest={text}&data_digest={text}")
                    .parse()
                    .unwrap();
            assert_eq!(u.header_digest, Some(expected), "{text}");
            assert_eq!(u.data_digest, Some(expected), "{text}");
            let cfg = u.session_config("iqn.i", None).unwrap();
            assert_eq!(cfg.operational.header_digest, expected);
            assert_eq!(cfg.operational.data_digest, expected);
        }
        // Only what the URL names changes; the default offers None,CRC32C.
        let u: IscsiUrl = "iscsi://h/iqn.a:b/0?data_digest=crc32c".parse().unwrap();
        let cfg = u.session_config("iqn.i", None).unwrap();
        assert_eq!(cfg.operational.header_digest, DigestPreference::PreferNone);
        assert_eq!(cfg.operational.data_digest, DigestPreference::Crc32c);
        let err = "iscsi://h/iqn.a:b/0?data_digest=md5"
            .parse::<IscsiUrl>()
            .unwrap_err();
        assert!(err.to_string().contains("data_digest \"md5\""), "{err}");
    }

    #[test]
    fn ipv6_and_defaults() {
        let u: IscsiUrl = "iscsi://[::1]/iqn.x:y/0".parse().unwrap();
        assert_eq!(u.portal, Portal::new("::1", 3260));
        assert_eq!(u.lun, Some(0));
        assert!(u.chap(None).unwrap().is_none());
        let p: IscsiUrl = "iscsi://127.0.0.2:3300".parse().unwrap();
        assert_eq!(p.target, None);
    }

    #[test]
    fn user_without_password_takes_the_fallback() {
        let u: IscsiUrl = "iscsi://bob@h/iqn.a:b/1".parse().unwrap();
        assert!(u.chap(None).is_err());
        let s = Secret::from("from-file-secret");
        assert_eq!(u.chap(Some(&s)).unwrap().unwrap().initiator.secret, s);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "http://h/iqn/1",
            "iscsi://h/iqn",
            "iscsi://h/iqn/x",
            "iscsi://h/iqn/99999",
            "iscsi://h/iqn/1?bogus=1",
            "iscsi://@h/iqn/1",
            "iscsi://h/iqn/1?header_digest=md5",
        ] {
            assert!(bad.parse::<IscsiUrl>().is_err(), "{bad} accepted");
        }
        let err = "iscsi://u%topsecret@h:notaport/i/1"
            .parse::<IscsiUrl>()
            .unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }
}
