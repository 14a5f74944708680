//! The RS256 bearer check of the load benchmark's reference servers: the ceiling
//! (`benches/ceiling.rs`, its "bare axum + RS256 verify" row) and the peers under
//! `benches/peers/`, so each of them checks a token exactly the same way. The cheapest honest
//! check: the key parsed once at start-up, then per request base64url, the aws-lc-rs signature
//! check, and the claims `exp`, `iss` and `aud`. No cache.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

pub struct Check {
    key: ParsedPublicKey,
    issuer: String,
    audience: String,
}

#[derive(Deserialize)]
struct Claims {
    exp: i64,
    iss: String,
    aud: String,
}

impl Check {
    /// From the RSA public key's modulus and exponent (big-endian bytes).
    pub fn new(n: &[u8], e: &[u8], issuer: String, audience: String) -> Result<Self, String> {
        let key = RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(|e| format!("unusable key: {e}"))?;
        Ok(Check { key, issuer, audience })
    }

    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(token) =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let Some((signing_input, signature)) = token.rsplit_once('.') else { return false };
        let Some((_header, payload)) = signing_input.split_once('.') else { return false };
        let (Ok(signature), Ok(payload)) = (URL_SAFE_NO_PAD.decode(signature), URL_SAFE_NO_PAD.decode(payload)) else {
            return false;
        };
        if self.key.verify_sig(signing_input.as_bytes(), &signature).is_err() {
            return false;
        }
        let Ok(claims) = serde_json::from_slice::<Claims>(&payload) else { return false };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        claims.exp >= now && claims.iss == self.issuer && claims.aud == self.audience
    }
}
