//! Verification keys, parsed once (feature `jwt`, step 5): a [`KeySet`] of [`VerifyingKey`]s
//! looked up by `kid`, built from local PEM files ([`LocalKeys`]) or from a JWKS document, and
//! published as a JWKS.
//!
//! Each key holds an aws-lc `ParsedPublicKey` per algorithm it may verify, built when the key
//! set is built, so verifying a token is the signature operation alone: no key parsing on the
//! request path. (jsonwebtoken's `decode` rebuilds the backend key from the `DecodingKey` on
//! every call; see `benches/validation.rs`.)

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};

use super::keyfile::{self, KeyFileError, Signer};
use crate::config::{JwtAlgorithm, Settings};
use crate::error::StartupError;

/// A public key that verifies token signatures, with its algorithms fixed at build time.
pub struct VerifyingKey {
    kid: Arc<str>,
    /// The public JWK as published (no private members).
    jwk: Value,
    /// The key material and algorithms, to recognise the same key in a refreshed set.
    identity: String,
    parsed: Vec<(JwtAlgorithm, ParsedPublicKey)>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithms: Vec<&str> = self.parsed.iter().map(|(alg, _)| alg.as_str()).collect();
        f.debug_struct("VerifyingKey").field("kid", &self.kid).field("algorithms", &algorithms).finish()
    }
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// None of the accepted algorithms applies to this key: not an error, just unused.
    #[error("no accepted algorithm applies to this key")]
    NoAlgorithm,
    /// The key is malformed or too weak.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(reason: impl Into<String>) -> KeyError {
    KeyError::Invalid(reason.into())
}

impl VerifyingKey {
    /// The `kid` that selects this key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }

