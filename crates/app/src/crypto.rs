//! Secrets of the accounts: password hashes (Argon2id), random tokens, API-key and source-key
//! secrets (stored only as SHA-256).

use crate::error::{AppError, AppResult};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
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
