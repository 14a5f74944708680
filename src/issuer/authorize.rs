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

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{ConnectInfo, Extension, Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use url::Url;

use super::clients::{Origin, is_loopback_host};
use super::cookies;
use super::store::{Account, AuthorizationCode, PendingRequest, Session};
use super::{Core, Params, digest, now, pages, random_token};

/// The validated redirect URI, and what every answer sent there carries.
struct Reply<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
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

    /// An error response to the client (RFC 6749 section 4.1.2.1).
    fn error(&self, status: StatusCode, error: &str, description: &str) -> Response {
        tracing::info!(error, description, "authorization request refused");
        self.redirect(status, &[("error", error), ("error_description", description)])
    }
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
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
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
        Err(problem) => return error_page(StatusCode::BAD_REQUEST, "Unknown application", &problem),
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
    let state = params.get("state");
    let reply = Reply { redirect_uri: &redirect_uri, state, issuer: &core.issuer };

    // From here on the redirect URI is trusted: errors go back to the client.
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
    let session = current_session(&core, &headers);
    if params.get("prompt") == Some("none") {
        let error = if session.is_some() { "consent_required" } else { "login_required" };
        return reply.error(found, error, "this server always asks the person to consent");
    }

    let (browser, new_browser) = match cookies::read(&headers, cookies::BROWSER) {
        Some(browser) => (browser, false),
        None => (random_token(), true),
    };
    let id = random_token();
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
        csrf: random_token(),
        expires_at: now() + core.settings.request_ttl_secs as i64,
    };
    if !core.store.save_request(&id, pending.clone()) {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too many sign-ins are in progress; try again shortly.",
        );
    }
    let mut response = match session {
        Some(session) => consent_or_refusal(&core, &id, &pending, &session.account),
        None => login_page(&core, &id, &pending, "", None, StatusCode::OK),
    };
    if new_browser {
        response.headers_mut().append(header::SET_COOKIE, cookies::set(&core, cookies::BROWSER, &browser, None));
    }
    response
}

/// The sign-in of this browser, if any and not expired.
fn current_session(core: &Core, headers: &HeaderMap) -> Option<Session> {
    let token = cookies::read(headers, cookies::SESSION)?;
    core.store.session(&digest(&token)).filter(|s| s.expires_at >= now())
}

fn login_page(
    core: &Core,
    id: &str,
    pending: &PendingRequest,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let action = core.path("/authorize/login");
    let html = pages::login(&pages::LoginPage {
        action: &action,
        request: id,
        csrf: &pending.csrf,
        client_name: &pending.client_name,
        client_verified: pending.client_verified,
        resource_name: &core.resource_name,
        username,
        error,
    });
    pages::respond(status, html, "'self'")
}

/// The consent page, or `invalid_scope` to the client when the account may grant nothing asked for.
fn consent_or_refusal(core: &Core, id: &str, pending: &PendingRequest, account: &Account) -> Response {
    let (granted, withheld) = core.grants.grant(pending.scopes.as_ref(), &account.roles);
    if granted.is_empty() {
        core.store.take_request(id);
        let reply =
            Reply { redirect_uri: &pending.redirect_uri, state: pending.state.as_deref(), issuer: &core.issuer };
        return reply.error(
            StatusCode::FOUND,
            "invalid_scope",
            "none of the requested scopes is available to this account",
        );
    }
    let Ok(redirect) = Url::parse(&pending.redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "Invalid redirect address", "The redirect URI is not a URI.");
    };
    let host = redirect.host_str().map_or_else(|| format!("{}:", redirect.scheme()), str::to_owned);
    let granted: Vec<(String, String)> = granted
        .into_iter()
        .map(|s| {
            let description = describe(&s).to_owned();
            (s, description)
        })
        .collect();
    let action = core.path("/authorize/consent");
    let html = pages::consent(&pages::ConsentPage {
        action: &action,
        request: id,
        csrf: &pending.csrf,
        client_name: &pending.client_name,
        client_id: &pending.client_id,
        client_verified: pending.client_verified,
        redirect_host: &host,
        redirect_is_local: is_loopback_host(&redirect) || !matches!(redirect.scheme(), "http" | "https"),
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
        "mcp:tools" => "call tools",
        "mcp:prompts" => "use prompts",
        _ => "a permission this server defines",
    }
}

/// Why a form is not accepted: shown as a page, and nothing changes.
struct Refusal {
    status: StatusCode,
    title: &'static str,
    message: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error_page(self.status, self.title, self.message)
    }
}

