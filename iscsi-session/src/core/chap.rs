//! CHAP (RFC 1994) as iSCSI uses it (RFC 7143 §12.1.3), with the digest
//! algorithms of the IANA PPP registry that targets implement: MD5 (5), SHA-1 (6)
//! and SHA-256 (7).

use md5::Md5;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::core::secret::Secret;

/// Longest challenge we accept from a target (RFC 7143 §12.1.3: 1024 bytes).
pub const MAX_CHALLENGE_LEN: usize = 1024;

/// Length of the challenges we send for mutual CHAP.
pub const OUR_CHALLENGE_LEN: usize = 32;

/// A CHAP_A algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChapAlgorithm {
    /// MD5 (CHAP_A 5): the one every target implements.
    Md5,
    /// SHA-1 (CHAP_A 6).
    Sha1,
    /// SHA-256 (CHAP_A 7).
    Sha256,
}

impl ChapAlgorithm {
    /// The CHAP_A number.
    pub fn code(self) -> u8 {
        match self {
            ChapAlgorithm::Md5 => 5,
            ChapAlgorithm::Sha1 => 6,
            ChapAlgorithm::Sha256 => 7,
        }
    }

    /// The algorithm of a CHAP_A number; `None` for one we do not implement.
    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            5 => Some(ChapAlgorithm::Md5),
            6 => Some(ChapAlgorithm::Sha1),
            7 => Some(ChapAlgorithm::Sha256),
            _ => None,
        }
    }

    /// The name, for logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            ChapAlgorithm::Md5 => "MD5",
            ChapAlgorithm::Sha1 => "SHA-1",
            ChapAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// CHAP response: H(identifier || secret || challenge).
    pub fn response(self, identifier: u8, secret: &Secret, challenge: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
            let mut h = D::new();
            h.update([id]);
            h.update(secret);
            h.update(challenge);
            h.finalize().to_vec()
        }
        match self {
            ChapAlgorithm::Md5 => run::<Md5>(identifier, secret.expose(), challenge),
            ChapAlgorithm::Sha1 => run::<Sha1>(identifier, secret.expose(), challenge),
            ChapAlgorithm::Sha256 => run::<Sha256>(identifier, secret.expose(), challenge),
        }
    }
}

/// The challenge we send the target in mutual CHAP, kept to check its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OurChallenge {
    /// CHAP_I: the identifier the target's response must hash.
    pub identifier: u8,
    /// CHAP_C: the random challenge, [`OUR_CHALLENGE_LEN`] bytes.
    pub challenge: Vec<u8>,
}

impl OurChallenge {
    /// Draws identifier and challenge from a CSPRNG.
    pub fn generate(rng: &mut dyn RngCore) -> Self {
        let mut challenge = vec![0u8; OUR_CHALLENGE_LEN];
        rng.fill_bytes(&mut challenge);
        let mut id = [0u8; 1];
        rng.fill_bytes(&mut id);
        OurChallenge {
            identifier: id[0],
            challenge,
        }
    }

    /// Checks the target's CHAP_R in constant time.
    pub fn verify(&self, algorithm: ChapAlgorithm, secret: &Secret, response: &[u8]) -> bool {
        let expected = algorithm.response(self.identifier, secret, &self.challenge);
        expected.len() == response.len()
            && expected
                .iter()
                .zip(response)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Encodes binary CHAP values the way every target parses: `0x` and hex.
pub fn to_hex_value(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    // Expected values computed independently with coreutils:
    // printf '\x01secret\x00\x01...\x0f' | md5sum / sha1sum / sha256sum
    #[test]
    fn responses_match_rfc1994_definition() {
        let challenge: Vec<u8> = (0u8..16).collect();
        let secret = Secret::from("secret");
        let hex = |alg: ChapAlgorithm| to_hex_value(&alg.response(1, &secret, &challenge));
        assert_eq!(
            hex(ChapAlgorithm::Md5),
            "0x740e86463bda3a4d7017d6e0fba0699d"
        );
        assert_eq!(
            hex(ChapAlgorithm::Sha1),
            "0x3890198f5112376188a9742805758384545583a6"
        );
        assert_eq!(
            hex(ChapAlgorithm::Sha256),
            "0x28b96c916cf784528bbfaa6ad7e012cab293437604aae8d66a3295b319132cef"
        );
    }

    #[test]
    fn our_challenge_verifies_only_the_right_answer() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ours = OurChallenge::generate(&mut rng);
        assert_eq!(ours.challenge.len(), OUR_CHALLENGE_LEN);
        let secret = Secret::from("target-secret");
        let good = ChapAlgorithm::Sha256.response(ours.identifier, &secret, &ours.challenge);
        assert!(ours.verify(ChapAlgorithm::Sha256, &secret, &good));
        assert!(!ours.verify(ChapAlgorithm::Md5, &secret, &good));
        assert!(!ours.verify(ChapAlgorithm::Sha256, &Secret::from("other"), &good));
        assert!(!ours.verify(ChapAlgorithm::Sha256, &secret, &good[..16]));
    }

    #[test]
    fn codes() {
        for alg in [
            ChapAlgorithm::Md5,
            ChapAlgorithm::Sha1,
            ChapAlgorithm::Sha256,
        ] {
            assert_eq!(ChapAlgorithm::from_code(u64::from(alg.code())), Some(alg));
        }
        assert_eq!(ChapAlgorithm::from_code(8), None);
    }
}