    /// The algorithms this key verifies.
    pub fn algorithms(&self) -> impl Iterator<Item = JwtAlgorithm> + '_ {
        self.parsed.iter().map(|(alg, _)| *alg)
    }

    /// Checks `signature` over `message` with `alg`; an algorithm this key is not for fails.
    pub fn verify(&self, alg: JwtAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.iter().find(|(a, _)| *a == alg).is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }

    /// An RSA key. `declared` is the JWK's `alg` (which then is the only algorithm allowed);
    /// otherwise every allowed RSA algorithm.
    pub fn rsa(
        kid: Option<&str>,
        n: &[u8],
        e: &[u8],
        declared: Option<JwtAlgorithm>,
        allowed: &[JwtAlgorithm],
    ) -> Result<Self, KeyError> {
        let algorithms = usable_algorithms(declared, allowed, JwtAlgorithm::is_rsa)?;
        let (n, e) = (strip_leading_zeros(n), strip_leading_zeros(e));
        let bits = n.len() * 8 - n.first().map_or(0, |b| b.leading_zeros() as usize);
        if bits < keyfile::MIN_BITS {
            return Err(invalid(format!("RSA key of {bits} bits (at least {} needed)", keyfile::MIN_BITS)));
        }
        let components = RsaPublicKeyComponents { n, e };
        let parsed = algorithms
            .into_iter()
            .map(|alg| {
                let params = rsa_parameters(alg).expect("an RSA algorithm");
                components.to_parsed_public_key(params).map(|key| (alg, key))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("invalid RSA key: {e}")))?;
        let (n64, e64) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
        let kid = kid.map(str::to_owned).unwrap_or_else(|| keyfile::thumbprint(n, e));
        let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": parsed[0].0.as_str(), "n": n64, "e": e64 });
        Ok(Self::assemble(kid, jwk, format!("RSA {n64} {e64}"), parsed))
    }

    /// An elliptic-curve key (P-256 for ES256, P-384 for ES384).
    fn ec(
        kid: Option<&str>,
        crv: &str,
        x: &[u8],
        y: &[u8],
        declared: Option<JwtAlgorithm>,
        allowed: &[JwtAlgorithm],
    ) -> Result<Self, KeyError> {
        let (alg, size, verification): (_, _, &'static dyn VerificationAlgorithm) = match crv {
            "P-256" => (JwtAlgorithm::ES256, 32, &signature::ECDSA_P256_SHA256_FIXED),
            "P-384" => (JwtAlgorithm::ES384, 48, &signature::ECDSA_P384_SHA384_FIXED),
            // P-521 (ES512) and others: not something an accepted algorithm can use.
            _ => return Err(KeyError::NoAlgorithm),
        };
        usable_algorithms(declared, allowed, |a| a == alg)?;
        if x.len() != size || y.len() != size {
            return Err(invalid(format!("{crv} coordinates must be {size} bytes")));
        }
        let point: Vec<u8> = [&[0x04][..], x, y].concat();
        let parsed =
            ParsedPublicKey::new(verification, &point).map_err(|e| invalid(format!("invalid {crv} key: {e}")))?;
        let (x64, y64) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let kid = kid
            .map(str::to_owned)
            .unwrap_or_else(|| thumbprint(&format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x64}","y":"{y64}"}}"#)));
        let jwk = json!({ "kty": "EC", "kid": kid, "use": "sig", "alg": alg.as_str(), "crv": crv, "x": x64, "y": y64 });
        Ok(Self::assemble(kid, jwk, format!("EC {crv} {x64} {y64}"), vec![(alg, parsed)]))
    }

    /// An Ed25519 key (EdDSA).
    fn ed25519(
        kid: Option<&str>,
        x: &[u8],
        declared: Option<JwtAlgorithm>,
        allowed: &[JwtAlgorithm],
    ) -> Result<Self, KeyError> {
        usable_algorithms(declared, allowed, |a| a == JwtAlgorithm::EdDSA)?;
        let parsed =
            ParsedPublicKey::new(&signature::ED25519, x).map_err(|e| invalid(format!("invalid Ed25519 key: {e}")))?;
        let x64 = URL_SAFE_NO_PAD.encode(x);
        let kid = kid
            .map(str::to_owned)
            .unwrap_or_else(|| thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x64}"}}"#)));
        let jwk = json!({ "kty": "OKP", "kid": kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": x64 });
        Ok(Self::assemble(kid, jwk, format!("OKP {x64}"), vec![(JwtAlgorithm::EdDSA, parsed)]))
    }

    fn assemble(kid: String, jwk: Value, material: String, parsed: Vec<(JwtAlgorithm, ParsedPublicKey)>) -> Self {
        let algorithms: Vec<&str> = parsed.iter().map(|(alg, _)| alg.as_str()).collect();
        let identity = format!("{kid} {material} {}", algorithms.join(","));
        VerifyingKey { kid: kid.into(), jwk, identity, parsed }
    }

    /// A key from one member of a JWKS `keys` array. `Ok(None)` for keys that are not for
    /// signatures with an allowed algorithm (encryption keys, symmetric keys, other algorithms).
    pub fn from_jwk(jwk: &Value, allowed: &[JwtAlgorithm]) -> Result<Option<Self>, KeyError> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| -> Result<Vec<u8>, KeyError> {
            let value = text(name).ok_or_else(|| invalid(format!("missing `{name}`")))?;
            URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
                .map_err(|_| invalid(format!("`{name}` is not base64url")))
        };
        if text("use").is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array)
            && !ops.iter().any(|op| op == "verify")
        {
            return Ok(None);
        }
        let declared = match text("alg") {
            None => None,
            Some(name) => match JwtAlgorithm::from_name(name) {
                Some(alg) if allowed.contains(&alg) => Some(alg),
                // An algorithm we do not accept: the key cannot verify anything we would take.
                _ => return Ok(None),
            },
        };
        let kid = text("kid");
        let key = match text("kty") {
            Some("RSA") => Self::rsa(kid, &bytes("n")?, &bytes("e")?, declared, allowed),
            Some("EC") => Self::ec(kid, text("crv").unwrap_or(""), &bytes("x")?, &bytes("y")?, declared, allowed),
            Some("OKP") if text("crv") == Some("Ed25519") => Self::ed25519(kid, &bytes("x")?, declared, allowed),
            _ => return Ok(None),
        };
        match key {
            Ok(key) => Ok(Some(key)),
            Err(KeyError::NoAlgorithm) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// The allowed algorithms a key of some family may verify: its declared one, or all that fit.
fn usable_algorithms(
    declared: Option<JwtAlgorithm>,
    allowed: &[JwtAlgorithm],
    fits: impl Fn(JwtAlgorithm) -> bool,
) -> Result<Vec<JwtAlgorithm>, KeyError> {
    let usable: Vec<JwtAlgorithm> = match declared {
        Some(alg) => vec![alg].into_iter().filter(|a| fits(*a) && allowed.contains(a)).collect(),
        None => allowed.iter().copied().filter(|a| fits(*a)).collect(),
    };
    if usable.is_empty() {
        return Err(KeyError::NoAlgorithm);
    }
    Ok(usable)
}

fn rsa_parameters(alg: JwtAlgorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        JwtAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        JwtAlgorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        JwtAlgorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        JwtAlgorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        JwtAlgorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        JwtAlgorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        JwtAlgorithm::ES256 | JwtAlgorithm::ES384 | JwtAlgorithm::EdDSA => return None,
    })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// RFC 7638 thumbprint of a canonical JWK string.
fn thumbprint(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// The keys tokens may be signed with, by `kid`. Immutable: a refresh builds a new set.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
    by_kid: HashMap<Arc<str>, Arc<VerifyingKey>>,
}

impl KeySet {
    /// A set of `keys`; a repeated `kid` keeps the first key (and is logged).
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut set = KeySet::default();
        for key in keys {
            if set.by_kid.contains_key(&key.kid) {
                tracing::warn!(kid = %key.kid, "two keys share a kid; using the first");
                continue;
            }
            let key = Arc::new(key);
            set.by_kid.insert(key.kid.clone(), key.clone());
            set.keys.push(key);
        }
        set
    }

    /// The key a token's `kid` names.
    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.by_kid.get(kid)
    }

    /// The only key, for tokens without `kid`; `None` when there are several.
    pub fn sole(&self) -> Option<&Arc<VerifyingKey>> {
        if self.keys.len() == 1 { self.keys.first() } else { None }
    }

    /// Whether `key` (this very instance) is still in the set.
    pub fn holds(&self, key: &Arc<VerifyingKey>) -> bool {
        self.by_kid.get(&key.kid).is_some_and(|k| Arc::ptr_eq(k, key))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid()).collect()
    }

    /// The set as a JWKS document (RFC 7517 section 5).
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// This set, with every key that is unchanged from `previous` replaced by the previous
    /// instance, so cached verifications made with it stay valid across a refresh.
    pub fn reusing(self, previous: &KeySet) -> KeySet {
        let keys = self.keys.into_iter().map(|key| match previous.by_kid.get(&key.kid) {
            Some(old) if old.identity == key.identity => old.clone(),
            _ => key,
        });
        let mut set = KeySet::default();
        for key in keys {
            set.by_kid.insert(key.kid.clone(), key.clone());
            set.keys.push(key);
        }
        set
    }

    /// Builds a set from a JWKS document; keys that cannot be used are skipped and logged.
    pub fn from_jwks(document: &Value, allowed: &[JwtAlgorithm]) -> Result<KeySet, KeyError> {
        let members = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("not a JWKS document (no `keys` array)"))?;
        let mut keys = Vec::new();
        for member in members {
            match VerifyingKey::from_jwk(member, allowed) {
                Ok(Some(key)) => keys.push(key),
                Ok(None) => {}
                Err(err) => {
                    let kid = member.get("kid").and_then(Value::as_str).unwrap_or("-");
                    tracing::warn!(kid, %err, "skipping a JWKS key that cannot be used");
                }
            }
        }
        if keys.is_empty() {
            let allowed: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            return Err(invalid(format!(
                "no usable signature key among {} (accepted algorithms: {})",
                members.len(),
                allowed.join(", ")
            )));
        }
        Ok(KeySet::new(keys))
    }
}

