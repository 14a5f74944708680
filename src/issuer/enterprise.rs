//! Enterprise-Managed Authorization (feature `issuer`; the MCP extension
//! `io.modelcontextprotocol/enterprise-managed-authorization`, profiling the IETF draft "Identity
//! Assertion JWT Authorization Grant"): a client that signed a person in through the company's
//! identity provider trades, at that IdP, the person's ID token for an ID-JAG, and presents it
//! here with the JWT bearer grant (RFC 7523 section 2.1) instead of sending the person through
//! our sign-in. This module checks the ID-JAG and finds the account it speaks for; `token`
//! issues the access token.
//!
//! What an ID-JAG must be (extension section 5.1, with RFC 7521 section 5.2 and RFC 7523
//! section 3):
//! - a JWS whose header `typ` is `oauth-id-jag+jwt` (RFC 8725 explicit typing), signed with one
//!   of the IdP's `algorithms` by a key of its JWKS (discovered from its issuer URL, or its
//!   `jwks_url`; fetched at start-up and refreshed like `jwt.issuer`'s keys, see
//!   [`crate::jwt::remote`]);
//! - `iss` one of `[[issuer.enterprise_idps]]`, exactly;
//! - `aud` this authorization server's issuer URL (section 5.1: "MUST identify the Issuer URL");
//! - `resource` one this server issues tokens for (its `/mcp`, or `jwt.extra_audiences`): the
//!   access token's `aud`;
//! - `client_id` the client that authenticated at `/token` (section 5.1 "MUST identify the same
//!   client"), and one of the IdP's `allowed_clients` when it lists some;
//! - `sub`, `jti`, `exp`, `iat` present (section 4.3: all REQUIRED); `exp` not past, `iat` and
//!   `nbf` not in the future (`jwt.leeway_secs`), `exp` at most [`MAX_LIFETIME_SECS`] ahead;
//! - its `jti` never seen before from that IdP: kept in the store until the ID-JAG expires, so
//!   that no instance accepts it twice (RFC 7523 section 3, item 7).
//!
//! Every refusal is `invalid_grant` (RFC 7521 section 5.2, extension section 4.2.1), except a
//! scope the account may not have (`invalid_scope`) and a `resource` parameter that differs from
//! the ID-JAG's (`invalid_target`).
//!
//! The account (extension, "Handle Account Linking"): `sub` is the stable identifier. An
//! identity (issuer and `sub`) linked before is that user; else, with `link_by_email`, the user
//! of `[[issuer.users]]` whose `email` is the ID-JAG's `email`, when the IdP says it is verified
//! (`email_verified: true`), and the link is kept in the store (for [`LINK_TTL`], renewed on
//! use), so that the `sub` finds the user from then on. Anyone else is refused, unless the IdP
//! has `provision_users`: then the identity is an account of its own (`sub` =
//! `<issuer>#<sub>`, roles `provision_roles`), made from the ID-JAG each time, nothing stored.
//!
//! Scopes: those of the ID-JAG's `scope` claim (the IdP's policy decision), each of which the
//! account's roles must permit (else `invalid_scope`: the IdP granted more than this server's
//! policy allows that user); without one, everything the roles permit. A `scope` parameter
//! may narrow that. No refresh token: when the access token expires, the client asks the IdP
//! for a new ID-JAG, so that the IdP's policy is applied again (the extension's section 5.2
//! example answers without one; the IdP keeps the decision, extension section 6.2).
//!
//! Every request counts in `mcp_auth.issuer.id_jags`, by `outcome`.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Core;
use super::assertion::parse_jws;
use super::clients::Client;
use super::error::OAuthError;
use super::store::Account;
use super::{Params, digest, now};
use crate::config::{EnterpriseIdp, JwtAlgorithm, KeySource, Settings};
use crate::error::StartupError;
use crate::jwt::remote::RemoteKeys;

/// The `typ` header of an ID-JAG (extension section 4.3).
pub const ID_JAG_TYPE: &str = "oauth-id-jag+jwt";
/// The longest an ID-JAG may live ahead (`exp` - now), in seconds: its `jti` is kept that long.
pub const MAX_LIFETIME_SECS: i64 = 3600;
/// How long a link of an enterprise identity to a user is kept after its last use.
pub const LINK_TTL: Duration = Duration::from_secs(400 * 86_400);

/// The trusted enterprise IdPs and their keys.
pub struct EnterpriseIdps {
    idps: Vec<Idp>,
    /// `jwt.leeway_secs`.
    leeway: i64,
}

struct Idp {
    settings: EnterpriseIdp,
    keys: Arc<RemoteKeys>,
}

