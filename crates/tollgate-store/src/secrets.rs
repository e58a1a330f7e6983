//! Secrets at rest.
//!
//! - Secrets the gateway only has to *recognize* are kept as hashes: admin tokens and API keys
//!   as SHA-256 (they are long random strings, so a fast hash is enough), passwords as Argon2id
//!   PHC strings (people choose them, so the hash must be slow).
//! - Secrets the gateway must *use* (HMAC signing secrets, HS* JWT secrets, private keys) are
//!   encrypted with AES-256-GCM under a key that never enters the store: a 32-byte file in the
//!   node's data directory (or given by the operator), so a stolen database alone reveals
//!   nothing. Every node of a cluster needs the same key file.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::StoreError;

/// Prefix of ciphertexts made by this version of the scheme.
const CIPHER_PREFIX: &str = "v1:";

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` looks like [`sha256_hex`] output.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new random secret of `bytes` random bytes, URL-safe base64 without padding, with a prefix
/// (e.g. `tg_` for admin tokens) so that leaked ones are easy to recognize.
pub fn random_token(prefix: &str, bytes: usize) -> Result<String, StoreError> {
    let mut buf = vec![0_u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| StoreError::Secret("the system random generator failed".into()))?;
    Ok(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
    ))
}

/// Argon2id PHC string of a password.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0_u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StoreError::Secret("the system random generator failed".into()))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::Secret(format!("cannot encode a salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Secret(format!("cannot hash a password: {e}")))
}

/// Whether `password` matches an Argon2id PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// Whether `text` is a PHC string of an Argon2 hash.
pub fn is_password_hash(text: &str) -> bool {
    argon2::password_hash::PasswordHash::new(text)
        .is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

/// The key that encrypts secrets at rest.
pub struct SecretKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| StoreError::Secret("a secret key must be exactly 32 bytes".into()))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// A new random key (for a process that keeps nothing at rest, e.g. file mode).
    pub fn generate() -> Result<Self, StoreError> {
        let mut raw = [0_u8; 32];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| StoreError::Secret("the system random generator failed".into()))?;
        Self::from_bytes(&raw)
    }

    /// Reads the key file (32 bytes, or 44 characters of base64), creating it with a new
    /// random key, readable by the owner only, when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StoreError> {
        let io = |context: String| move |source| StoreError::Io { context, source };
        match std::fs::read(path) {
            Ok(bytes) => {
                let trimmed = String::from_utf8_lossy(&bytes).trim().to_owned();
                let raw = if bytes.len() == 32 {
                    bytes
                } else {
                    B64.decode(trimmed.as_bytes()).map_err(|_| {
                        StoreError::Secret(format!(
                            "secret key file {} must hold 32 bytes or their base64",
                            path.display()
                        ))
                    })?
                };
                Self::from_bytes(&raw)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut raw = [0_u8; 32];
                SystemRandom::new()
                    .fill(&mut raw)
                    .map_err(|_| StoreError::Secret("the system random generator failed".into()))?;
                write_private(path, B64.encode(raw).as_bytes()).map_err(io(format!(
                    "cannot write secret key file {}",
                    path.display()
                )))?;
                tracing::info!(path = %path.display(), "created a new key for secrets at rest");
                Self::from_bytes(&raw)
            }
            Err(e) => Err(io(format!(
                "cannot read secret key file {}",
                path.display()
            ))(e)),
        }
    }

    /// Encrypts `plain` as `v1:<base64(nonce ‖ ciphertext ‖ tag)>`.
    pub fn encrypt(&self, plain: &str) -> Result<String, StoreError> {
        let mut nonce = [0_u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| StoreError::Secret("the system random generator failed".into()))?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .map_err(|_| StoreError::Secret("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{CIPHER_PREFIX}{}", B64.encode(out)))
    }

    /// Decrypts what [`SecretKey::encrypt`] made.
    pub fn decrypt(&self, cipher: &str) -> Result<String, StoreError> {
        let bad = || {
            StoreError::Secret(
                "an encrypted secret cannot be decrypted with this node's key (wrong key file?)"
                    .into(),
            )
        };
        let raw = cipher
            .strip_prefix(CIPHER_PREFIX)
            .and_then(|b| B64.decode(b).ok())
            .ok_or_else(bad)?;
        if raw.len() < NONCE_LEN {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut sealed)
            .map_err(|_| bad())?;
        String::from_utf8(plain.to_vec()).map_err(|_| bad())
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_and_detects_the_wrong_key() {
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let c1 = key.encrypt("s3cret").unwrap();
        let c2 = key.encrypt("s3cret").unwrap();
        assert_ne!(c1, c2, "fresh nonce each time");
        assert!(!c1.contains("s3cret"));
        assert_eq!(key.decrypt(&c1).unwrap(), "s3cret");
        let other = SecretKey::from_bytes(&[8; 32]).unwrap();
        assert!(other.decrypt(&c1).is_err());
        assert!(key.decrypt("v1:!!").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("tollgate-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let _ = std::fs::remove_file(&path);
        let a = SecretKey::load_or_create(&path).unwrap();
        let cipher = a.encrypt("x").unwrap();
        let b = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(b.decrypt(&cipher).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashes() {
        assert!(is_sha256_hex(&sha256_hex("abc")));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let phc = hash_password("hunter2").unwrap();
        assert!(is_password_hash(&phc));
        assert!(verify_password("hunter2", &phc));
        assert!(!verify_password("hunter3", &phc));
        let t = random_token("tg_", 32).unwrap();
        assert!(t.starts_with("tg_") && t.len() > 40);
    }
}
