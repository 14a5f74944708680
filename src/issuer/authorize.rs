//! The authorization endpoint and the two forms behind it (feature `issuer`).
//!
//! `GET /authorize` checks the request in the order RFC 6749 section 4.1.2.1 sets: first the
//! client and its redirect URI — if either cannot be trusted, the person gets an error page and
//! nothing is redirected (no open redirects) — then everything else, whose errors go back to the
//! client in the redirect, with `state` and `iss`. A valid request is kept server-side under a
//! random id, bound to this browser (a cookie) and to an anti-CSRF token that its forms carry;
//! the person then sees the sign-in page (`POST /authorize/login`), or, when already signed in,
//! the consent page (`POST /authorize/consent`). Allowing issues a single-use code and redirects
//! to the client with `code`, `state` and `iss`; denying redirects with `access_denied`.
//!
//! A client nobody has consented to yet (registered or described by a metadata document, so by
//! anyone) is not trusted with error redirects: its errors are shown as a page instead, or
//! anyone could use this server as an open redirector to any address they registered (RFC 9700
//! section 4.11.2). Requests per client address are rate-limited, and each address keeps at most
//! a few pending requests (its oldest make room), so a flood from one address denies no one else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Extension, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use url::Url;

use super::accounts::Busy;
use super::clients::{Destination, Origin};
use super::cookies;
use super::store::{Account, AuthorizationCode, PendingRequest, SignIn};
use super::{ClientError, Core, Params, digest, now, pages, random_token};
use crate::config::RefreshTokens;
use crate::store::StoreError;

/// The validated redirect URI, and what every answer sent there carries.
struct Reply<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
    /// Whether errors may go back to the client without the person doing anything (a configured
    /// client, or one a person has consented to); otherwise they are shown as a page.
    trusted: bool,
}

impl Reply<'_> {
    /// Redirects with `params`, `state` (when the request had one) and `iss` (RFC 9207).
    fn redirect(&self, status: StatusCode, params: &[(&str, &str)]) -> Response {
        let Ok(mut url) = Url::parse(self.redirect_uri) else {
            return error_page(StatusCode::BAD_REQUEST, "Invalid redirect address", "The redirect URI is not a URI.");
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer);
        }
        let Ok(location) = HeaderValue::from_str(url.as_str()) else {
            return error_page(StatusCode::BAD_REQUEST, "Invalid redirect address", "The redirect URI cannot be used.");
        };
        let mut response = status.into_response();
        let headers = response.headers_mut();
        headers.insert(header::LOCATION, location);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }

    /// An error response to the client (RFC 6749 section 4.1.2.1), or, for a client not
    /// trusted yet, a page: no automatic redirect to an address anyone could have registered.
    fn error(&self, status: StatusCode, error: &str, description: &str) -> Response {
        if !self.trusted {
            return error_page(
                StatusCode::BAD_REQUEST,
                "The request cannot be completed",
                &format!("{error}: {description}"),
            );
        }
        tracing::info!(error, description, "authorization request refused");
        self.redirect(status, &[("error", error), ("error_description", description)])
    }
}