/// A refused ID-JAG: the answer, and the metric's `outcome`.
struct Refusal {
    outcome: &'static str,
    error: OAuthError,
}

fn refused(outcome: &'static str, description: impl Into<String>) -> Refusal {
    Refusal { outcome, error: OAuthError::invalid_grant(format!("ID-JAG refused: {}", description.into())) }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(err: crate::store::StoreError) -> Self {
        Refusal { outcome: "store_error", error: err.into() }
    }
}

/// What an accepted ID-JAG grants.
pub struct Accepted {
    pub account: Account,
    pub resource: String,
    pub scopes: Vec<String>,
}

/// The claims of an ID-JAG that passed its checks.
struct IdJag<'a> {
    idp: &'a Idp,
    claims: Map<String, Value>,
    sub: String,
    resource: String,
}

impl EnterpriseIdps {
    /// None: the JWT bearer grant is not offered.
    pub fn none() -> Self {
        EnterpriseIdps { idps: Vec::new(), leeway: 0 }
    }

    /// Fetches the keys of every `[[issuer.enterprise_idps]]` (each as `jwt.issuer`'s: retried for
    /// `jwt.startup_timeout_secs`, then a start-up error) and starts their scheduled refresh.
    pub async fn start(settings: &Settings) -> Result<Self, StartupError> {
        let mut idps = Vec::new();
        for config in &settings.issuer.enterprise_idps {
            let key = format!("issuer.enterprise_idps.{}", config.issuer);
            if let Some(unknown) = config.provision_roles.iter().find(|r| !settings.scopes.roles.contains_key(*r)) {
                return Err(StartupError::config(
                    format!("{key}.provision_roles"),
                    format!("names `{unknown}`, which scopes.roles does not define"),
                ));
            }
            let source = if config.jwks_url.is_empty() {
                KeySource::Discovery(config.issuer.clone())
            } else {
                KeySource::JwksUrl(config.jwks_url.clone())
            };
            let hint = format!("{key}.issuer / .jwks_url");
            let keys = RemoteKeys::start_from(&settings.jwt, source, &config.algorithms, &hint).await?;
            spawn_refresher(Arc::downgrade(&keys), Duration::from_secs(settings.jwt.refresh_interval_secs));
            tracing::info!(idp = %config.issuer, "enterprise identity provider trusted for ID-JAGs");
            idps.push(Idp { settings: config.clone(), keys });
        }
        Ok(EnterpriseIdps { idps, leeway: settings.jwt.leeway_secs as i64 })
    }

    /// Whether any IdP is trusted (the grant is offered and advertised).
    pub fn is_empty(&self) -> bool {
        self.idps.is_empty()
    }

    /// For `/health`: each IdP's keys.
    pub fn report(&self) -> Value {
        Value::Array(
            self.idps.iter().map(|idp| json!({"issuer": idp.settings.issuer, "keys": idp.keys.report()})).collect(),
        )
    }

    /// Checks the `assertion` of a JWT bearer grant request from `client` and finds what it grants.
    pub async fn accept(&self, core: &Core, client: &Client, params: &Params) -> Result<Accepted, OAuthError> {
        let result = self.check(core, client, params).await;
        crate::observe::issuer_id_jag(result.as_ref().map_or_else(|refusal| refusal.outcome, |_| "accepted"));
        result.map_err(|refusal| {
            tracing::warn!(client_id = %client.client_id, reason = %refusal.error.description, "ID-JAG refused");
            refusal.error
        })
    }

    async fn check(&self, core: &Core, client: &Client, params: &Params) -> Result<Accepted, Refusal> {
        // Section 5: "The MCP Client authenticates with its credentials as registered"; a client
        // without credentials could be anyone, and the `client_id` binding would mean nothing.
        if !client.is_confidential() {
            return Err(Refusal {
                outcome: "client",
                error: OAuthError::unauthorized_client(
                    "the jwt-bearer grant is for clients that authenticate (a secret or private_key_jwt)",
                ),
            });
        }
        let assertion = params.get("assertion").ok_or_else(|| Refusal {
            outcome: "malformed",
            error: OAuthError::invalid_request("assertion is required (the ID-JAG)"),
        })?;
        let jag = self.verify(core, assertion).await?;
        let text = |name: &str| jag.claims.get(name).and_then(Value::as_str);
        if text("client_id") != Some(client.client_id.as_str()) {
            return Err(refused("client", "its `client_id` is not the client that authenticated"));
        }
        let allowed = &jag.idp.settings.allowed_clients;
        if !allowed.is_empty() && !allowed.contains(&client.client_id) {
            return Err(refused("client", "this identity provider may not issue grants to this client"));
        }
        if let Some(resource) = params.get("resource")
            && core.resources.resolve(Some(resource)).ok().as_deref() != Some(jag.resource.as_str())
        {
            return Err(Refusal {
                outcome: "resource",
                error: OAuthError::invalid_target("resource differs from the ID-JAG's `resource`"),
            });
        }
        self.spend(core, &jag).await?;
        let account = self.account(core, &jag).await?;
        let scopes = grant_scopes(core, &account, text("scope"), params.get("scope"))?;
        tracing::info!(
            idp = %jag.idp.settings.issuer, idp_sub = %jag.sub, sub = %account.subject,
            client_id = %client.client_id, "ID-JAG accepted"
        );
        Ok(Accepted { account, resource: jag.resource, scopes })
    }

