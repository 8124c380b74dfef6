//! The platform's Ed25519 ledger key and what it signs: C2SP tlog-checkpoint notes (the body is
//! built and parsed by `tlog_tiles`, signed and verified as C2SP signed notes by `signed_note`)
//! and domain-separated signatures over receipt bytes.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use rand::rngs::OsRng;
use signed_note::{Note, NoteError, StandardVerifier, Verifier as _, VerifierList};
use tlog_tiles::{tlog, Checkpoint};

use crate::merkle::Hash;

/// The signed-note algorithm byte for Ed25519 keys.
const ALG_ED25519: u8 = 1;

/// Prefix of every message [`LedgerKey::sign_bytes`] signs. It contains a NUL byte, which a
/// signed-note text can never contain, so a receipt signature can never pass as a checkpoint
/// signature (or the reverse). External verifiers must verify `RECEIPT_SIGNATURE_CONTEXT || msg`.
pub const RECEIPT_SIGNATURE_CONTEXT: &[u8] = b"opchub-receipt-v1\0";

/// Errors of key handling, checkpoint signing and verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CheckpointError {
    /// The signed-note key name is empty or contains whitespace or `+`.
    #[error("invalid key name {0:?}: it must be non-empty and contain no whitespace or '+'")]
    InvalidKeyName(String),
    /// The seed is not 64 hex digits.
    #[error("invalid ledger key seed: expected 64 hex digits (32 bytes)")]
    InvalidSeed,
    /// The verifier key is not a well-formed Ed25519 signed-note verifier key.
    #[error("malformed verifier key (expected <name>+<key id hex>+<base64 key>)")]
    InvalidVerifierKey,
    /// The checkpoint origin is empty or not a single line of text.
    #[error("invalid checkpoint origin {0:?}: it must be one non-empty line without control characters")]
    InvalidOrigin(String),
    /// The input is not a well-formed signed note.
    #[error("malformed signed note")]
    MalformedNote,
    /// The note text is not a well-formed C2SP checkpoint.
    #[error("the signed note is not a well-formed checkpoint")]
    MalformedCheckpoint,
    /// The note has no signature by the expected key.
    #[error("the note has no signature by key {0}")]
    NotSigned(String),
    /// A signature by the expected key is present but does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Producing a signature failed.
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The platform's Ed25519 ledger key; `name` is the signed-note key name (e.g. "opchub.ledger").
#[derive(Clone)]
pub struct LedgerKey {
    name: String,
    key: SigningKey,
    key_id: u32,
}

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerKey")
            .field("verifier_key", &self.verifier_key())
            .finish_non_exhaustive()
    }
}

impl LedgerKey {
    fn from_signing_key(name: &str, key: SigningKey) -> LedgerKey {
        let key_id = signed_note::key_id(name, &encoded_public_key(&key));
        LedgerKey {
            name: name.to_owned(),
            key,
            key_id,
        }
    }

    /// A fresh random key from the OS RNG. The name is checked when signing a checkpoint.
    pub fn generate(name: &str) -> LedgerKey {
        Self::from_signing_key(name, SigningKey::generate(&mut OsRng))
    }

    /// The key with this 32-byte Ed25519 seed, given as 64 hex digits.
    pub fn from_seed_hex(name: &str, seed_hex: &str) -> Result<LedgerKey, CheckpointError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(CheckpointError::InvalidKeyName(name.to_owned()));
        }
        let seed: [u8; 32] = hex::decode(seed_hex.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(CheckpointError::InvalidSeed)?;
        Ok(Self::from_signing_key(name, SigningKey::from_bytes(&seed)))
    }

    /// The 32-byte seed as 64 lowercase hex digits. Secret.
    pub fn seed_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The signed-note key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public verifier key in signed-note vkey format: `<name>+<key id hex>+<base64(0x01 || pubkey)>`.
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.key.verifying_key())
    }

    /// A C2SP tlog-checkpoint signed note: body "<origin>\n<size>\n<base64 root>\n", a blank
    /// line, then the signature line "— <name> <base64(key id || signature)>\n".
    pub fn sign_checkpoint(&self, origin: &str, size: u64, root: &Hash) -> Result<String, CheckpointError> {
        if !signed_note::is_key_name_valid(&self.name) {
            return Err(CheckpointError::InvalidKeyName(self.name.clone()));
        }
        if origin.chars().any(char::is_control) {
            return Err(CheckpointError::InvalidOrigin(origin.to_owned()));
        }
        let body = Checkpoint::new(origin, size, tlog::Hash(*root), "").map_err(|_| CheckpointError::InvalidOrigin(origin.to_owned()))?;
        let mut note = Note::new(&body.to_bytes(), &[]).map_err(|_| CheckpointError::InvalidOrigin(origin.to_owned()))?;
        note.add_sigs(&[&NoteSigner(self)])
            .map_err(|e| CheckpointError::Signing(e.to_string()))?;
        String::from_utf8(note.to_bytes()).map_err(|e| CheckpointError::Signing(e.to_string()))
    }

    /// An Ed25519 signature (standard base64) over `RECEIPT_SIGNATURE_CONTEXT || msg`; check it
    /// with [`verify_bytes`].
    pub fn sign_bytes(&self, msg: &[u8]) -> String {
        BASE64.encode(self.key.sign(&receipt_message(msg)).to_bytes())
    }
}