/// Where the development key pair lives (`config/default.toml`): the only paths at which key
/// files are ever generated.
pub const DEV_PRIVATE_KEY: &str = "keys/dev-private.pem";
pub const DEV_PUBLIC_KEY: &str = "keys/dev-public.pem";

/// The local key pair from PEM files: the keys the server verifies and publishes, and the
/// private key that signs dev tokens (the `generate_token` example, tests, a built-in
/// authorization server).
pub struct LocalKeys {
    signer: Option<Signer>,
    algorithm: JwtAlgorithm,
    keys: Arc<KeySet>,
    generated: bool,
}

impl fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKeys")
            .field("signing_kid", &self.kid())
            .field("algorithm", &self.algorithm)
            .field("keys", &self.keys.kids())
            .finish()
    }
}

impl LocalKeys {
    /// Loads `jwt.private_key` and `jwt.public_keys`. At the development default paths
    /// (`keys/dev-private.pem`, `keys/dev-public.pem`) a missing pair is generated first (logged
    /// as a warning), and a missing public half derived; at any other path a missing file stops
    /// start-up instead, so a mistyped path never makes the server write a key. The verification
    /// set holds every public key file and the public half of the private key.
    pub fn load_or_generate(settings: &Settings) -> Result<LocalKeys, StartupError> {
        let jwt = &settings.jwt;
        let algorithm = jwt.local_signing_algorithm().ok_or_else(|| {
            StartupError::config("jwt.algorithms", "local keys are RSA: include an RSA algorithm such as RS256")
        })?;
        let dev_defaults =
            jwt.private_key == Path::new(DEV_PRIVATE_KEY) && jwt.public_keys == [PathBuf::from(DEV_PUBLIC_KEY)];
        let files = if dev_defaults {
            keyfile::load_or_generate(&jwt.private_key, &jwt.public_keys)
        } else {
            keyfile::load(&jwt.private_key, &jwt.public_keys)
        };
        let files = files.map_err(|err| match err {
            KeyFileError::Missing(_) | KeyFileError::MissingPublic(_) => StartupError::Keys(format!(
                "{err} (jwt.private_key, jwt.public_keys); key files are only generated at the development \
                 defaults ({DEV_PRIVATE_KEY}, {DEV_PUBLIC_KEY}): check the paths, or create the keys"
            )),
            other => keys_error(other),
        })?;
        if files.generated {
            let public_key = jwt.public_keys.first().map(|p| p.display().to_string()).unwrap_or_default();
            tracing::warn!(
                private_key = %jwt.private_key.display(),
                %public_key,
                "generated a DEVELOPMENT key pair: fine for trying things out, never for production \
                 (configure your own keys or an external issuer)"
            );
        }
        let allowed: Vec<JwtAlgorithm> = jwt.algorithms.iter().copied().filter(|a| a.is_rsa()).collect();
        let publics = files.signer.iter().map(|s| s.public()).chain(files.public.iter());
        let mut keys = Vec::new();
        for public in publics {
            // The signing key's own kid is the one its tokens carry: keep it first.
            let key = VerifyingKey::rsa(Some(&public.kid), &public.n, &public.e, Some(algorithm), &allowed)
                .map_err(|e| StartupError::Keys(format!("key {}: {e}", public.kid)))?;
            if !keys.iter().any(|k: &VerifyingKey| k.kid() == key.kid()) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(StartupError::Keys(format!(
                "no verification keys: {} does not exist and jwt.public_keys is empty",
                jwt.private_key.display()
            )));
        }
        Ok(LocalKeys { signer: files.signer, algorithm, keys: Arc::new(KeySet::new(keys)), generated: files.generated })
    }

