//! Dynamic client registration (feature `issuer`; RFC 7591), for clients of MCP revisions before
//! client ID metadata documents. Anyone may register, so a registration grants nothing by itself:
//! the client still needs a person to sign in and consent, its redirect URIs are held to the same
//! rules as everyone's, its name is shown as unverified, and it may only use the authorization
//! code and refresh token grants (and, with a secret where enterprise IdPs are trusted, the JWT
//! bearer grant: ID-JAGs, which only an IdP that knows its client_id issues).
//!
//! A registration states its `application_type` (SEP-837, from OpenID Connect Dynamic Client
//! Registration): `native` (an app on the person's device: loopback or private-use scheme
//! redirect URIs, or https ones it claims) or `web` (a website: https redirect URIs on a host that
//! is not this computer), and its redirect URIs must fit it. One that states none gets the type its
//! redirect URIs imply, and the answer says which; with `issuer.require_application_type` it is
//! refused instead.
//!
//! Anyone may register, so registrations are bounded: per client address per hour
//! (`issuer.registrations_per_address_per_hour`), in size (a few short redirect URIs, a short
//! name), and in number and time: at most `issuer.max_registered_clients` not used yet, the oldest
//! making room, each forgotten `issuer.unused_registration_ttl_secs` after registering unless it
//! gets tokens (then it is kept while used; see `store::IssuerStore::client_used`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::clients::check_redirect_uri;
use super::error::OAuthError;
use super::store::RegisteredClient;
use super::{Core, digest, now, random_token};
use crate::config::JWT_BEARER;

/// The longest redirect URI a registration may list, in bytes (shorter than what the
/// configuration may use: anyone can register).
const MAX_REGISTERED_URI_BYTES: usize = 512;

/// Most redirect URIs one registration may list, and the longest name it may give itself.
pub const MAX_REDIRECT_URIS: usize = 8;
pub const MAX_NAME_CHARS: usize = 100;

/// `POST /register`.
pub(super) async fn register(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let address = core.address(&headers, peer.map(|Extension(ConnectInfo(addr))| addr));
    match handle(&core, &address, &body).await {
        Ok(body) => {
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}

fn strings(metadata: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match metadata.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| OAuthError::invalid_client_metadata(format!("{name} must be an array of strings"))),
        Some(_) => Err(OAuthError::invalid_client_metadata(format!("{name} must be an array of strings"))),
    }
}

/// Whether a redirect URI belongs to a website: https on a host that is not this computer.
fn is_web_redirect(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|url| {
        url.scheme() == "https"
            && url.host().is_some_and(|host| match host {
                url::Host::Domain(name) => !name.eq_ignore_ascii_case("localhost"),
                url::Host::Ipv4(ip) => !ip.is_loopback(),
                url::Host::Ipv6(ip) => !ip.is_loopback(),
            })
    })
}

/// The registration's `application_type` (SEP-837), checked against its redirect URIs (already
/// valid redirect URIs): a web application's must all be websites; a native application may use
/// any valid one (loopback, a private-use scheme, or an https URL it claims). Without one, `web`
/// when every redirect URI is a website's, else `native`; or a refusal when one is `required`.
fn application_type(
    metadata: &Map<String, Value>,
    redirect_uris: &[String],
    required: bool,
) -> Result<&'static str, OAuthError> {
    let all_web = redirect_uris.iter().all(|uri| is_web_redirect(uri));
    match metadata.get("application_type") {
        None | Some(Value::Null) if required => Err(OAuthError::invalid_client_metadata(
            "application_type is required (SEP-837): native for an app on the person's device, web for a website",
        )),
        None | Some(Value::Null) => Ok(if all_web { "web" } else { "native" }),
        Some(Value::String(kind)) if kind == "native" => Ok("native"),
        Some(Value::String(kind)) if kind == "web" => match redirect_uris.iter().find(|uri| !is_web_redirect(uri)) {
            None => Ok("web"),
            Some(uri) => Err(OAuthError::invalid_redirect_uri(format!(
                "`{uri}`: a web application's redirect URIs are https on a host that is not this computer; \
                 an app on the person's device registers with application_type native"
            ))),
        },
        Some(_) => Err(OAuthError::invalid_client_metadata("application_type must be native or web")),
    }
}

