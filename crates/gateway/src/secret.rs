//! Channel secrets at rest: XChaCha20-Poly1305 with a 32-byte key from configuration. A
//! stored secret is `base64(nonce || ciphertext)`; the clear secret is never logged or shown.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

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
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_hex(key_hex: &str) -> Result<SecretBox, SecretError> {
        let bytes = decode_hex(key_hex.trim()).ok_or(SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(SecretBox {
            cipher: XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?,
        })
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
}
