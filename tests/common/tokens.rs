//! Test tokens (feature `jwt`): the test key pair and a [`TokenBuilder`].
//!
//! The key pair lives under Cargo's per-package test directory (`CARGO_TARGET_TMPDIR`), made
//! once by the same code the server uses, so tests never touch `keys/`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use mcp_auth_server::Settings;
use mcp_auth_server::jwt::LocalKeys;
use mcp_auth_server::jwt::keyfile::{self, Signer};
use serde_json::{Map, Value, json};

/// The issuer and resource URL of the default test settings.
pub const ISSUER: &str = "http://127.0.0.1:3000";
pub const AUDIENCE: &str = "http://127.0.0.1:3000/mcp";

/// Where the shared test key pair lives; the pair is made on first use, so settings that
/// point at it are valid whichever test binary runs first.
pub fn key_dir() -> PathBuf {
    static MADE: OnceLock<PathBuf> = OnceLock::new();
    MADE.get_or_init(|| {
        // The server only generates keys at its development defaults: the test pair is made
        // here, as the generate_token example makes any pair it is pointed at.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-keys");
        keyfile::load_or_generate(&dir.join("private.pem"), &[dir.join("public.pem")]).expect("the test key pair");
        dir
    })
    .clone()
}

/// A fresh, empty directory for keys of one test.
pub fn fresh_dir(name: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `[jwt]` TOML that points at the shared test key pair.
pub fn settings_layer() -> String {
    let dir = key_dir();
    format!(
        "[jwt]\nprivate_key = {:?}\npublic_keys = [{:?}]\n",
        dir.join("private.pem").display().to_string(),
        dir.join("public.pem").display().to_string()
    )
}

/// The shared test key pair (created on first use).
pub fn local_keys() -> &'static LocalKeys {
    static KEYS: OnceLock<LocalKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let settings = Settings::from_toml(&settings_layer()).expect("settings");
        LocalKeys::load_or_generate(&settings).expect("test keys")
    })
}

/// A valid token for the default test settings, with every scope the default policy knows, so
/// tests of other layers run unchanged with authentication and authorization on.
pub fn default_token() -> String {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| TokenBuilder::new().scopes(&["mcp:read", "mcp:tools", "mcp:prompts"]).build()).clone()
}

/// A standalone RSA key pair (in its own directory), for issuers other than the test one.
pub fn rsa_signer(name: &str) -> Signer {
    rsa_pair(name).1
}

/// A standalone RSA key pair: its directory (`private.pem`, `public.pem`) and its signer.
pub fn rsa_pair(name: &str) -> (PathBuf, Signer) {
    let dir = fresh_dir(name);
    let files = keyfile::load_or_generate(&dir.join("private.pem"), &[dir.join("public.pem")]).expect("key pair");
    (dir, files.signer.expect("a private key"))
}

/// Something that turns claims into a signed token.
pub trait SignsTokens {
    fn sign_claims(&self, claims: &Value) -> String;
}

impl SignsTokens for LocalKeys {
    fn sign_claims(&self, claims: &Value) -> String {
        self.sign(claims).expect("sign")
    }
}

impl SignsTokens for Signer {
    fn sign_claims(&self, claims: &Value) -> String {
        self.sign(jsonwebtoken::Algorithm::RS256, claims).expect("sign")
    }
}

impl<F: Fn(&Value) -> String> SignsTokens for F {
    fn sign_claims(&self, claims: &Value) -> String {
        self(claims)
    }
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Builds signed access tokens: valid for the default test settings unless told otherwise.
pub struct TokenBuilder<'a> {
    claims: Map<String, Value>,
    signer: Option<&'a dyn SignsTokens>,
}

impl Default for TokenBuilder<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> TokenBuilder<'a> {
    /// `sub` alice, scopes `mcp:read mcp:tools`, issued now for an hour, for the test server.
    pub fn new() -> Self {
        let now = now();
        let claims = json!({
            "iss": ISSUER,
            "sub": "alice",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "scope": "mcp:read mcp:tools",
            "preferred_username": "alice",
        });
        TokenBuilder { claims: claims.as_object().unwrap().clone(), signer: None }
    }

    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub).claim("preferred_username", sub)
    }

    pub fn scopes(self, scopes: &[&str]) -> Self {
        self.claim("scope", scopes.join(" "))
    }

    pub fn roles(self, roles: &[&str]) -> Self {
        self.claim("roles", json!(roles))
    }

    pub fn issuer(self, iss: &str) -> Self {
        self.claim("iss", iss)
    }

    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// Issuer and audience of the server at `base` (e.g. a spawned one).
    pub fn for_server(self, base: &str) -> Self {
        self.issuer(base).audience(&format!("{base}/mcp"))
    }

    /// Expired an hour ago (well beyond any leeway).
    pub fn expired(self) -> Self {
        let now = now();
        self.claim("iat", now - 7200).claim("exp", now - 3600)
    }

    pub fn expires_at(self, exp: i64) -> Self {
        self.claim("exp", exp)
    }

    /// Not valid before `nbf`.
    pub fn not_before(self, nbf: i64) -> Self {
        self.claim("nbf", nbf)
    }

    /// Signs with `signer` instead of the test key pair.
    pub fn signed_with(mut self, signer: &'a dyn SignsTokens) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The claims as they will be signed.
    pub fn claims(&self) -> Value {
        Value::Object(self.claims.clone())
    }

    pub fn build(self) -> String {
        let claims = self.claims();
        match self.signer {
            Some(signer) => signer.sign_claims(&claims),
            None => local_keys().sign_claims(&claims),
        }
    }

    /// `Authorization` header value.
    pub fn bearer(self) -> String {
        format!("Bearer {}", self.build())
    }
}
