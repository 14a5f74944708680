//! Opaque access tokens (feature `jwt`): a bearer token that is not a JWT is sent to the
//! introspection endpoint (RFC 7662) of the one `[[jwt.issuers]]` entry that names one, and the
//! answer becomes a [`Principal`] like a JWT's claims would.
//!
//! - The request: `POST token=...&token_type_hint=access_token`, the client authenticated with
//!   `client_secret_basic` (RFC 6749 section 2.3.1: id and secret form-encoded, then Basic).
//! - An active answer is still checked: `active` must be `true`; `exp` and `nbf` (with
//!   `jwt.leeway_secs`); `iss`, if present, must be the entry's issuer; `aud`, if present, must
//!   name this server or one of the entry's audiences (many providers leave `aud` out of
//!   introspection answers, so its absence is accepted: the endpoint vouches for a token it
//!   issued); `sub` must be there (or, for a client's own token, `client_id`, which is then the
//!   subject). Scopes come from `scope`, roles from the entry's role claims.
//! - Answers are cached under the token's SHA-256 digest (never the token itself): an active one
//!   until the token's `exp`, at most `jwt.introspection_cache_secs`; a refusal for
//!   `jwt.introspection_negative_cache_secs`. Time claims are checked again on every use.
//! - Single-flight: concurrent requests with one token wait for one introspection (a
//!   `tokio::sync::OnceCell` per digest; if the request that started it goes away, a waiter takes
//!   over). The cache is a bounded map; it needs no eviction policy beyond expiry, since every
//!   entry is cheap to redo.
//! - Fail closed: an endpoint that cannot be reached, answers other than 200, or sends something
//!   that is not an RFC 7662 answer gives no verdict: [`Rejection::Unavailable`], answered 503
//!   like every other check that cannot be made right now, and not cached (the next request asks
//!   again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::checks::{Rejection, check_audience, check_times, numeric_date, unix_now};
use super::claims::{self, RoleClaims};
use crate::config::IntrospectionClient;
use crate::principal::Principal;

/// Largest introspection answer accepted, in bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Most answers remembered; beyond that, expired ones go, then any settled ones.
const MAX_ENTRIES: usize = 10_000;

/// A digest of a token: what the cache is keyed by.
type Digest32 = [u8; 32];

/// One introspection's outcome and how long it may be reused.
#[derive(Clone)]
struct Answer {
    outcome: Result<Principal, Rejection>,
    /// `exp` and `nbf` of an active token, checked again on every use.
    exp: Option<i64>,
    nbf: Option<i64>,
    until: Instant,
}

/// What [`Introspector::new`] needs besides the endpoint and the client.
pub struct Rules {
    /// The entry's `issuer`: the `iss` an answer may name, and the principal's issuer.
    pub issuer: String,
    /// `None` when the audience is not enforced.
    pub audiences: Option<Vec<String>>,
    pub role_claims: Vec<String>,
    pub leeway_secs: u64,
    pub cache_secs: u64,
    pub negative_cache_secs: u64,
}

/// The introspection endpoint of the issuer of opaque tokens, with its answer cache.
pub struct Introspector {
    url: String,
    /// `Basic base64(urlencode(id):urlencode(secret))`, made once.
    authorization: SecretString,
    client: reqwest::Client,
    issuer: String,
    audiences: Option<Vec<String>>,
    roles: RoleClaims,
    leeway: i64,
    max_ttl: Duration,
    negative_ttl: Duration,
    answers: Mutex<HashMap<Digest32, Arc<OnceCell<Answer>>>>,
    /// Requests sent to the endpoint, for `/health`.
    requests: std::sync::atomic::AtomicU64,
}

