//! The token endpoint (feature `issuer`): client authentication, then one of three grants.
//!
//! - `authorization_code`: the code is spent first (single use), then everything it is bound to
//!   is checked: client, redirect URI, PKCE verifier, resource. A code presented a second time
//!   revokes the tokens issued from it, refresh and access tokens (RFC 6749 section 4.1.2,
//!   RFC 9700 section 4.5).
//! - `refresh_token`: rotated on every use. A refresh token that was already used means two
//!   parties hold it: the whole family (every token descending from one authorization) is revoked.
//! - `client_credentials`: confidential clients of the configuration, acting as themselves with
//!   their configured roles.
//! - `urn:ietf:params:oauth:grant-type:jwt-bearer` with an ID-JAG (Enterprise-Managed
//!   Authorization, when `[[issuer.enterprise_idps]]` are configured): checked by
//!   [`super::enterprise`]; an access token for the linked user, no refresh token.
//!
//! Client authentication: `none` (public clients, with PKCE), `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (a signed `client_assertion`, see
//! [`super::assertion`]); one method per request, the one the client is registered with.
//!
//! Access tokens are JWTs signed with the `jwt` layer's key, for exactly one resource (`aud`),
//! with the granted `scope`, the user's `roles`, `client_id`, `preferred_username`, `name`, and
//! the id of their grant (`grant_id`, see `jwt::revoked`): the family of a code's tokens, or, for
//! `client_credentials`, a grant of the one token, so that every access token from here can be
//! revoked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Extension, Form, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::accounts::Busy;
use super::assertion::{self, ASSERTION_TYPE};
use super::clients::{Client, Origin, Secret};
use super::error::OAuthError;
use super::store::{Account, Redeemed, RefreshToken};
use super::{ClientError, Core, Params, digest, now, random_token};
use crate::config::{JWT_BEARER, TOKEN_EXCHANGE_GRANT};
use crate::jwt::revoked::{GRANT_CLAIM, grant_id};

