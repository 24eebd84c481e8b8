//! User keys: generation, hashing and hints.
//!
//! A key is shown once, when it is created or rotated; only its SHA-256 (hex)
//! and a short hint are stored. `PlainKey` never prints its secret through
//! `Debug`, so a key cannot slip into a log by accident.

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use std::fmt;

/// Length of the random part of a generated key (after `sk-`), as OpenAI's.
const RANDOM_LEN: usize = 48;
const MAX_LEN: usize = 256;

/// A key in clear text, as a client presents it or as it is shown once.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

/// The raw SHA-256 digest of a key: what the in-memory key table is indexed by.
pub type KeyDigest = [u8; 32];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("a key must not be empty")]
    Empty,
    #[error("a key must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("a key must be printable ASCII without whitespace")]
    BadCharacter,
    #[error("a key must not start with `nk-` (NextChat takes such keys for its own access code)")]
    NextChatPrefix,
}

impl PlainKey {
    /// A new random key: `sk-` and 48 characters of [A-Za-z0-9].
    pub fn generate() -> Self {
        let random = Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN);
        PlainKey(format!("sk-{random}"))
    }

    /// A key chosen by the admin (`--token`, config `users:`, import).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        if s.is_empty() {
            return Err(KeyError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(KeyError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::BadCharacter);
        }
        if s.starts_with("nk-") {
            return Err(KeyError::NextChatPrefix);
        }
        Ok(PlainKey(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hashed(&self) -> HashedKey {
        HashedKey(hex::encode(digest(self.0.as_bytes())))
    }

    /// First 5 and last 4 characters (`sk-ab…wxyz`); short keys show less.
    pub fn hint(&self) -> String {
        let k = &self.0;
        if k.len() >= 16 {
            format!("{}…{}", &k[..5], &k[k.len() - 4..])
        } else {
            format!("{}…", &k[..k.len().min(2)])
        }
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainKey(<redacted>)")
    }
}

/// The stored form of a key: SHA-256, lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedKey(pub String);

impl HashedKey {
    /// The raw digest, for indexing the in-memory key table.
    pub fn digest(&self) -> Option<KeyDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.0, &mut out).ok()?;
        Some(out)
    }
}

/// Query parameters that carry a secret somewhere: a gateway key
/// (`token`), an upstream's key (`key`, `api-key`, Azure's
/// `subscription-key`), a password in a URL. Redacted when shown, never
/// forwarded upstream.
const SECRET_PARAMETERS: [&str; 11] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "api_key",
    "api-key",
    "apikey",
    "access_token",
    "subscription-key",
];

pub fn is_secret_parameter(name: &str) -> bool {
    SECRET_PARAMETERS
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

/// The hint of any secret (an upstream key): as `PlainKey::hint`, or `…`
/// for text that is not a key.
pub fn hint(secret: &str) -> String {
    PlainKey::parse(secret)
        .map(|p| p.hint())
        .unwrap_or_else(|_| "…".into())
}

/// Whether two secrets (an admin token, a CSRF token) are the same, in
/// constant time: both are hashed first, so neither their content nor
/// their length shows in the timing.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// SHA-256 of a presented key, computed on the request path.
pub fn digest(key: &[u8]) -> KeyDigest {
    Sha256::digest(key).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_look_like_openai_keys() {
        let k = PlainKey::generate();
        let s = k.expose();
        assert!(s.starts_with("sk-"));
        assert_eq!(s.len(), 3 + RANDOM_LEN);
        assert!(s[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(k, PlainKey::generate());
    }

    #[test]
    fn hash_is_sha256_hex_and_matches_digest() {
        let k = PlainKey::parse("abcd").unwrap();
        assert_eq!(
            k.hashed().0,
            "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589"
        );
        assert_eq!(k.hashed().digest().unwrap(), digest(b"abcd"));
    }

    #[test]
    fn secrets_are_the_same_only_when_equal() {
        assert!(same_secret("adm-token", "adm-token"));
        assert!(!same_secret("adm-token", "adm-tokem"));
        assert!(!same_secret("adm-token", "adm-token "));
        assert!(!same_secret("", "x"));
    }

    #[test]
    fn hint_shows_first_five_and_last_four() {
        let k = PlainKey::parse("sk-abcdefghijklmnopwxyz").unwrap();
        assert_eq!(k.hint(), "sk-ab…wxyz");
        assert_eq!(PlainKey::parse("abcd").unwrap().hint(), "ab…");
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let k = PlainKey::parse("sk-secret-value").unwrap();
        assert!(!format!("{k:?}").contains("secret"));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(PlainKey::parse(""), Err(KeyError::Empty));
        assert_eq!(PlainKey::parse("a b"), Err(KeyError::BadCharacter));
        assert_eq!(PlainKey::parse("nk-123"), Err(KeyError::NextChatPrefix));
        assert_eq!(PlainKey::parse(&"a".repeat(300)), Err(KeyError::TooLong));
    }
}