impl Introspector {
    pub fn new(endpoint: &IntrospectionClient, client: reqwest::Client, rules: Rules) -> Self {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(&endpoint.client_id), encode(endpoint.client_secret.expose_secret()));
        Introspector {
            url: endpoint.url.clone(),
            authorization: SecretString::from(format!("Basic {}", STANDARD.encode(pair))),
            client,
            issuer: rules.issuer,
            audiences: rules.audiences,
            roles: RoleClaims::new(&rules.role_claims),
            leeway: rules.leeway_secs as i64,
            max_ttl: Duration::from_secs(rules.cache_secs),
            negative_ttl: Duration::from_secs(rules.negative_cache_secs),
            answers: Mutex::new(HashMap::new()),
            requests: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The principal of opaque `token`, from the cache or from one introspection shared by every
    /// concurrent request with the same token.
    pub async fn check(&self, token: &str) -> Result<Principal, Rejection> {
        let digest: Digest32 = Sha256::digest(token.as_bytes()).into();
        let cell = self.cell(digest);
        let answer = cell.get_or_init(|| self.introspect(token)).await;
        let principal = answer.outcome.clone()?;
        if let Some(exp) = answer.exp {
            check_times(self.leeway, exp, answer.nbf, None, unix_now(), &principal.subject)?;
        }
        Ok(principal)
    }

    /// The cell for `digest`: one in flight or still fresh, or a new one in its place.
    fn cell(&self, digest: Digest32) -> Arc<OnceCell<Answer>> {
        let now = Instant::now();
        let mut answers = self.answers.lock().expect("lock");
        if let Some(cell) = answers.get(&digest) {
            match cell.get() {
                None => return cell.clone(),
                Some(answer) if answer.until > now => return cell.clone(),
                Some(_) => {}
            }
        }
        if answers.len() >= MAX_ENTRIES {
            answers.retain(|_, cell| cell.get().is_none_or(|answer| answer.until > now));
            if answers.len() >= MAX_ENTRIES {
                let settled: Vec<Digest32> = answers
                    .iter()
                    .filter(|(_, cell)| cell.initialized())
                    .map(|(digest, _)| *digest)
                    .take(MAX_ENTRIES / 8)
                    .collect();
                for digest in settled {
                    answers.remove(&digest);
                }
            }
        }
        let cell = Arc::new(OnceCell::new());
        answers.insert(digest, cell.clone());
        cell
    }

    /// Answers remembered now (settled or in flight).
    pub fn len(&self) -> usize {
        self.answers.lock().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// For `/health`: the endpoint, the issuer, and the cache.
    pub fn report(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "url": self.url,
            "cached_answers": self.len(),
            "requests": self.requests.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Asks the endpoint about `token` and judges the answer; how long it may be reused.
    async fn introspect(&self, token: &str) -> Answer {
        let asked = Instant::now();
        match self.ask(token).await {
            Err(problem) => {
                tracing::warn!(url = %self.url, %problem, "token introspection failed: token refused (503)");
                Answer { outcome: Err(Rejection::Unavailable), exp: None, nbf: None, until: asked }
            }
            Ok(answer) => match self.judge(answer, unix_now()) {
                Ok((principal, exp, nbf)) => {
                    let left = exp.map_or(self.max_ttl, |exp| {
                        Duration::from_secs(u64::try_from(exp.saturating_sub(unix_now())).unwrap_or(0))
                    });
                    let until = asked + left.min(self.max_ttl);
                    Answer { outcome: Ok(principal), exp, nbf, until }
                }
                Err(rejection) => {
                    tracing::debug!(reason = %rejection, "introspected token refused");
                    Answer { outcome: Err(rejection), exp: None, nbf: None, until: asked + self.negative_ttl }
                }
            },
        }
    }

    /// One RFC 7662 request; the answer's JSON object, or why there is none.
    async fn ask(&self, token: &str) -> Result<Map<String, Value>, String> {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let mut authorization = reqwest::header::HeaderValue::from_str(self.authorization.expose_secret())
            .map_err(|_| "the client credentials do not fit in a header".to_owned())?;
        authorization.set_sensitive(true);
        let mut response = self
            .client
            .post(&self.url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("cannot reach the endpoint: {e}"))?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("HTTP {status} (check the issuer's client_id and client_secret)"));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the answer: {e}"))? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(answer)) => Ok(answer),
            _ => Err("the answer is not a JSON object".to_owned()),
        }
    }

    /// An RFC 7662 answer as a principal, with the token's `exp` and `nbf`.
    fn judge(
        &self,
        mut answer: Map<String, Value>,
        now: i64,
    ) -> Result<(Principal, Option<i64>, Option<i64>), Rejection> {
        if answer.remove("active") != Some(Value::Bool(true)) {
            return Err(Rejection::Inactive);
        }
        // A token no person stands behind (client credentials) may come without `sub`: its
        // subject is then the client, as RFC 9068 section 2.2 has JWT access tokens say it.
        if !answer.contains_key("sub")
            && let Some(client) = answer.get("client_id").filter(|c| c.as_str().is_some_and(|c| !c.is_empty()))
        {
            answer.insert("sub".to_owned(), client.clone());
        }
        let sub = answer.get("sub").and_then(Value::as_str).unwrap_or("").to_owned();
        let date = |claim: &'static str| match answer.get(claim) {
            None => Ok(None),
            Some(value) => {
                numeric_date(value).map(Some).ok_or_else(|| Rejection::Claim { claim, sub: Some(sub.clone()) })
            }
        };
        let (exp, nbf, iat) = (date("exp")?, date("nbf")?, date("iat")?);
        check_times(self.leeway, exp.unwrap_or(i64::MAX), nbf, iat, now, &sub)?;
        match answer.get("iss") {
            None => {
                answer.insert("iss".to_owned(), Value::String(self.issuer.clone()));
            }
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(Rejection::Issuer { sub }),
        }
        check_audience(self.audiences.as_deref(), answer.get("aud"), false, sub)?;
        let principal = claims::principal(answer, &self.roles).ok_or(Rejection::Claim { claim: "sub", sub: None })?;
        Ok((principal, exp, nbf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn introspector(audiences: Option<Vec<String>>) -> Introspector {
        let endpoint = IntrospectionClient {
            url: "https://idp.example/introspect".into(),
            client_id: "mcp server".into(),
            client_secret: SecretString::from("s3cr:t"),
        };
        let rules = Rules {
            issuer: "https://idp.example".into(),
            audiences,
            role_claims: vec!["roles".into()],
            leeway_secs: 0,
            cache_secs: 300,
            negative_cache_secs: 10,
        };
        Introspector::new(&endpoint, reqwest::Client::new(), rules)
    }

    fn answer(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic() {
        let basic = introspector(None).authorization.expose_secret().to_owned();
        assert_eq!(basic, format!("Basic {}", STANDARD.encode("mcp+server:s3cr%3At")));
    }

    #[test]
    fn only_active_answers_for_this_issuer_and_resource_make_a_principal() {
        let i = introspector(Some(vec!["https://mcp.example/mcp".into()]));
        let now = 1_000;
        let ok = i
            .judge(answer(json!({"active": true, "sub": "u", "scope": "a b", "roles": ["r"], "exp": 2000})), now)
            .unwrap();
        assert_eq!((ok.0.subject.as_str(), ok.0.issuer.as_str(), ok.1), ("u", "https://idp.example", Some(2000)));
        // Client credentials without `sub`: the client is the subject.
        let machine = i.judge(answer(json!({"active": true, "client_id": "svc", "exp": 2000})), now).unwrap();
        assert_eq!((machine.0.subject.as_str(), machine.0.client_id.as_deref()), ("svc", Some("svc")));
        assert!(ok.0.has_scope("a") && ok.0.roles.contains("r"));
        for (bad, why) in [
            (json!({"active": false, "sub": "u"}), Rejection::Inactive),
            (json!({"active": "true", "sub": "u"}), Rejection::Inactive),
            (json!({"sub": "u"}), Rejection::Inactive),
            (json!({"active": true, "sub": "u", "exp": 999}), Rejection::Expired { sub: "u".into() }),
            (json!({"active": true, "sub": "u", "iss": "https://other"}), Rejection::Issuer { sub: "u".into() }),
            (json!({"active": true, "sub": "u", "aud": "https://other/mcp"}), Rejection::Audience { sub: "u".into() }),
            (json!({"active": true, "exp": 2000}), Rejection::Claim { claim: "sub", sub: None }),
            (json!({"active": true, "exp": 2000, "client_id": ""}), Rejection::Claim { claim: "sub", sub: None }),
        ] {
            assert_eq!(i.judge(answer(bad.clone()), now).unwrap_err(), why, "{bad}");
        }
        assert!(
            i.judge(answer(json!({"active": true, "sub": "u", "aud": ["x", "https://mcp.example/mcp"]})), now).is_ok()
        );
    }
}
