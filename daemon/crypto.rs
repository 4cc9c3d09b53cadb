//! Secrets at rest: the master key, AES-256-GCM sealing, and the redacting [`Secret`] type.
//!
//! Every sealed value has a fresh random 96-bit nonce and binds the owning record's id as
//! associated data, so a ciphertext copied onto another record fails to open.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Generate, Key, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const NONCE_LEN: usize = 12;
/// Environment variable that may carry the master key (base64 or hex of 32 bytes).
pub const MASTER_KEY_ENV: &str = "FLUXD_MASTER_KEY";
/// Name of the systemd credential (and of the key file in the data dir).
pub const MASTER_KEY_FILE: &str = "master.key";

/// Errors of key loading and sealing.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key from {source_name} is not 32 bytes of base64 or hex")]
    MalformedKey { source_name: String },
    #[error(
        "{path} is missing but the data dir holds a database sealed with it: restore the key file (or set FLUXD_MASTER_KEY); a new key would make every secret unreadable"
    )]
    KeyMissing { path: std::path::PathBuf },
    #[error("cannot read or write the master key at {path}: {error}")]
    KeyFile { path: PathBuf, error: std::io::Error },
    #[error("a sealed value for {owner} could not be decrypted (wrong master key or tampered data)")]
    Open { owner: String },
    #[error("sealed value for {owner} is truncated")]
    Truncated { owner: String },
    #[error("encryption failed")]
    Seal,
}

/// A secret string: zeroized on drop, `[redacted]` in `Debug` and `Display`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The plaintext; call only where the value must leave the process (HTTP auth, HMAC keys).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the master key came from; `rotate-key` writes the new key back to the same place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    Credential(PathBuf),
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Environment => f.write_str(MASTER_KEY_ENV),
            KeySource::Credential(path) => write!(f, "systemd credential {}", path.display()),
            KeySource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// The 256-bit key that seals every secret in the store.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let key = Key::<Aes256Gcm>::generate();
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(key.as_slice());
        Self::from_bytes(bytes)
    }

    fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*bytes));
        MasterKey { cipher, bytes }
    }

    /// Parses base64 (standard or URL-safe) or hex text of exactly 32 bytes.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, CryptoError> {
        let text = Zeroizing::new(text.trim().to_owned());
        let decoded = Zeroizing::new(
            hex::decode(text.as_bytes())
                .ok()
                .or_else(|| base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).ok())
                .or_else(|| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(text.as_bytes())
                        .ok()
                })
                .unwrap_or_default(),
        );
        let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| CryptoError::MalformedKey {
            source_name: source_name.to_owned(),
        })?;
        Ok(Self::from_bytes(Zeroizing::new(bytes)))
    }

    /// The key as base64 text, for writing it to its file.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.bytes))
    }

    /// Loads the key from `FLUXD_MASTER_KEY`, the systemd credential `master.key`, or
    /// `<data_dir>/master.key`, creating the file (mode 0600) on first start only: when
    /// `store_exists`, a missing key is an error, never replaced by a new one.
    pub fn load_or_create(data_dir: &Path, store_exists: bool) -> Result<(Self, KeySource), CryptoError> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Ok((Self::parse(&text, MASTER_KEY_ENV)?, KeySource::Environment));
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(MASTER_KEY_FILE);
            if path.exists() {
                let key = read_key_file(&path)?;
                return Ok((key, KeySource::Credential(path)));
            }
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        if path.exists() {
            return Ok((read_key_file(&path)?, KeySource::File(path)));
        }
        if store_exists {
            return Err(CryptoError::KeyMissing { path });
        }
        let key = Self::generate();
        write_private_file(&path, key.to_text().as_bytes()).map_err(|error| CryptoError::KeyFile {
            path: path.clone(),
            error,
        })?;
        Ok((key, KeySource::File(path)))
    }

    /// Encrypts `plaintext` for the record `owner` (used as associated data).
    /// Layout: nonce (12 bytes) || ciphertext+tag.
    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce = Nonce::generate();
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts a value sealed by [`MasterKey::seal`] for the same `owner`.
    pub fn open(&self, owner: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Truncated {
                owner: owner.to_owned(),
            });
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Truncated {
            owner: owner.to_owned(),
        })?;
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open {
                owner: owner.to_owned(),
            })
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, CryptoError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|error| CryptoError::KeyFile {
        path: path.to_owned(),
        error,
    })?);
    MasterKey::parse(&text, &path.display().to_string())
}

/// Writes `contents` to `path` with mode 0600 via a temporary file and a rename.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_owner_and_key() {
        let key = MasterKey::generate();
        let sealed = key.seal("conn_1", b"refresh-token").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"refresh"));
        assert_eq!(&key.open("conn_1", &sealed).unwrap()[..], b"refresh-token");
        assert!(matches!(key.open("conn_2", &sealed), Err(CryptoError::Open { .. })));
        assert!(MasterKey::generate().open("conn_1", &sealed).is_err());
        assert!(key.open("conn_1", &sealed[..5]).is_err());
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = MasterKey::generate();
        assert_ne!(key.seal("a", b"x").unwrap(), key.seal("a", b"x").unwrap());
    }

    #[test]
    fn key_text_round_trips_and_bad_text_is_refused() {
        let key = MasterKey::generate();
        let again = MasterKey::parse(&key.to_text(), "test").unwrap();
        let sealed = key.seal("o", b"v").unwrap();
        assert_eq!(&again.open("o", &sealed).unwrap()[..], b"v");
        assert!(MasterKey::parse("short", "test").is_err());
        assert!(MasterKey::parse(&hex::encode([7u8; 32]), "test").is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(format!("{:?}", MasterKey::generate()), "MasterKey([redacted])");
    }
}
