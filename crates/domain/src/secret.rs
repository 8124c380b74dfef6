//! Secrets at rest: XChaCha20-Poly1305 with a 32-byte key from configuration. A stored secret
//! is `base64(nonce || ciphertext)`; the clear secret is never logged or shown. The gateway
//! seals its channels' upstream keys with the platform's box; the payout bank account numbers
//! are sealed with a box under a key derived from it ([`SecretBox::derived`]), so finance's
//! export can read them while a copy of the database alone cannot.
//!
//! The same key also keys the identity hashes (issue 18 item 1): a resident ID number or a
//! phone is stored only as HMAC-SHA256 under a key derived from this one, so equal numbers
//! compare equal across replicas while a copy of the database alone cannot be searched for a
//! number (the 18-digit space of ID numbers is small enough to enumerate without the key).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 32 bytes, hex-encoded")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong key or damaged)")]
    Decrypt,
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    identity_key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_hex(key_hex: &str) -> Result<SecretBox, SecretError> {
        let bytes = decode_hex(key_hex.trim()).ok_or(SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(SecretBox::from_key(key))
    }

    pub fn from_key(key: [u8; 32]) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
            identity_key: derive(&key, "opchub identity hash v1"),
        }
    }

    /// A box under the key derived from `key` for `purpose` (HMAC-SHA256): what one purpose
    /// sealed, another's box does not open.
    pub fn derived(key: &[u8; 32], purpose: &str) -> SecretBox {
        SecretBox::from_key(derive(key, purpose))
    }

    pub fn generate_hex() -> String {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn seal(&self, clear: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self.cipher.encrypt(&nonce, clear.as_bytes()).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    /// The key of the identity hashes (issue 18 item 1), derived from this one: replicas
    /// sharing the secret key hash a resident ID number or a phone alike.
    pub fn identity_key(&self) -> [u8; 32] {
        self.identity_key
    }

    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let raw = B64.decode(sealed).map_err(|_| SecretError::Decrypt)?;
        if raw.len() < 24 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(24);
        let clear = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(clear).map_err(|_| SecretError::Decrypt)
    }
}

fn derive(key: &[u8; 32], label: &str) -> [u8; 32] {
    // HMAC pads a key shorter than its block with zeros: keying with the padded block is the same.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut m = <Hmac<Sha256> as KeyInit>::new(GenericArray::from_slice(&block));
    m.update(label.as_bytes());
    m.finalize().into_bytes().into()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key() {
        let k = SecretBox::from_hex(&SecretBox::generate_hex()).unwrap();
        let sealed = k.seal("sk-upstream-123");
        assert!(!sealed.contains("sk-upstream"));
        assert_ne!(sealed, k.seal("sk-upstream-123"), "random nonce");
        assert_eq!(k.open(&sealed).unwrap(), "sk-upstream-123");
        let other = SecretBox::from_hex(&SecretBox::generate_hex()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(SecretBox::from_hex("abcd").is_err());
    }

    #[test]
    fn a_derived_box_opens_only_what_it_sealed() {
        let key = [3u8; 32];
        let (bank, again) = (SecretBox::derived(&key, "bank"), SecretBox::derived(&key, "bank"));
        let sealed = bank.seal("6222020200012345678");
        assert_eq!(again.open(&sealed).unwrap(), "6222020200012345678", "replicas sharing a key agree");
        assert!(SecretBox::from_key(key).open(&sealed).is_err(), "the parent key does not open it");
        assert!(SecretBox::derived(&key, "other").open(&sealed).is_err());
    }

    #[test]
    fn the_identity_key_is_derived_from_the_secret_key_and_differs_from_it() {
        let hex = SecretBox::generate_hex();
        let (a, b) = (SecretBox::from_hex(&hex).unwrap(), SecretBox::from_hex(&hex).unwrap());
        assert_eq!(a.identity_key(), b.identity_key(), "replicas sharing a key agree");
        assert_ne!(decode_hex(&hex).unwrap(), a.identity_key().to_vec());
        let other = SecretBox::from_hex(&SecretBox::generate_hex()).unwrap();
        assert_ne!(a.identity_key(), other.identity_key());
    }
}