    /// Signs `claims` into a compact JWT with the private key, `kid` set to its thumbprint.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, SignError> {
        let signer = self.signer.as_ref().ok_or(SignError::NoPrivateKey)?;
        let alg = self.algorithm.as_str().parse().map_err(|_| SignError::Failed("unknown algorithm".into()))?;
        signer.sign(alg, claims).map_err(|e| SignError::Failed(e.to_string()))
    }

    /// The `kid` of the signing key, if there is a private key.
    pub fn kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|s| s.kid())
    }

    /// The algorithm tokens are signed with.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// The verification keys.
    pub fn key_set(&self) -> &Arc<KeySet> {
        &self.keys
    }

    /// Whether this start-up created the key pair.
    pub fn generated(&self) -> bool {
        self.generated
    }
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no private key is configured (jwt.private_key does not exist)")]
    NoPrivateKey,
    #[error("{0}")]
    Failed(String),
}

fn keys_error(err: KeyFileError) -> StartupError {
    StartupError::Keys(err.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The RSA key of RFC 7638 section 3.1.
    pub(crate) const RFC_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    pub(crate) fn rsa_jwk(kid: Option<&str>, alg: Option<&str>) -> Value {
        let mut jwk = json!({ "kty": "RSA", "n": RFC_N, "e": "AQAB" });
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        if let Some(alg) = alg {
            jwk["alg"] = json!(alg);
        }
        jwk
    }

    const RS: &[JwtAlgorithm] = &[JwtAlgorithm::RS256, JwtAlgorithm::PS256];

    #[test]
    fn a_jwk_without_kid_gets_its_thumbprint_and_without_alg_every_allowed_rsa_algorithm() {
        let key = VerifyingKey::from_jwk(&rsa_jwk(None, None), RS).unwrap().unwrap();
        assert_eq!(key.kid(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert_eq!(key.algorithms().collect::<Vec<_>>(), RS);
        let key = VerifyingKey::from_jwk(&rsa_jwk(Some("k"), Some("PS256")), RS).unwrap().unwrap();
        assert_eq!(key.algorithms().collect::<Vec<_>>(), [JwtAlgorithm::PS256]);
    }

    #[test]
    fn keys_that_cannot_verify_an_accepted_algorithm_are_skipped_not_errors() {
        let skipped = |jwk: Value| VerifyingKey::from_jwk(&jwk, &[JwtAlgorithm::RS256]).unwrap().is_none();
        assert!(skipped(rsa_jwk(Some("k"), Some("RS512"))));
        assert!(skipped(rsa_jwk(Some("k"), Some("HS256"))));
        assert!(skipped(json!({ "kty": "oct", "k": "c2VjcmV0" })));
        assert!(skipped(json!({ "kty": "RSA", "use": "enc", "n": RFC_N, "e": "AQAB" })));
        assert!(skipped(json!({ "kty": "RSA", "key_ops": ["encrypt"], "n": RFC_N, "e": "AQAB" })));
        assert!(skipped(json!({ "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA" })));
        // A small RSA key is an error (and is logged when it comes in a JWKS).
        let small = json!({ "kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]), "e": "AQAB" });
        assert!(matches!(VerifyingKey::from_jwk(&small, RS), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn a_refreshed_set_keeps_the_instances_of_unchanged_keys() {
        let first =
            KeySet::from_jwks(&json!({ "keys": [rsa_jwk(Some("a"), None), rsa_jwk(Some("b"), None)] }), RS).unwrap();
        let second = KeySet::from_jwks(&json!({ "keys": [rsa_jwk(Some("b"), None), rsa_jwk(Some("c"), None)] }), RS)
            .unwrap()
            .reusing(&first);
        assert!(second.holds(first.get("b").unwrap()));
        assert!(!second.holds(first.get("a").unwrap()));
        assert_eq!(second.kids(), ["b", "c"]);
        // The same kid with other parameters is another key.
        let third =
            KeySet::from_jwks(&json!({ "keys": [rsa_jwk(Some("b"), Some("PS256"))] }), RS).unwrap().reusing(&second);
        assert!(!third.holds(second.get("b").unwrap()));
    }

    #[test]
    fn a_document_without_usable_keys_is_an_error() {
        assert!(KeySet::from_jwks(&json!({ "keys": [] }), RS).is_err());
        assert!(KeySet::from_jwks(&json!({ "nokeys": 1 }), RS).is_err());
        assert!(KeySet::from_jwks(&json!({ "keys": [{ "kty": "oct", "k": "AA" }] }), RS).is_err());
    }
}