/// The store failed: the person is told to try again shortly (503), and nothing changed.
fn unavailable(err: StoreError) -> Response {
    tracing::error!(%err, "the authorization server's store failed");
    let mut response = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "This server cannot complete the request right now. Try again in a moment.",
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// A 429 page with `Retry-After`.
fn too_many(title: &str, message: &str, retry_after: u64) -> Response {
    let mut response = error_page(StatusCode::TOO_MANY_REQUESTS, title, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

/// The anti-CSRF token of a pending request's forms: derived from the browser cookie the request
/// is bound to and the request's id, so it is never stored, and only that browser's pages have it.
fn csrf_token(browser: &str, request: &str) -> String {
    digest(&format!("csrf:{browser}:{request}"))
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    tracing::info!(status = status.as_u16(), title, "authorization request refused with a page");
    pages::error_response(status, title, message)
}

/// Whether a PKCE S256 code challenge is well-formed: 43 base64url characters (a SHA-256 digest).
fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /authorize`.
pub(super) async fn start(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let address = core.address(&headers, peer.map(|Extension(ConnectInfo(addr))| addr));
    let minute = std::time::Duration::from_secs(60);
    match core.store.count(&format!("authorize/{address}"), minute).await {
        Err(err) => return unavailable(err),
        Ok(counted) if counted.count > u64::from(core.settings.authorize_per_address_per_minute) => {
            tracing::warn!(%address, "authorization request rate limit reached");
            let wait = counted.resets_in.as_secs().max(1);
            return too_many(
                "Too many requests",
                "Too many sign-in requests from your address. Try again shortly.",
                wait,
            );
        }
        Ok(_) => {}
    }
    let Ok(Query(pairs)) = query else {
        return error_page(StatusCode::BAD_REQUEST, "Malformed request", "The authorization request cannot be read.");
    };
    let params = Params::new(pairs);
    let client_id = match params.get("client_id") {
        Some(client_id) if !params.is_repeated("client_id") => client_id,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown application",
                "The request does not name exactly one application (client_id).",
            );
        }
    };
    let client = match core.client(client_id).await {
        Ok(client) => client,
        Err(ClientError::Unknown(problem)) => {
            return error_page(StatusCode::BAD_REQUEST, "Unknown application", &problem);
        }
        Err(ClientError::Store(err)) => return unavailable(err),
    };
    let redirect = (!params.is_repeated("redirect_uri")).then(|| client.redirect_for(params.get("redirect_uri")));
    let Some(Some((redirect_uri, redirect_uri_given))) = redirect else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unregistered redirect address",
            "The application asked to receive the answer at an address it did not register (or named none \
             while it registered several). This server only sends answers to registered addresses.",
        );
    };
    let trusted = match client.origin {
        Origin::Configured => true,
        _ => match core.store.was_consented(&client.client_id).await {
            Ok(consented) => consented,
            Err(err) => return unavailable(err),
        },
    };
    let state = params.get("state");
    let reply = Reply { redirect_uri: &redirect_uri, state, issuer: &core.issuer, trusted };

    // From here on the redirect URI is the client's own: errors go back to a trusted client.
    let found = StatusCode::FOUND;
    if let Some(name) = params.repeated() {
        let error = if name == "resource" { "invalid_target" } else { "invalid_request" };
        return reply.error(found, error, &format!("parameter {name} is repeated"));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return reply.error(found, "invalid_request", "response_type is required"),
        Some(_) => return reply.error(found, "unsupported_response_type", "only response_type=code is supported"),
    }
    if !client.allows_grant("authorization_code") {
        return reply.error(found, "unauthorized_client", "this client may not use the authorization code grant");
    }
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        return reply.error(found, "request_not_supported", "request objects are not supported");
    }
    let Some(code_challenge) = params.get("code_challenge") else {
        return reply.error(found, "invalid_request", "code_challenge is required (PKCE with S256)");
    };
    if params.get("code_challenge_method") != Some("S256") {
        return reply.error(found, "invalid_request", "code_challenge_method must be S256");
    }
    if !valid_challenge(code_challenge) {
        return reply.error(found, "invalid_request", "code_challenge must be 43 base64url characters (S256)");
    }
    let resource = match core.resources.resolve(params.get("resource")) {
        Ok(resource) => resource,
        Err(problem) => return reply.error(found, "invalid_target", &problem),
    };
    let session = match current_session(&core, &headers).await {
        Ok(session) => session,
        Err(err) => return unavailable(err),
    };
    if params.get("prompt") == Some("none") {
        let error = if session.is_some() { "consent_required" } else { "login_required" };
        return reply.error(found, error, "this server always asks the person to consent");
    }

    let (browser, new_browser) = match cookies::read(&headers, cookies::BROWSER) {
        Some(browser) => (browser, false),
        None => (random_token(), true),
    };
    let id = random_token();
    // A refresh token only for a client that may redeem one, and with `refresh_tokens =
    // "offline_access"` only when the request asks for that scope too.
    let offline_access =
        params.get("scope").is_some_and(|scope| scope.split_whitespace().any(|s| s == "offline_access"));
    let refresh = client.allows_grant("refresh_token")
        && (core.settings.refresh_tokens == RefreshTokens::Client || offline_access);
    let pending = PendingRequest {
        client_id: client.client_id.clone(),
        client_name: client.name.clone(),
        client_verified: client.origin == Origin::Configured,
        redirect_uri: redirect_uri.clone(),
        redirect_uri_given,
        state: state.map(str::to_owned),
        code_challenge: code_challenge.to_owned(),
        resource,
        scopes: core.grants.requested(params.get("scope")),
        browser: digest(&browser),
        trusted,
        refresh,
        expires_at: now() + core.settings.request_ttl_secs as i64,
    };
    match core.store.save_request(&address, &id, &pending, core.settings.max_pending_per_address).await {
        Ok(evicted) if !evicted.is_empty() => {
            tracing::info!(%address, evicted = evicted.len(), "pending authorization requests evicted by newer ones")
        }
        Ok(_) => {}
        Err(err) => return unavailable(err),
    }
    let csrf = csrf_token(&browser, &id);
    let mut response = match session {
        Some(session) => consent_or_refusal(&core, &id, &csrf, &pending, &session.account).await,
        None => login_page(&core, &id, &csrf, &pending, "", None, StatusCode::OK),
    };
    if new_browser {
        response.headers_mut().append(header::SET_COOKIE, cookies::set(&core, cookies::BROWSER, &browser, None));
    }
    response
}

/// The sign-in of this browser, if any and not expired.
async fn current_session(core: &Core, headers: &HeaderMap) -> Result<Option<SignIn>, StoreError> {
    let Some(token) = cookies::read(headers, cookies::SESSION) else { return Ok(None) };
    Ok(core.store.sign_in(&digest(&token)).await?.filter(|s| s.expires_at >= now()))
}

fn login_page(
    core: &Core,
    id: &str,
    csrf: &str,
    pending: &PendingRequest,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let action = core.path("/authorize/login");
    let html = pages::login(&pages::LoginPage {
        action: &action,
        request: id,
        csrf,
        client_name: &pending.client_name,
        client_verified: pending.client_verified,
        resource_name: &core.resource_name,
        username,
        error,
    });
    pages::respond(status, html, "'self'")
}

/// The consent page, or `invalid_scope` to the client when the account may grant nothing asked for.
async fn consent_or_refusal(
    core: &Core,
    id: &str,
    csrf: &str,
    pending: &PendingRequest,
    account: &Account,
) -> Response {
    let (granted, withheld) = core.grants.grant(pending.scopes.as_ref(), &account.roles);
    let reply = Reply {
        redirect_uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
        issuer: &core.issuer,
        trusted: pending.trusted,
    };
    if granted.is_empty() {
        if let Err(err) = core.store.take_request(id).await {
            return unavailable(err);
        }
        return reply.error(
            StatusCode::FOUND,
            "invalid_scope",
            "none of the requested scopes is available to this account",
        );
    }
    let Ok(redirect) = Url::parse(&pending.redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "Invalid redirect address", "The redirect URI is not a URI.");
    };
    let (destination_kind, destination) = match Destination::of(&redirect) {
        Destination::Website(host) => ("website", host),
        Destination::ThisComputer(address) => ("this_computer", address),
        Destination::App(scheme) => ("app", scheme),
    };
    let mut granted: Vec<(String, String)> = granted
        .into_iter()
        .map(|s| {
            let description = describe(&s).to_owned();
            (s, description)
        })
        .collect();
    if pending.refresh {
        granted.push(("offline_access".to_owned(), describe("offline_access").to_owned()));
    }
    let action = core.path("/authorize/consent");
    let html = pages::consent(&pages::ConsentPage {
        action: &action,
        request: id,
        csrf,
        client_name: &pending.client_name,
        client_id: &pending.client_id,
        client_verified: pending.client_verified,
        destination_kind,
        destination: &destination,
        user_name: &account.name,
        username: &account.username,
        resource: &pending.resource,
        granted: &granted,
        withheld: &withheld,
    });
    // The answer to the consent form redirects to the client: browsers check that against
    // `form-action`, so it names the client's origin (or its private-use scheme).
    let target = match redirect.scheme() {
        "http" | "https" => redirect.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    };
    pages::respond(StatusCode::OK, html, &format!("'self' {target}"))
}

/// What a scope lets the application do, for the consent page.
fn describe(scope: &str) -> &'static str {
    match scope {
        "mcp:read" => "see the tools, prompts and resources this server offers, and read resources",
        "offline_access" => "keep this access while you are away: renew it without asking you again",
        "mcp:tools" => "call tools",
        "mcp:prompts" => "use prompts",
        _ => "a permission this server defines",
    }
}