    /// The signature and claims of an ID-JAG (not its `jti`, nor its client).
    async fn verify<'a>(&'a self, core: &Core, assertion: &str) -> Result<IdJag<'a>, Refusal> {
        let parsed = parse_jws(assertion).map_err(|problem| refused("malformed", problem))?;
        if parsed.header.crit.is_some() {
            return Err(refused("malformed", "critical header parameters are not supported"));
        }
        // Section 5.1: "Validate the JWT `typ` is `oauth-id-jag+jwt`". A media type: compared
        // without case, and `application/` may be left out (RFC 7515 section 4.1.9).
        let typ = parsed.header.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ.strip_prefix("application/").unwrap_or(&typ) != ID_JAG_TYPE {
            return Err(refused("typ", format!("the header `typ` must be `{ID_JAG_TYPE}`")));
        }
        let claims = parsed.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let iss = text("iss").ok_or_else(|| refused("malformed", "`iss` is required"))?;
        let idp = self
            .idps
            .iter()
            .find(|idp| idp.settings.issuer == iss)
            .ok_or_else(|| refused("untrusted_issuer", format!("`{iss}` is not a trusted identity provider")))?;
        let alg = JwtAlgorithm::from_name(&parsed.header.alg)
            .filter(|alg| idp.settings.algorithms.contains(alg))
            .ok_or_else(|| refused("signature", format!("algorithm `{}` is not accepted", parsed.header.alg)))?;
        let kid = parsed.header.kid.as_deref();
        let (generation, mut keys) = idp.keys.snapshot();
        if let Some(kid) = kid
            && keys.get(kid).is_none()
            && idp.keys.refresh_on_miss(generation).await
        {
            keys = idp.keys.current();
        }
        let key = match kid {
            Some(kid) => {
                keys.get(kid).ok_or_else(|| refused("signature", format!("no key of the IdP has kid `{kid}`")))?
            }
            None => {
                keys.sole().ok_or_else(|| refused("signature", "the IdP has several keys: the header needs a `kid`"))?
            }
        };
        if !key.verify(alg, parsed.signing_input.as_bytes(), &parsed.signature) {
            return Err(refused("signature", "bad signature"));
        }
        // Section 5.1: `aud` MUST identify this authorization server's issuer URL.
        let ours = |aud: &Value| {
            aud.as_str().is_some_and(|aud| aud.trim_end_matches('/') == core.issuer.trim_end_matches('/'))
        };
        let aud_ok = match claims.get("aud") {
            Some(Value::Array(auds)) => auds.iter().any(ours),
            Some(aud) => ours(aud),
            None => false,
        };
        if !aud_ok {
            return Err(refused("audience", format!("`aud` must be this authorization server ({})", core.issuer)));
        }
        let resource = text("resource").ok_or_else(|| refused("resource", "`resource` is required"))?;
        let resource = core
            .resources
            .resolve(Some(resource))
            .map_err(|_| refused("resource", format!("this server issues no tokens for the resource {resource}")))?;
        let sub = text("sub").filter(|s| !s.is_empty()).ok_or_else(|| refused("malformed", "`sub` is required"))?;
        for name in ["client_id", "jti"] {
            if text(name).is_none_or(str::is_empty) {
                return Err(refused("malformed", format!("`{name}` is required")));
            }
        }
        let date = |name: &'static str| match claims.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_i64()
                .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
                .map(Some)
                .ok_or_else(|| refused("malformed", format!("`{name}` must be a number of seconds"))),
        };
        let now = now();
        let exp = date("exp")?.ok_or_else(|| refused("malformed", "`exp` is required"))?;
        let iat = date("iat")?.ok_or_else(|| refused("malformed", "`iat` is required"))?;
        if now > exp.saturating_add(self.leeway) {
            return Err(refused("expired", "expired (`exp`)"));
        }
        if exp > now.saturating_add(MAX_LIFETIME_SECS + self.leeway) {
            return Err(refused("malformed", format!("`exp` is more than {MAX_LIFETIME_SECS} s ahead")));
        }
        if iat > now.saturating_add(self.leeway) {
            return Err(refused("malformed", "issued in the future (`iat`)"));
        }
        if date("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(refused("malformed", "not valid yet (`nbf`)"));
        }
        let sub = sub.to_owned();
        Ok(IdJag { idp, claims, sub, resource })
    }

    /// Records the ID-JAG's `jti` (per IdP) until it expires; refused when it was seen before.
    async fn spend(&self, core: &Core, jag: &IdJag<'_>) -> Result<(), Refusal> {
        let jti = jag.claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        let exp = jag.claims.get("exp").and_then(Value::as_f64).unwrap_or_default() as i64;
        let ttl = Duration::from_secs((exp + self.leeway - now()).max(1) as u64);
        let key = digest(&format!("{}\n{jti}", jag.idp.settings.issuer));
        if !core.store.spend_id_jag(&key, ttl).await? {
            return Err(refused("replayed", "this `jti` was already used: an ID-JAG is accepted once"));
        }
        Ok(())
    }

    /// The account the ID-JAG speaks for: linked by `sub`, then by verified e-mail, then provisioned.
    async fn account(&self, core: &Core, jag: &IdJag<'_>) -> Result<Account, Refusal> {
        let idp = &jag.idp.settings;
        let link = digest(&format!("{}\n{}", idp.issuer, jag.sub));
        if let Some(username) = core.store.linked_user(&link).await? {
            if let Some(account) = core.users.account(&username) {
                core.store.link_user(&link, &account.username, LINK_TTL).await?;
                return Ok(account);
            }
            tracing::warn!(idp = %idp.issuer, %username, "an enterprise identity is linked to a user who is gone");
        }
        let text = |name: &str| jag.claims.get(name).and_then(Value::as_str);
        let verified_email = text("email").filter(|_| jag.claims.get("email_verified") == Some(&Value::Bool(true)));
        if idp.link_by_email
            && let Some(account) = verified_email.and_then(|email| core.users.by_email(email))
        {
            core.store.link_user(&link, &account.username, LINK_TTL).await?;
            tracing::info!(idp = %idp.issuer, idp_sub = %jag.sub, user = %account.username, "enterprise identity linked by e-mail");
            return Ok(account);
        }
        if !idp.provision_users {
            return Err(refused("unknown_user", "no user here is linked to this identity (`sub`, verified `email`)"));
        }
        let subject = format!("{}#{}", idp.issuer, jag.sub);
        if core.users.has(&subject) {
            return Err(refused("unknown_user", "the provisioned identity's name is taken by a configured user"));
        }
        let username = verified_email.unwrap_or(&jag.sub).to_owned();
        let name = text("name").filter(|n| !n.trim().is_empty()).unwrap_or(&username).to_owned();
        Ok(Account { subject, username, name, roles: idp.provision_roles.clone() })
    }
}