/// `0x01 || public key`, the signed-note encoding of an Ed25519 public key.
fn encoded_public_key(key: &SigningKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(33);
    out.push(ALG_ED25519);
    out.extend_from_slice(key.verifying_key().as_bytes());
    out
}

fn receipt_message(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECEIPT_SIGNATURE_CONTEXT.len() + msg.len());
    out.extend_from_slice(RECEIPT_SIGNATURE_CONTEXT);
    out.extend_from_slice(msg);
    out
}

/// Adapts a [`LedgerKey`] to `signed_note::Signer`.
struct NoteSigner<'a>(&'a LedgerKey);

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn key_id(&self) -> u32 {
        self.0.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.0.key.try_sign(msg)?.to_vec())
    }
}

fn parse_verifier(verifier_key: &str) -> Result<StandardVerifier, CheckpointError> {
    StandardVerifier::new(verifier_key.trim()).map_err(|_| CheckpointError::InvalidVerifierKey)
}

/// Checks a [`LedgerKey::sign_bytes`] signature over `msg` against a signed-note verifier key.
pub fn verify_bytes(verifier_key: &str, msg: &[u8], sig_b64: &str) -> Result<(), CheckpointError> {
    let verifier = parse_verifier(verifier_key)?;
    let sig = BASE64.decode(sig_b64.trim()).map_err(|_| CheckpointError::BadSignature)?;
    if verifier.verify(&receipt_message(msg), &sig) {
        Ok(())
    } else {
        Err(CheckpointError::BadSignature)
    }
}

