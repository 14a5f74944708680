//! Key files on disk (feature `jwt`, step 5): the local RSA key pair in PEM, created on first
//! use, its JWK form, and signing tokens with it.
//!
//! Self-contained on purpose: it uses only std and crates (rsa, jsonwebtoken, base64, getrandom,
//! serde, thiserror) that `examples/generate_token.rs` also has as dev-dependencies. The example
//! compiles this very file with `#[path]`, so it mints dev tokens without `--features jwt` yet
//! reads, creates and signs with exactly the files the server uses, the same way.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::sha2::{Digest, Sha256};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use serde::Serialize;
use serde_json::{Value, json};

/// Size of generated keys, in bits.
pub const GENERATED_BITS: usize = 2048;
/// The smallest RSA modulus accepted from a file, in bits.
pub const MIN_BITS: usize = 2048;

/// Why key files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{} is not an RSA {kind} key in PEM (PKCS#8/SPKI or PKCS#1)", path.display())]
    Parse { path: PathBuf, kind: &'static str },
    #[error("{}: RSA keys need at least {MIN_BITS} bits, this one has {bits}", path.display())]
    TooSmall { path: PathBuf, bits: usize },
    #[error("public key file {} does not exist", .0.display())]
    MissingPublic(PathBuf),
    #[error("neither the private key {} nor a public key file exists", .0.display())]
    Missing(PathBuf),
    #[error("cannot generate an RSA key: {0}")]
    Generate(String),
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// An RSA public key with its RFC 7638 thumbprint, which serves as its `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublic {
    /// RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub kid: String,
    /// Modulus, big-endian, no leading zeros.
    pub n: Vec<u8>,
    /// Public exponent, big-endian, no leading zeros.
    pub e: Vec<u8>,
}

impl RsaPublic {
    fn from_key(key: &PublicKey) -> Self {
        let (n, e) = (key.n_bytes().into_vec(), key.e_bytes().into_vec());
        RsaPublic { kid: thumbprint(&n, &e), n, e }
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let first = self.n.first().copied().unwrap_or(0);
        self.n.len() * 8 - first.leading_zeros() as usize
    }

    /// The public JWK (RFC 7517): `kty`, `kid`, `use`, `alg`, `n`, `e` — never private members.
    pub fn jwk(&self, alg: &str) -> Value {
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": alg,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }
}

/// The RFC 7638 thumbprint of an RSA key: SHA-256 over `{"e":..,"kty":"RSA","n":..}` (required
/// members only, sorted, no whitespace), base64url without padding.
pub fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical =
        format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, URL_SAFE_NO_PAD.encode(e), URL_SAFE_NO_PAD.encode(n));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The private key, ready to sign.
pub struct Signer {
    public: RsaPublic,
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.public.kid).finish_non_exhaustive()
    }
}

impl Signer {
    fn new(private: &PrivateKey, path: &Path) -> Result<Self, KeyFileError> {
        let public = RsaPublic::from_key(private.as_public_key());
        if public.bits() < MIN_BITS {
            return Err(KeyFileError::TooSmall { path: path.to_owned(), bits: public.bits() });
        }
        let der = private.to_pkcs1_der().map_err(|_| KeyFileError::Parse { path: path.to_owned(), kind: "private" })?;
        Ok(Signer { public, key: EncodingKey::from_rsa_der(der.as_bytes()) })
    }

    /// The `kid` tokens signed by this key carry.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The public half.
    pub fn public(&self) -> &RsaPublic {
        &self.public
    }

    /// Signs `claims` as a compact JWS with header `{"alg", "typ": "at+jwt", "kid"}` (RFC 9068).
    pub fn sign(&self, alg: Algorithm, claims: &impl Serialize) -> Result<String, KeyFileError> {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.public.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| KeyFileError::Sign(e.to_string()))
    }
}

/// What [`load_or_generate`] found.
#[derive(Debug)]
pub struct KeyFiles {
    /// The private key, when its file exists.
    pub signer: Option<Signer>,
    /// The public keys of the public key files, in order.
    pub public: Vec<RsaPublic>,
    /// Whether this call created the key pair.
    pub generated: bool,
}