async fn handle(core: &Core, address: &str, body: &[u8]) -> Result<Value, OAuthError> {
    let hour = Duration::from_secs(3600);
    let counted = core.store.count(&format!("register/{address}"), hour).await?;
    if counted.count > u64::from(core.settings.registrations_per_address_per_hour) {
        tracing::warn!(%address, "registration rate limit reached");
        let wait = counted.resets_in.as_secs().max(1);
        return Err(OAuthError::too_many(
            "invalid_client_metadata",
            format!("too many registrations from this address; try again in {wait} s"),
            wait,
        ));
    }
    let metadata: Value =
        serde_json::from_slice(body).map_err(|_| OAuthError::invalid_client_metadata("the body must be JSON"))?;
    let metadata =
        metadata.as_object().ok_or_else(|| OAuthError::invalid_client_metadata("the body must be a JSON object"))?;

    let redirect_uris = strings(metadata, "redirect_uris")?.unwrap_or_default();
    if redirect_uris.is_empty() || redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::invalid_redirect_uri(format!("redirect_uris must list 1 to {MAX_REDIRECT_URIS} URIs")));
    }
    for uri in &redirect_uris {
        if uri.len() > MAX_REGISTERED_URI_BYTES {
            return Err(OAuthError::invalid_redirect_uri(format!(
                "a registered redirect URI is at most {MAX_REGISTERED_URI_BYTES} characters"
            )));
        }
        check_redirect_uri(uri, &core.settings.redirect_schemes).map_err(OAuthError::invalid_redirect_uri)?;
    }
    let application_type = application_type(metadata, &redirect_uris, core.settings.require_application_type)?;
    // RFC 7591 section 2: the default method is client_secret_basic.
    let method = match metadata.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => "client_secret_basic",
        Some(Value::String(method)) => match method.as_str() {
            "none" => "none",
            "client_secret_basic" => "client_secret_basic",
            "client_secret_post" => "client_secret_post",
            // Anonymous registrations naming keys would make this server fetch any URL anyone
            // registers, and keep keys it cannot rotate (no RFC 7592 management here): clients
            // with keys publish them in a client ID metadata document, or are configured.
            "private_key_jwt" => {
                return Err(OAuthError::invalid_client_metadata(
                    "private_key_jwt cannot be registered dynamically: use a client ID metadata document with \
                     jwks_uri, or ask the operator to configure the client",
                ));
            }
            other => {
                return Err(OAuthError::invalid_client_metadata(format!(
                    "token_endpoint_auth_method {other} is not supported (none, client_secret_basic, client_secret_post)"
                )));
            }
        },
        Some(_) => return Err(OAuthError::invalid_client_metadata("token_endpoint_auth_method must be a string")),
    };
    let grant_types = strings(metadata, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".to_owned()]);
    // The JWT bearer grant with ID-JAGs, where enterprise IdPs are trusted: the extension lets a
    // client register "at this stage" (Enterprise-Managed Authorization section 5), and it must
    // authenticate (see `enterprise`); an ID-JAG names the client_id, so the IdP decides anyway.
    let id_jags = !core.enterprise.is_empty() && method != "none";
    let registrable =
        |grant: &str| matches!(grant, "authorization_code" | "refresh_token") || (id_jags && grant == JWT_BEARER);
    if let Some(other) = grant_types.iter().find(|g| !registrable(g)) {
        let known =
            if id_jags { "authorization_code, refresh_token, jwt-bearer" } else { "authorization_code, refresh_token" };
        return Err(OAuthError::invalid_client_metadata(format!(
            "grant type {other} cannot be registered here ({known})"
        )));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(OAuthError::invalid_client_metadata("grant_types must include authorization_code"));
    }
    let response_types = strings(metadata, "response_types")?.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|t| t != "code") {
        return Err(OAuthError::invalid_client_metadata("only the code response type is supported"));
    }
    let name = match metadata.get("client_name") {
        None | Some(Value::Null) => "Unnamed application".to_owned(),
        Some(Value::String(name)) if !name.trim().is_empty() && name.chars().count() <= MAX_NAME_CHARS => {
            name.trim().to_owned()
        }
        Some(_) => {
            return Err(OAuthError::invalid_client_metadata(format!(
                "client_name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
    };

    let client_id = random_token();
    let secret = (method != "none").then(random_token);
    let client = RegisteredClient {
        client_id: client_id.clone(),
        name: name.clone(),
        redirect_uris: redirect_uris.clone(),
        grant_types: grant_types.clone(),
        secret_digest: secret.as_deref().map(digest),
        registered_at: now(),
    };
    let ttl = Duration::from_secs(core.settings.unused_registration_ttl_secs);
    let evicted = core.store.register(&client, ttl, core.settings.max_registered_clients).await?;
    if !evicted.is_empty() {
        tracing::info!(evicted = evicted.len(), "the oldest unused registrations made room");
    }
    tracing::info!(%client_id, client_name = %name, method, "client registered");
    let mut body = json!({
        "client_id": client_id,
        "client_id_issued_at": now(),
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": method,
        "application_type": application_type,
    });
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(body)
}