/// Why a form is not accepted: shown as a page, and nothing changes.
enum Refusal {
    Page { status: StatusCode, title: &'static str, message: &'static str },
    Store(StoreError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Page { status, title, message } => error_page(status, title, message),
            Refusal::Store(err) => unavailable(err),
        }
    }
}

/// The pending request a form (or the consent page) belongs to, if it was sent from the browser
/// that started it and, for forms, carries the request's anti-CSRF token; with that token.
async fn pending_for(
    core: &Core,
    headers: &HeaderMap,
    id: &str,
    csrf: Option<&str>,
) -> Result<(PendingRequest, String), Refusal> {
    let expired = Refusal::Page {
        status: StatusCode::BAD_REQUEST,
        title: "This request has expired",
        message: "The sign-in request has expired or was already answered.",
    };
    let Some(pending) = core.store.request(id).await.map_err(Refusal::Store)? else { return Err(expired) };
    if pending.expires_at < now() {
        core.store.take_request(id).await.map_err(Refusal::Store)?;
        return Err(expired);
    }
    // Both comparisons take the same time wherever the values differ (subtle), so timing tells
    // an attacker nothing about how much of a guess was right.
    let browser = cookies::read(headers, cookies::BROWSER)
        .filter(|b| bool::from(digest(b).as_bytes().ct_eq(pending.browser.as_bytes())));
    let Some(browser) = browser else {
        return Err(Refusal::Page {
            status: StatusCode::FORBIDDEN,
            title: "Request not recognised",
            message: "This form was not sent from the browser that started the sign-in (cookies must be enabled).",
        });
    };
    let expected = csrf_token(&browser, id);
    if let Some(csrf) = csrf
        && (csrf.is_empty() || !bool::from(csrf.as_bytes().ct_eq(expected.as_bytes())))
    {
        return Err(Refusal::Page {
            status: StatusCode::FORBIDDEN,
            title: "Form not accepted",
            message: "The form is missing its security token (protection against cross-site request forgery).",
        });
    }
    Ok((pending, expected))
}