/// A checkpoint whose signature has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Parses and verifies a signed checkpoint note with the verifier key; any change to body or
/// signature fails. Signatures by other keys are ignored; extension lines (signed, per C2SP) are
/// accepted and not returned.
pub fn verify_checkpoint(note: &str, verifier_key: &str) -> Result<VerifiedCheckpoint, CheckpointError> {
    let verifier = parse_verifier(verifier_key)?;
    let key_label = format!("{}+{:08x}", signed_note::Verifier::name(&verifier), verifier.key_id());
    let note = Note::from_bytes(note.as_bytes()).map_err(|_| CheckpointError::MalformedNote)?;
    match note.verify(&VerifierList::new(vec![Box::new(verifier)])) {
        Ok(_) => {}
        Err(NoteError::InvalidSignature { .. }) => return Err(CheckpointError::BadSignature),
        Err(NoteError::UnverifiedNote) => return Err(CheckpointError::NotSigned(key_label)),
        Err(_) => return Err(CheckpointError::MalformedNote),
    }
    let checkpoint = Checkpoint::from_bytes(note.text()).map_err(|_| CheckpointError::MalformedCheckpoint)?;
    Ok(VerifiedCheckpoint {
        origin: checkpoint.origin().to_owned(),
        size: checkpoint.size(),
        root: checkpoint.hash().0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    const ORIGIN: &str = "opchub.example/ledger";

    fn key() -> LedgerKey {
        LedgerKey::from_seed_hex("opchub.ledger", &"07".repeat(32)).unwrap()
    }

    #[test]
    fn checkpoint_round_trip_and_format() {
        let k = key();
        let root = leaf_hash(b"root");
        let note = k.sign_checkpoint(ORIGIN, 42, &root).unwrap();
        let body = format!("{ORIGIN}\n42\n{}\n\n", BASE64.encode(root));
        assert!(note.starts_with(&body), "{note}");
        let sig_line = &note[body.len()..];
        assert!(sig_line.starts_with("— opchub.ledger ") && sig_line.ends_with('\n'), "{sig_line}");
        assert_eq!(sig_line.matches('\n').count(), 1);

        let v = verify_checkpoint(&note, &k.verifier_key()).unwrap();
        assert_eq!(
            v,
            VerifiedCheckpoint {
                origin: ORIGIN.into(),
                size: 42,
                root
            }
        );
        // Ed25519 is deterministic.
        assert_eq!(note, k.sign_checkpoint(ORIGIN, 42, &root).unwrap());
        // The empty tree is a valid checkpoint too.
        let empty = k.sign_checkpoint(ORIGIN, 0, &crate::merkle::EMPTY_ROOT).unwrap();
        assert_eq!(verify_checkpoint(&empty, &k.verifier_key()).unwrap().size, 0);
    }

    #[test]
    fn modified_body_fails() {
        let k = key();
        let vkey = k.verifier_key();
        let root = leaf_hash(b"root");
        let note = k.sign_checkpoint(ORIGIN, 42, &root).unwrap();
        let tampered = [
            note.replacen("\n42\n", "\n43\n", 1),
            note.replacen(ORIGIN, "opchub.example/ledgex", 1),
            note.replacen(&BASE64.encode(root), &BASE64.encode(leaf_hash(b"other")), 1),
            note.replacen("\n42\n", "\n042\n", 1),
        ];
        for t in &tampered {
            assert_ne!(t, &note);
            assert!(verify_checkpoint(t, &vkey).is_err(), "{t}");
        }
        assert_eq!(verify_checkpoint(&tampered[0], &vkey), Err(CheckpointError::BadSignature));
        // Every single-bit change of the root breaks it.
        for bit in 0..256 {
            let mut r = root;
            r[bit / 8] ^= 1 << (bit % 8);
            let t = note.replacen(&BASE64.encode(root), &BASE64.encode(r), 1);
            assert_eq!(verify_checkpoint(&t, &vkey), Err(CheckpointError::BadSignature));
        }
    }

    #[test]
    fn modified_signature_fails() {
        let k = key();
        let vkey = k.verifier_key();
        let note = k.sign_checkpoint(ORIGIN, 7, &leaf_hash(b"x")).unwrap();
        let (body, line) = note.rsplit_once("— opchub.ledger ").unwrap();
        let sig = BASE64.decode(line.trim_end()).unwrap();
        assert_eq!(sig.len(), 4 + 64);
        for byte in 0..sig.len() {
            for bit in 0..8 {
                let mut bad = sig.clone();
                bad[byte] ^= 1 << bit;
                let t = format!("{body}— opchub.ledger {}\n", BASE64.encode(&bad));
                let err = verify_checkpoint(&t, &vkey).unwrap_err();
                if byte < 4 {
                    // The key id changed: no signature by our key remains.
                    assert!(matches!(err, CheckpointError::NotSigned(_)), "{err}");
                } else {
                    assert_eq!(err, CheckpointError::BadSignature);
                }
            }
        }
        // Stripped or garbled signature lines.
        assert_eq!(verify_checkpoint(body, &vkey), Err(CheckpointError::MalformedNote));
        assert_eq!(
            verify_checkpoint(&format!("{body}— opchub.ledger !!!\n"), &vkey),
            Err(CheckpointError::MalformedNote)
        );
    }

    #[test]
    fn different_key_fails() {
        let k = key();
        let note = k.sign_checkpoint(ORIGIN, 1, &leaf_hash(b"x")).unwrap();
        let same_name = LedgerKey::generate("opchub.ledger");
        assert!(matches!(
            verify_checkpoint(&note, &same_name.verifier_key()),
            Err(CheckpointError::NotSigned(_))
        ));
        let other_name = LedgerKey::from_seed_hex("someone.else", &k.seed_hex()).unwrap();
        assert!(matches!(
            verify_checkpoint(&note, &other_name.verifier_key()),
            Err(CheckpointError::NotSigned(_))
        ));
        // A note signed by another key as well still verifies with ours.
        let other_note = same_name.sign_checkpoint(ORIGIN, 1, &leaf_hash(b"x")).unwrap();
        let extra_sig = other_note.rsplit_once("\n\n").unwrap().1;
        let both = format!("{note}{extra_sig}");
        assert_eq!(verify_checkpoint(&both, &k.verifier_key()).unwrap().size, 1);
        assert_eq!(verify_checkpoint(&both, &same_name.verifier_key()).unwrap().size, 1);
    }

    #[test]
    fn keys_round_trip_and_match_the_go_note_reference() {
        let k = LedgerKey::generate("opchub.ledger");
        let again = LedgerKey::from_seed_hex("opchub.ledger", &k.seed_hex()).unwrap();
        assert_eq!(k.verifier_key(), again.verifier_key());
        assert_eq!(k.name(), "opchub.ledger");
        assert!(!format!("{k:?}").contains(&k.seed_hex()));

        // golang.org/x/mod/sumdb/note documentation key pair.
        let skey_data = BASE64.decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
        let peter = LedgerKey::from_seed_hex("PeterNeumann", &hex::encode(&skey_data[1..])).unwrap();
        assert_eq!(
            peter.verifier_key(),
            "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        );

        assert_eq!(
            LedgerKey::from_seed_hex("a b", &"00".repeat(32)).unwrap_err(),
            CheckpointError::InvalidKeyName("a b".into())
        );
        assert_eq!(
            LedgerKey::from_seed_hex("a+b", &"00".repeat(32)).unwrap_err(),
            CheckpointError::InvalidKeyName("a+b".into())
        );
        assert_eq!(
            LedgerKey::from_seed_hex("a", &"00".repeat(31)).unwrap_err(),
            CheckpointError::InvalidSeed
        );
        assert_eq!(LedgerKey::from_seed_hex("a", "zz").unwrap_err(), CheckpointError::InvalidSeed);
        let bad_name = LedgerKey::generate("has space");
        assert!(matches!(
            bad_name.sign_checkpoint(ORIGIN, 1, &[0; 32]),
            Err(CheckpointError::InvalidKeyName(_))
        ));
    }

    #[test]
    fn bad_inputs() {
        let k = key();
        assert!(matches!(k.sign_checkpoint("", 1, &[0; 32]), Err(CheckpointError::InvalidOrigin(_))));
        assert!(matches!(
            k.sign_checkpoint("a\nb", 1, &[0; 32]),
            Err(CheckpointError::InvalidOrigin(_))
        ));
        assert!(matches!(
            k.sign_checkpoint("a\tb", 1, &[0; 32]),
            Err(CheckpointError::InvalidOrigin(_))
        ));
        let note = k.sign_checkpoint(ORIGIN, 1, &[0; 32]).unwrap();
        assert_eq!(verify_checkpoint(&note, "garbage"), Err(CheckpointError::InvalidVerifierKey));
        assert_eq!(
            verify_checkpoint("not a note", &k.verifier_key()),
            Err(CheckpointError::MalformedNote)
        );
        // A validly signed note whose text is not a checkpoint.
        let mut n = Note::new(b"hello\n", &[]).unwrap();
        n.add_sigs(&[&NoteSigner(&k)]).unwrap();
        let text = String::from_utf8(n.to_bytes()).unwrap();
        assert_eq!(
            verify_checkpoint(&text, &k.verifier_key()),
            Err(CheckpointError::MalformedCheckpoint)
        );
    }

    #[test]
    fn receipt_signatures() {
        let k = key();
        let vkey = k.verifier_key();
        let msg = br#"{"receipt":1}"#;
        let sig = k.sign_bytes(msg);
        verify_bytes(&vkey, msg, &sig).unwrap();
        assert_eq!(verify_bytes(&vkey, br#"{"receipt":2}"#, &sig), Err(CheckpointError::BadSignature));
        assert_eq!(
            verify_bytes(&LedgerKey::generate("opchub.ledger").verifier_key(), msg, &sig),
            Err(CheckpointError::BadSignature)
        );
        assert_eq!(verify_bytes(&vkey, msg, "not base64!"), Err(CheckpointError::BadSignature));
        assert_eq!(verify_bytes("nope", msg, &sig), Err(CheckpointError::InvalidVerifierKey));
        let mut raw = BASE64.decode(&sig).unwrap();
        raw[10] ^= 1;
        assert_eq!(verify_bytes(&vkey, msg, &BASE64.encode(raw)), Err(CheckpointError::BadSignature));
        // Domain separation: a receipt signature over checkpoint text is not a checkpoint signature.
        let note = k.sign_checkpoint(ORIGIN, 1, &[0; 32]).unwrap();
        let (text, _) = note.split_once("\n\n").unwrap();
        let text = format!("{text}\n");
        let forged_sig = BASE64.decode(k.sign_bytes(text.as_bytes())).unwrap();
        let mut id_and_sig = k.key_id.to_be_bytes().to_vec();
        id_and_sig.extend_from_slice(&forged_sig);
        let forged = format!("{text}\n— opchub.ledger {}\n", BASE64.encode(id_and_sig));
        assert_eq!(verify_checkpoint(&forged, &vkey), Err(CheckpointError::BadSignature));
    }
}