/// The scopes to grant: the ID-JAG's `scope` (or, without one, all the roles permit), every one
/// permitted by the account's roles, narrowed by the request's `scope` parameter.
fn grant_scopes(
    core: &Core,
    account: &Account,
    carried: Option<&str>,
    asked: Option<&str>,
) -> Result<Vec<String>, Refusal> {
    let scope_error = |description: String| Refusal { outcome: "scope", error: OAuthError::invalid_scope(description) };
    let permitted = core.grants.permitted(&account.roles);
    let granted: BTreeSet<String> = match core.grants.requested(carried) {
        None => permitted,
        Some(carried) => {
            if let Some(denied) = carried.iter().find(|s| !permitted.contains(*s)) {
                return Err(scope_error(format!("the ID-JAG carries {denied}, which this user's roles do not permit")));
            }
            carried
        }
    };
    let granted: Vec<String> = match asked.and_then(|scope| core.grants.requested(Some(scope))) {
        None => granted.into_iter().collect(),
        Some(asked) => {
            if let Some(extra) = asked.iter().find(|s| !granted.contains(*s)) {
                return Err(scope_error(format!("{extra} is not granted by the ID-JAG")));
            }
            asked.into_iter().collect()
        }
    };
    if granted.is_empty() {
        return Err(scope_error("no scope this server knows is granted".into()));
    }
    Ok(granted)
}

/// Refreshes an IdP's keys every `interval`, while they are in use.
fn spawn_refresher(keys: Weak<RemoteKeys>, interval: Duration) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(keys) = keys.upgrade() else { break };
            keys.refresh().await;
        }
    });
}