/// The sign-in form.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /authorize/login`: checks the password (within the sign-in limits) and remembers the
/// sign-in in this browser.
pub(super) async fn login(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "Malformed form", "The sign-in form cannot be read.");
    };
    let (pending, csrf) = match pending_for(&core, &headers, &form.request, Some(&form.csrf)).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let address = core.address(&headers, peer.map(|Extension(ConnectInfo(addr))| addr));
    let device = cookies::read(&headers, cookies::DEVICE);
    let device_digest = device.as_deref().map(digest);
    // Counted before the password is checked: concurrent guesses cannot exceed the limits.
    match core.sign_in_limits.admit(&core.store, &address, &form.username, device_digest.as_deref()).await {
        Err(err) => return unavailable(err),
        Ok(Err(refused)) => {
            tracing::warn!(%address, why = refused.why, "sign-in limit reached");
            crate::observe::issuer_sign_in("rate_limited");
            let minutes = refused.retry_after.div_ceil(60);
            let message = format!("Too many sign-in attempts {}. Try again in {minutes} minute(s).", refused.why);
            let mut response = login_page(
                &core,
                &form.request,
                &csrf,
                &pending,
                &form.username,
                Some(&message),
                StatusCode::TOO_MANY_REQUESTS,
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(refused.retry_after));
            return response;
        }
        Ok(Ok(())) => {}
    }
    let account = match core.users.verify(&form.username, &form.password).await {
        Ok(Some(account)) => account,
        Ok(None) => {
            tracing::info!(%address, "sign-in failed");
            crate::observe::issuer_sign_in("wrong_credentials");
            let error = Some("Wrong username or password.");
            return login_page(&core, &form.request, &csrf, &pending, &form.username, error, StatusCode::UNAUTHORIZED);
        }
        Err(Busy) => {
            let mut response = error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "This server is checking too many passwords right now. Try again in a moment.",
            );
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    let device = device.unwrap_or_else(random_token);
    if let Err(err) = core.sign_in_limits.succeeded(&core.store, &account.username, &digest(&device)).await {
        return unavailable(err);
    }
    let token = random_token();
    let ttl = core.settings.session_ttl_secs as i64;
    let username = account.username.clone();
    if let Err(err) = core.store.save_sign_in(&digest(&token), &SignIn { account, expires_at: now() + ttl }).await {
        return unavailable(err);
    }
    tracing::info!(%username, %address, "signed in");
    crate::observe::issuer_sign_in("ok");
    let location = core.path(&format!("/authorize/consent?request={}", form.request));
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).expect("ids are base64url"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(header::SET_COOKIE, cookies::set(&core, cookies::SESSION, &token, Some(ttl)));
    let device_ttl = super::accounts::DEVICE_TTL.as_secs() as i64;
    headers.append(header::SET_COOKIE, cookies::set(&core, cookies::DEVICE, &device, Some(device_ttl)));
    response
}

