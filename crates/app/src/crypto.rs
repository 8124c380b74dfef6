//! Secrets of the accounts: password hashes (Argon2id), random tokens, API-key and source-key
//! secrets (stored only as SHA-256).

use crate::error::{AppError, AppResult};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use opchub_domain::secret::SecretBox;
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
///
/// It also holds the box the payout bank account numbers are sealed with: a number is kept
/// sealed (for finance's export), as its keyed hash (to compare) and as its last four digits
/// (to show), never in clear.
#[derive(Clone)]
pub struct IdentityKey {
    key: [u8; 32],
    bank: SecretBox,
}

/// A payout account number as the platform keeps it (issue 18 item 1).
pub struct SealedNumber {
    pub sealed: String,
    pub hash: String,
    pub tail: String,
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityKey(..)")
    }
}

impl IdentityKey {
    pub fn new(key: [u8; 32]) -> IdentityKey {
        IdentityKey {
            key,
            bank: SecretBox::derived(&key, "opchub payout account seal v1"),
        }
    }

    /// A payout account number (digits only) sealed, hashed (`bank_account`) and cut to its tail.
    pub fn seal_bank_number(&self, number: &str) -> SealedNumber {
        let tail: String = number.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        SealedNumber {
            sealed: self.bank.seal(number),
            hash: self.hash("bank_account", number),
            tail,
        }
    }

    /// The number a [`SealedNumber::sealed`] holds; `None` under another key or when damaged.
    pub fn open_bank_number(&self, sealed: &str) -> Option<String> {
        self.bank.open(sealed).ok()
    }

    /// The keyed hash of `value` of kind `kind` (`person`, `phone`), hex.
    pub fn hash(&self, kind: &str, value: &str) -> String {
        // HMAC pads a key shorter than the block with zeros: the same as keying with 32 bytes.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.key);
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

    #[test]
    fn a_payout_number_is_kept_sealed_hashed_and_as_its_tail_only() {
        let k = IdentityKey::new([7; 32]);
        let n = k.seal_bank_number("6222020200012345678");
        assert!(!n.sealed.contains("62220202") && !n.hash.contains("62220202"));
        assert_eq!(n.tail, "5678");
        assert_eq!(
            n.hash,
            k.seal_bank_number("6222020200012345678").hash,
            "equal numbers compare equal"
        );
        assert_ne!(
            n.sealed,
            k.seal_bank_number("6222020200012345678").sealed,
            "a fresh nonce each time"
        );
        assert_eq!(k.open_bank_number(&n.sealed).as_deref(), Some("6222020200012345678"));
        assert_eq!(IdentityKey::new([8; 32]).open_bank_number(&n.sealed), None);
    }
}