/// `POST /token`.
pub(super) async fn token(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let address = core.address(&headers, peer.map(|Extension(ConnectInfo(addr))| addr));
    // The grant as sent, for the metric (observe keeps only the ones implemented).
    let grant = match &form {
        Ok(Form(pairs)) if crate::observe::enabled() => {
            pairs.iter().find(|(name, _)| name == "grant_type").map(|(_, value)| value.clone())
        }
        _ => None,
    };
    let handled = handle(&core, &address, &headers, form).await;
    if let Some(grant) = grant {
        crate::observe::issuer_token(&grant, handled.as_ref().map_or_else(|error| error.error, |_| "issued"));
    }
    match handled {
        Ok(body) => no_store(Json(body).into_response()),
        Err(error) => error.into_response(),
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as on every answer about tokens (here, at
/// `/revoke` and at `/introspect`).
pub(super) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn handle(
    core: &Core,
    address: &str,
    headers: &HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Value, OAuthError> {
    let Form(pairs) =
        form.map_err(|_| OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"))?;
    let params = Params::new(pairs);
    if let Some(name) = params.repeated() {
        return Err(if name == "resource" {
            OAuthError::invalid_target("one resource per token request")
        } else {
            OAuthError::invalid_request(format!("parameter {name} is repeated"))
        });
    }
    let grant_type = params.get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let jwt_bearer = grant_type == JWT_BEARER && !core.enterprise.is_empty();
    if !jwt_bearer
        && !matches!(grant_type, "authorization_code" | "refresh_token" | "client_credentials" | TOKEN_EXCHANGE_GRANT)
    {
        return Err(OAuthError::unsupported_grant_type(format!("grant_type {grant_type} is not supported")));
    }
    let client = authenticate(core, address, headers, &params).await?;
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(format!("this client may not use the {grant_type} grant")));
    }
    let body = match grant_type {
        "authorization_code" => authorization_code(core, &client, &params).await?,
        "refresh_token" => refresh_token(core, &client, &params).await?,
        JWT_BEARER => id_jag(core, &client, &params).await?,
        TOKEN_EXCHANGE_GRANT => super::exchange::token_exchange(core, &client, &params).await?,
        _ => client_credentials(core, &client, &params).await?,
    };
    // A registration that got tokens is in use: kept while it is used, not evicted by new ones.
    if client.origin == Origin::Registered
        && let Some(registered) = core.store.registered(&client.client_id).await?
    {
        let idle = Duration::from_secs(core.settings.idle_registration_ttl_secs);
        core.store.client_used(&registered, idle, core.settings.max_used_clients).await?;
    }
    Ok(body)
}

/// Who is asking: one authentication method, checked against how the client is registered.
/// Secret and assertion attempts are counted per client and per client address before they are
/// checked (`issuer.client_secret_max_attempts` per `issuer.login_window_secs`); a success clears
/// the client's count.
pub(super) async fn authenticate(
    core: &Core,
    address: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, OAuthError> {
    let basic = basic_credentials(headers)?;
    let assertion = match (params.get("client_assertion_type"), params.get("client_assertion")) {
        (None, None) => None,
        (Some(ASSERTION_TYPE), Some(assertion)) => Some(assertion),
        (Some(ASSERTION_TYPE), None) => {
            return Err(OAuthError::invalid_client("client_assertion is required with client_assertion_type"));
        }
        (Some(other), _) => {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type {other} is not supported (only {ASSERTION_TYPE})"
            )));
        }
        (None, Some(_)) => return Err(OAuthError::invalid_client("client_assertion needs its client_assertion_type")),
    };
    if let Some(assertion) = assertion {
        if basic.is_some() || params.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        return authenticate_assertion(core, address, params, assertion).await;
    }
    let (client_id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request("client_id differs from the Authorization header"));
            }
            (id, Some(secret))
        }
        (None, secret) => {
            let id =
                params.get("client_id").ok_or_else(|| OAuthError::invalid_client("client authentication required"))?;
            (id.to_owned(), secret.map(str::to_owned))
        }
    };
    let client = find(core, &client_id).await?;
    let secret = match (&client.secret, secret) {
        (Secret::PrivateKeyJwt(_), None) => {
            return Err(OAuthError::invalid_client(
                "this client must authenticate with private_key_jwt (a signed client_assertion)",
            ));
        }
        (Secret::PrivateKeyJwt(_), Some(_)) => {
            // Counted like a wrong secret: it is a guess at a credential this client does not have.
            count_attempt(core, address, &client).await?;
            return Err(OAuthError::invalid_client(
                "this client authenticates with private_key_jwt (a signed client_assertion), not a secret",
            ));
        }
        (Secret::None, None) => return Ok(client),
        (Secret::None, Some(_)) => {
            return Err(OAuthError::invalid_client("a public client authenticates with PKCE, not a secret"));
        }
        (_, None) => return Err(OAuthError::invalid_client("this client must authenticate with its secret")),
        (_, Some(secret)) => secret,
    };
    let client_key = count_attempt(core, address, &client).await?;
    let ok = match &client.secret {
        Secret::Argon2(hash) => core.users.check_secret(hash.expose_secret(), &secret).await.map_err(|Busy| {
            OAuthError::temporarily_unavailable("this server is checking too many secrets right now; try again shortly")
        })?,
        Secret::Digest(expected) => digest(&secret).as_bytes().ct_eq(expected.as_bytes()).into(),
        Secret::None | Secret::PrivateKeyJwt(_) => false,
    };
    if !ok {
        tracing::warn!(client_id = %client.client_id, "client authentication failed");
        return Err(OAuthError::invalid_client("client authentication failed"));
    }
    core.store.reset(&client_key).await?;
    Ok(client)
}

/// `private_key_jwt`: the client the assertion names (`sub`), its registration for this method,
/// then the assertion itself, counted as an attempt like a secret.
async fn authenticate_assertion(
    core: &Core,
    address: &str,
    params: &Params,
    assertion: &str,
) -> Result<Client, OAuthError> {
    let client_id = assertion::claimed_client(assertion)?;
    if params.get("client_id").is_some_and(|id| id != client_id) {
        return Err(OAuthError::invalid_client("client_id differs from the client assertion's `sub`"));
    }
    let client = find(core, &client_id).await?;
    let client_key = count_attempt(core, address, &client).await?;
    let Secret::PrivateKeyJwt(keys) = &client.secret else {
        return Err(OAuthError::invalid_client(
            "this client is not registered for private_key_jwt: it authenticates as it was registered",
        ));
    };
    if let Err(error) = core.assertions.verify(core, &client, keys, assertion).await {
        tracing::warn!(client_id = %client.client_id, reason = %error.description, "client assertion refused");
        return Err(error);
    }
    core.store.reset(&client_key).await?;
    Ok(client)
}

/// The client named `client_id`, or `invalid_client`.
async fn find(core: &Core, client_id: &str) -> Result<Client, OAuthError> {
    match core.client(client_id).await {
        Ok(client) => Ok(client),
        Err(ClientError::Unknown(_)) => Err(OAuthError::invalid_client("unknown client")),
        Err(ClientError::Store(err)) => Err(err.into()),
    }
}

