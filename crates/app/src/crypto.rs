//! Secrets of the accounts: password hashes (Argon2id), random tokens, API-key and source-key
//! secrets (stored only as SHA-256).

use crate::error::{AppError, AppResult};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AppError::internal())
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

pub fn random_token(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A fresh API key secret: `opk_` + 48 hex characters. Returns (secret, display prefix, hash).
pub fn new_api_key() -> (String, String, String) {
    let secret = format!("opk_{}", random_token(24));
    let prefix = secret[..12].to_string();
    let hash = sha256_hex(&secret);
    (secret, prefix, hash)
}

/// A fresh ledger source key secret (`ols_…`) and its hash.
pub fn new_source_key() -> (String, String) {
    let secret = format!("ols_{}", random_token(24));
    let hash = sha256_hex(&secret);
    (secret, hash)
}

/// The key of the identity hashes (issue 18 item 1): a resident ID number or a phone is kept
/// only as HMAC-SHA256 under it, so equal numbers compare equal while a copy of the database
/// alone cannot be searched for a number (ID numbers are few enough to enumerate). `serve`
/// derives it from the platform's secret key, which replicas share.
#[derive(Clone)]
pub struct IdentityKey([u8; 32]);

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityKey(..)")
    }
}

impl IdentityKey {
    pub fn new(key: [u8; 32]) -> IdentityKey {
        IdentityKey(key)
    }

    /// The keyed hash of `value` of kind `kind` (`person`, `phone`), hex.
    pub fn hash(&self, kind: &str, value: &str) -> String {
        // HMAC pads a key shorter than the block with zeros: the same as keying with 32 bytes.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let mut m = <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(&block));
        m.update(kind.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }
}

#[cfg(test)]
mod identity_tests {
    #![allow(clippy::unwrap_used)]
    use super::IdentityKey;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    #[test]
    fn the_padded_key_is_the_standard_hmac_of_the_32_byte_key() {
        let mut m = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
        m.update(b"person\0x");
        assert_eq!(
            IdentityKey::new([7; 32]).hash("person", "x"),
            hex::encode(m.finalize().into_bytes())
        );
    }

    #[test]
    fn identity_hashes_are_keyed_and_per_kind() {
        let (a, b) = (IdentityKey::new([7; 32]), IdentityKey::new([7; 32]));
        let h = a.hash("person", "11010519491231002X");
        assert_eq!(h, b.hash("person", "11010519491231002X"));
        assert_eq!(h.len(), 64);
        assert!(!h.contains("1101051949"));
        assert_ne!(h, a.hash("phone", "11010519491231002X"));
        assert_ne!(h, IdentityKey::new([8; 32]).hash("person", "11010519491231002X"));
    }
}