/// The pending request a form (or the consent page) belongs to, if it was sent from the browser
/// that started it and, for forms, carries the request's anti-CSRF token.
fn pending_for(core: &Core, headers: &HeaderMap, id: &str, csrf: Option<&str>) -> Result<PendingRequest, Refusal> {
    let expired = Refusal {
        status: StatusCode::BAD_REQUEST,
        title: "This request has expired",
        message: "The sign-in request has expired or was already answered.",
    };
    let Some(pending) = core.store.request(id) else { return Err(expired) };
    if pending.expires_at < now() {
        core.store.take_request(id);
        return Err(expired);
    }
    // Both comparisons take the same time wherever the values differ (subtle), so timing tells
    // an attacker nothing about how much of a guess was right.
    let same_browser = cookies::read(headers, cookies::BROWSER)
        .is_some_and(|b| digest(&b).as_bytes().ct_eq(pending.browser.as_bytes()).into());
    if !same_browser {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            title: "Request not recognised",
            message: "This form was not sent from the browser that started the sign-in (cookies must be enabled).",
        });
    }
    if let Some(csrf) = csrf
        && (csrf.is_empty() || !bool::from(csrf.as_bytes().ct_eq(pending.csrf.as_bytes())))
    {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            title: "Form not accepted",
            message: "The form is missing its security token (protection against cross-site request forgery).",
        });
    }
    Ok(pending)
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

/// `POST /authorize/login`: checks the password (rate-limited per client address and username)
/// and remembers the sign-in in this browser.
pub(super) async fn login(
    State(core): State<Arc<Core>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(StatusCode::BAD_REQUEST, "Malformed form", "The sign-in form cannot be read.");
    };
    let pending = match pending_for(&core, &headers, &form.request, Some(&form.csrf)) {
        Ok(pending) => pending,
        Err(refusal) => return refusal.into_response(),
    };
    let ip = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let now = now();
    if let Err(wait) = core.limiter.check(ip, &form.username, now) {
        tracing::warn!(?ip, "sign-in rate limit reached");
        let minutes = (wait + 59) / 60;
        let message = format!("Too many failed sign-in attempts. Try again in {minutes} minute(s).");
        let mut response =
            login_page(&core, &form.request, &pending, &form.username, Some(&message), StatusCode::TOO_MANY_REQUESTS);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        return response;
    }
    let Some(account) = core.users.verify(&form.username, &form.password).await else {
        core.limiter.failed(ip, &form.username, now);
        tracing::info!(?ip, "sign-in failed");
        let error = Some("Wrong username or password.");
        return login_page(&core, &form.request, &pending, &form.username, error, StatusCode::UNAUTHORIZED);
    };
    core.limiter.succeeded(ip, &form.username);
    let token = random_token();
    let ttl = core.settings.session_ttl_secs as i64;
    let username = account.username.clone();
    if !core.store.save_session(&digest(&token), Session { account, expires_at: now + ttl }) {
        return error_page(StatusCode::SERVICE_UNAVAILABLE, "Busy", "Too many sign-ins; try again shortly.");
    }
    tracing::info!(%username, ?ip, "signed in");
    let location = core.path(&format!("/authorize/consent?request={}", form.request));
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).expect("ids are base64url"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(header::SET_COOKIE, cookies::set(&core, cookies::SESSION, &token, Some(ttl)));
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
    let pending = match pending_for(&core, &headers, &query.request, None) {
        Ok(pending) => pending,
        Err(refusal) => return refusal.into_response(),
    };
    match current_session(&core, &headers) {
        Some(session) => consent_or_refusal(&core, &query.request, &pending, &session.account),
        None => login_page(&core, &query.request, &pending, "", None, StatusCode::OK),
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
    let pending = match pending_for(&core, &headers, &form.request, Some(&form.csrf)) {
        Ok(pending) => pending,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(session) = current_session(&core, &headers) else {
        return login_page(&core, &form.request, &pending, "", None, StatusCode::OK);
    };
    // Answered once: a second submission (or a concurrent one) finds nothing.
    let Some(pending) = core.store.take_request(&form.request) else {
        return error_page(StatusCode::BAD_REQUEST, "Already answered", "This request was already answered.");
    };
    let reply = Reply { redirect_uri: &pending.redirect_uri, state: pending.state.as_deref(), issuer: &core.issuer };
    let see_other = StatusCode::SEE_OTHER;
    if form.decision != "allow" {
        return reply.error(see_other, "access_denied", "the user denied the request");
    }
    let account = session.account;
    let (scopes, _) = core.grants.grant(pending.scopes.as_ref(), &account.roles);
    if scopes.is_empty() {
        return reply.error(see_other, "invalid_scope", "none of the requested scopes is available to this account");
    }
    let code = random_token();
    tracing::info!(client_id = %pending.client_id, username = %account.username, scopes = %scopes.join(" "), "authorization granted");
    core.store.save_code(
        &digest(&code),
        AuthorizationCode {
            client_id: pending.client_id.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            redirect_uri_given: pending.redirect_uri_given,
            code_challenge: pending.code_challenge.clone(),
            resource: pending.resource.clone(),
            scopes,
            account,
            family: random_token(),
            expires_at: now() + core.settings.code_ttl_secs as i64,
        },
    );
    reply.redirect(see_other, &[("code", &code)])
}