/// Counts an authentication attempt of `client` from `address` before it is checked; refused
/// beyond the limits. Returns the client's counter, which a success clears.
async fn count_attempt(core: &Core, address: &str, client: &Client) -> Result<String, OAuthError> {
    let window = Duration::from_secs(core.settings.login_window_secs);
    let max = u64::from(core.settings.client_secret_max_attempts);
    let client_key = format!("secret-client/{}", digest(&client.client_id));
    for key in [client_key.clone(), format!("secret-address/{address}")] {
        let counted = core.store.count(&key, window).await?;
        if counted.count > max {
            tracing::warn!(client_id = %client.client_id, %address, "client secret attempt limit reached");
            let wait = counted.resets_in.as_secs().max(1);
            return Err(OAuthError::too_many(
                "invalid_client",
                format!("too many client authentication attempts; try again in {wait} s"),
                wait,
            ));
        }
    }
    Ok(client_key)
}

/// `Authorization: Basic` credentials, form-urlencoded inside (RFC 6749 section 2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let malformed = || OAuthError::invalid_request("malformed Authorization header");
    if values.next().is_some() {
        return Err(malformed());
    }
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "only Basic client authentication is accepted in the Authorization header",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let (id, secret) = (percent_decode(id).ok_or_else(malformed)?, percent_decode(secret).ok_or_else(malformed)?);
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

/// Decodes `application/x-www-form-urlencoded` escapes (`%XX`, `+`).
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Whether `verifier` is a valid PKCE verifier whose S256 challenge is `challenge` (compared in
/// constant time, like the client secret digests above).
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(expected.as_bytes().ct_eq(challenge.as_bytes()))
}

async fn authorization_code(core: &Core, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    let code = params.get("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier =
        params.get("code_verifier").ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    // Spent before anything else is checked: a failed attempt burns the code too.
    let code = match core.store.redeem_code(&digest(code)).await? {
        Redeemed::Fresh(code) => code,
        Redeemed::Replayed { family } => {
            core.revoke_family(&family, "code_replay").await?;
            tracing::warn!(client_id = %client.client_id, "authorization code replayed; its tokens are revoked");
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        Redeemed::Unknown => return Err(OAuthError::invalid_grant("unknown or expired authorization code")),
    };
    if code.expires_at < now() {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    if code.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
    }
    let redirect_uri = params.get("redirect_uri");
    if (code.redirect_uri_given || redirect_uri.is_some()) && redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
    }
    if !pkce_matches(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant("code_verifier does not match the code_challenge"));
    }
    if let Some(resource) = params.get("resource")
        && core.resources.resolve(Some(resource)).ok().as_deref() != Some(code.resource.as_str())
    {
        return Err(OAuthError::invalid_target("resource differs from the authorization request"));
    }
    let grant = Grant { family: &code.family, refresh: code.refresh && client.allows_grant("refresh_token") };
    issue(core, &code.account, &client.client_id, &code.resource, &code.scopes, &code.scopes, grant).await
}

async fn refresh_token(core: &Core, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    let presented =
        params.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let key = digest(presented);
    // What the request asks is checked against the token before it is spent, so a request that
    // is refused (a wider scope, another resource) leaves the token usable and its family intact.
    // Unknown, expired or revoked ends here, unspent; a spent token is still found, and spending
    // it again below is the reuse that revokes its family.
    let Some(token) = core.store.refresh_token(&key).await? else {
        return Err(OAuthError::invalid_grant("unknown, expired or revoked refresh token"));
    };
    if token.client_id != client.client_id {
        core.revoke_family(&token.family, "wrong_client").await?;
        return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
    }
    requested_scopes(params, &token)?;
    check_resource(core, params, &token)?;
    match core.store.redeem_refresh(&key).await? {
        Redeemed::Fresh(_) => core.store.mark_rotated(&key, &token).await?,
        Redeemed::Replayed { family } => {
            core.revoke_family(&family, "refresh_reuse").await?;
            tracing::warn!(client_id = %client.client_id, "refresh token reused; its family is revoked");
            crate::observe::issuer_refresh_reuse_detected();
            return Err(OAuthError::invalid_grant("refresh token already used; every token of this grant is revoked"));
        }
        Redeemed::Unknown => return Err(OAuthError::invalid_grant("unknown, expired or revoked refresh token")),
    }
    if token.expires_at < now() {
        return Err(OAuthError::invalid_grant("refresh token expired"));
    }
    let scopes = requested_scopes(params, &token)?;
    let grant = Grant { family: &token.family, refresh: true };
    issue(core, &token.account, &client.client_id, &token.resource, &scopes, &token.scopes, grant).await
}