/// Loads the key files; when neither the private key nor any public key file exists, first
/// generates an RSA-2048 pair and writes the private key (mode 0600) and the first public key
/// file. A missing first public key file is derived from the private key. Files are created
/// atomically and never overwritten, so concurrent starters end up with the same pair.
pub fn load_or_generate(private: &Path, public: &[PathBuf]) -> Result<KeyFiles, KeyFileError> {
    load_files(private, public, true)
}

/// Reads the key pair without creating anything: a missing file is an error (`private` may be
/// absent when a public key file exists: a server that verifies and never signs).
pub fn load(private: &Path, public: &[PathBuf]) -> Result<KeyFiles, KeyFileError> {
    load_files(private, public, false)
}

fn load_files(private: &Path, public: &[PathBuf], create: bool) -> Result<KeyFiles, KeyFileError> {
    if !create && !private.exists() && !public.iter().any(|p| p.exists()) {
        return Err(KeyFileError::Missing(private.to_owned()));
    }
    let mut generated = false;
    if !private.exists() && !public.iter().any(|p| p.exists()) {
        let key = PrivateKey::new(&mut getrandom::SysRng, GENERATED_BITS)
            .map_err(|e| KeyFileError::Generate(e.to_string()))?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyFileError::Generate(format!("cannot encode the key: {e}")))?;
        generated = create_new(private, pem.as_bytes(), true)?;
    }
    let signer = if private.exists() { Some(read_private(private)?) } else { None };
    let mut keys = Vec::with_capacity(public.len());
    for (index, path) in public.iter().enumerate() {
        if !path.exists() {
            match &signer {
                Some((_, key)) if index == 0 && create => {
                    let pem = key
                        .to_public_key()
                        .to_public_key_pem(LineEnding::LF)
                        .map_err(|e| KeyFileError::Generate(format!("cannot encode the public key: {e}")))?;
                    create_new(path, pem.as_bytes(), false)?;
                }
                _ => return Err(KeyFileError::MissingPublic(path.clone())),
            }
        }
        keys.push(read_public(path)?);
    }
    Ok(KeyFiles { signer: signer.map(|(signer, _)| signer), public: keys, generated })
}

fn read_pem(path: &Path) -> Result<String, KeyFileError> {
    fs::read_to_string(path).map_err(|source| KeyFileError::Read { path: path.to_owned(), source })
}

fn read_private(path: &Path) -> Result<(Signer, PrivateKey), KeyFileError> {
    let pem = read_pem(path)?;
    let key = PrivateKey::from_pkcs8_pem(&pem)
        .or_else(|_| PrivateKey::from_pkcs1_pem(&pem))
        .map_err(|_| KeyFileError::Parse { path: path.to_owned(), kind: "private" })?;
    Ok((Signer::new(&key, path)?, key))
}

fn read_public(path: &Path) -> Result<RsaPublic, KeyFileError> {
    let pem = read_pem(path)?;
    let key = PublicKey::from_public_key_pem(&pem)
        .or_else(|_| PublicKey::from_pkcs1_pem(&pem))
        .map_err(|_| KeyFileError::Parse { path: path.to_owned(), kind: "public" })?;
    let public = RsaPublic::from_key(&key);
    if public.bits() < MIN_BITS {
        return Err(KeyFileError::TooSmall { path: path.to_owned(), bits: public.bits() });
    }
    Ok(public)
}

/// Writes `contents` to a new file at `path` (never replacing one): a temporary file in the same
/// directory, hard-linked into place. Returns `false` when someone else created `path` first.
fn create_new(path: &Path, contents: &[u8], secret: bool) -> Result<bool, KeyFileError> {
    let write_err = |source| KeyFileError::Write { path: path.to_owned(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_err)?;
    }
    // Unique per process and call, so concurrent creators never share a temporary file.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".{}-{nanos}.tmp", std::process::id()));
    let temp = PathBuf::from(temp);
    let written = open_new(&temp, secret).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let linked = written.and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(write_err(err)),
    }
}

/// Creates a file that must not exist yet; a secret one is readable by its owner only.
#[cfg(unix)]
fn open_new(path: &Path, secret: bool) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).mode(if secret { 0o600 } else { 0o644 }).open(path)
}

/// Creates a file that must not exist yet (no Unix permissions to set on this platform).
#[cfg(not(unix))]
fn open_new(path: &Path, _secret: bool) -> io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create_new(true).open(path)
}