#[derive(Deserialize)]
pub(super) struct ConsentQuery {
    #[serde(default)]
    request: String,
}

/// `GET /authorize/consent`: where the sign-in form leads.
pub(super) async fn consent_page(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    query: Result<Query<ConsentQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_page(StatusCode::BAD_REQUEST, "Malformed request", "The request cannot be read.");
    };
    let (pending, csrf) = match pending_for(&core, &headers, &query.request, None).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    match current_session(&core, &headers).await {
        Ok(Some(session)) => consent_or_refusal(&core, &query.request, &csrf, &pending, &session.account).await,
        Ok(None) => login_page(&core, &query.request, &csrf, &pending, "", None, StatusCode::OK),
        Err(err) => unavailable(err),
    }
}

/// The consent form.
#[derive(Deserialize)]
pub(super) struct ConsentForm {
    #[serde(default)]
    request: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// `POST /authorize/consent`: the person's answer, sent to the client.
pub(super) async fn decide(
    State(core): State<Arc<Core>>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "Malformed form", "The consent form cannot be read.");
    };
    let (pending, csrf) = match pending_for(&core, &headers, &form.request, Some(&form.csrf)).await {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let session = match current_session(&core, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return login_page(&core, &form.request, &csrf, &pending, "", None, StatusCode::OK),
        Err(err) => return unavailable(err),
    };
    // Answered once: a second submission (or a concurrent one) finds nothing.
    let pending = match core.store.take_request(&form.request).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(StatusCode::BAD_REQUEST, "Already answered", "This request was already answered.");
        }
        Err(err) => return unavailable(err),
    };
    // The person saw where the answer goes and chose: the answer is sent there either way.
    let reply = Reply {
        redirect_uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
        issuer: &core.issuer,
        trusted: true,
    };
    let see_other = StatusCode::SEE_OTHER;
    if form.decision != "allow" {
        crate::observe::issuer_consent("deny");
        return reply.error(see_other, "access_denied", "the user denied the request");
    }
    let account = session.account;
    let (scopes, _) = core.grants.grant(pending.scopes.as_ref(), &account.roles);
    if scopes.is_empty() {
        return reply.error(see_other, "invalid_scope", "none of the requested scopes is available to this account");
    }
    let code = random_token();
    let record = AuthorizationCode {
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_given: pending.redirect_uri_given,
        code_challenge: pending.code_challenge.clone(),
        resource: pending.resource.clone(),
        scopes,
        account,
        family: random_token(),
        refresh: pending.refresh,
        expires_at: now() + core.settings.code_ttl_secs as i64,
    };
    // From now on the client is trusted with error redirects: a person consented to it.
    let consent_ttl = std::time::Duration::from_secs(core.settings.idle_registration_ttl_secs);
    let saved = match core.store.consented(&pending.client_id, consent_ttl).await {
        Ok(()) => core.store.save_code(&digest(&code), &record).await,
        Err(err) => Err(err),
    };
    if let Err(err) = saved {
        return unavailable(err);
    }
    tracing::info!(client_id = %record.client_id, username = %record.account.username, scopes = %record.scopes.join(" "), "authorization granted");
    crate::observe::issuer_consent("allow");
    reply.redirect(see_other, &[("code", &code)])
}