/// The scopes of a refreshed access token: a narrower `scope` when asked (RFC 6749 section 6),
/// never one the grant does not hold; the grant itself stays.
fn requested_scopes(params: &Params, token: &RefreshToken) -> Result<Vec<String>, OAuthError> {
    match params.get("scope") {
        None => Ok(token.scopes.clone()),
        Some(scope) => {
            let asked: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
            if let Some(extra) = asked.iter().find(|s| !token.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!("{extra} was not granted")));
            }
            Ok(asked)
        }
    }
}

fn check_resource(core: &Core, params: &Params, token: &RefreshToken) -> Result<(), OAuthError> {
    if let Some(resource) = params.get("resource")
        && core.resources.resolve(Some(resource)).ok().as_deref() != Some(token.resource.as_str())
    {
        return Err(OAuthError::invalid_target("resource differs from the original grant"));
    }
    Ok(())
}

async fn client_credentials(core: &Core, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    if !client.is_confidential() || client.roles.is_empty() {
        return Err(OAuthError::unauthorized_client("client_credentials is for confidential clients with roles"));
    }
    let mut allowed = core.grants.permitted(&client.roles);
    if !client.scopes.is_empty() {
        allowed.retain(|s| client.scopes.contains(s));
    }
    let scopes: Vec<String> = match core.grants.requested(params.get("scope")) {
        None => allowed.into_iter().collect(),
        Some(requested) => requested.into_iter().filter(|s| allowed.contains(s)).collect(),
    };
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("none of the requested scopes is available to this client"));
    }
    let resource = core.resources.resolve(params.get("resource")).map_err(OAuthError::invalid_target)?;
    let account = Account {
        subject: client.client_id.clone(),
        username: client.client_id.clone(),
        name: client.name.clone(),
        roles: client.roles.clone(),
    };
    // A grant of its own, so that this one token can be revoked; no refresh token.
    let family = random_token();
    issue(core, &account, &client.client_id, &resource, &scopes, &scopes, Grant { family: &family, refresh: false })
        .await
}

/// The JWT bearer grant with an ID-JAG: the account and scopes [`super::enterprise`] found, under
/// a grant of its own (revocable), without a refresh token (see there why).
async fn id_jag(core: &Core, client: &Client, params: &Params) -> Result<Value, OAuthError> {
    let accepted = core.enterprise.accept(core, client, params).await?;
    let family = random_token();
    let scopes = &accepted.scopes;
    let grant = Grant { family: &family, refresh: false };
    issue(core, &accepted.account, &client.client_id, &accepted.resource, scopes, scopes, grant).await
}

/// The grant a token is issued under: its family, and whether a refresh token continues it.
struct Grant<'a> {
    family: &'a str,
    refresh: bool,
}

/// Signs an access token for `scopes` naming its grant, and, when the grant is refreshed, a new
/// refresh token for the `granted` scopes.
async fn issue(
    core: &Core,
    account: &Account,
    client_id: &str,
    resource: &str,
    scopes: &[String],
    granted: &[String],
    grant: Grant<'_>,
) -> Result<Value, OAuthError> {
    let now = now();
    let ttl = core.settings.access_token_ttl_secs as i64;
    let scope = scopes.join(" ");
    let mut claims = json!({
        "iss": core.issuer,
        "sub": account.subject,
        "aud": resource,
        "iat": now,
        "exp": now + ttl,
        "jti": random_token(),
        "scope": scope,
        "client_id": client_id,
        "roles": account.roles,
        "preferred_username": account.username,
        "name": account.name,
    });
    claims[GRANT_CLAIM] = json!(grant_id(grant.family));
    let access_token = core.keys.sign(&claims).map_err(OAuthError::server_error)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    if grant.refresh {
        let refresh = random_token();
        let record = RefreshToken {
            family: grant.family.to_owned(),
            issued_at: now,
            client_id: client_id.to_owned(),
            resource: resource.to_owned(),
            scopes: granted.to_vec(),
            account: account.clone(),
            expires_at: now + core.settings.refresh_token_ttl_secs as i64,
        };
        // A family revoked since the token was spent (the reuse this rotation raced): the grant
        // ends here, without a successor, and the access token is refused at its first use
        // (the resource server finds its grant revoked).
        if core.store.save_refresh(&digest(&refresh), &record).await? {
            body["refresh_token"] = json!(refresh);
        } else {
            tracing::warn!(client_id, "grant revoked during its rotation; no new refresh token");
        }
    }
    tracing::info!(client_id, sub = %account.subject, %scope, aud = resource, "access token issued");
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!pkce_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        assert!(!pkce_matches("short", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        headers.insert(header::AUTHORIZATION, format!("Basic {encoded}").parse().unwrap());
        assert_eq!(basic_credentials(&headers).unwrap(), Some(("my client".into(), "s:cret x".into())));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(basic_credentials(&headers).is_err());
        assert_eq!(percent_decode("%zz"), None);
    }
}
