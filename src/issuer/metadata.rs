//! Discovery documents of the authorization server (feature `issuer`): RFC 8414 metadata and the
//! OpenID Connect discovery form of the same facts, listing every endpoint and capability that
//! exists, and nothing that does not. MCP clients refuse an authorization server whose metadata
//! lacks `code_challenge_methods_supported`; `client_id_metadata_document_supported` and
//! `authorization_response_iss_parameter_supported` tell them to use metadata documents and to
//! check `iss` in the redirect.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Core;

/// RFC 8414 well-known path.
pub const AS_PATH: &str = "/.well-known/oauth-authorization-server";
/// OpenID Connect discovery well-known path.
pub const OIDC_PATH: &str = "/.well-known/openid-configuration";

/// The local paths a document is served under: the well-known path, and for an issuer with a path
/// (behind a proxy that keeps it) the path-inserted form (and, for OpenID, the appended one).
pub fn paths(base_path: &str, well_known: &str) -> Vec<String> {
    let mut paths = vec![well_known.to_owned()];
    if !base_path.is_empty() {
        paths.push(format!("{well_known}{base_path}"));
        if well_known == OIDC_PATH {
            paths.push(format!("{base_path}{well_known}"));
        }
    }
    paths
}

/// The grants of `/token`: the JWT bearer grant only with enterprise IdPs, token exchange only
/// when it has audiences to mint for.
fn grant_types(core: &Core) -> Vec<&'static str> {
    let mut grants = vec!["authorization_code", "refresh_token", "client_credentials"];
    // Enterprise-Managed Authorization: ID-JAGs with the JWT bearer grant (RFC 7523 section 2.1).
    if !core.enterprise.is_empty() {
        grants.push(crate::config::JWT_BEARER);
    }
    if !core.settings.token_exchange_audiences.is_empty() {
        grants.push(crate::config::TOKEN_EXCHANGE_GRANT);
    }
    grants
}

/// The RFC 8414 document.
pub fn authorization_server(core: &Core) -> Value {
    // `offline_access` is the authorization server's to list (never the resource's): a client
    // may ask for it to get a refresh token (see `issuer.refresh_tokens`).
    let scopes: Vec<&str> = core.grants.supported().map(String::as_str).chain(["offline_access"]).collect();
    let assertion_algorithms = core.assertions.algorithms();
    let mut document = json!({
        "issuer": core.issuer,
        "authorization_endpoint": core.url("/authorize"),
        "token_endpoint": core.url("/token"),
        "jwks_uri": core.url("/.well-known/jwks.json"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types(core),
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "revocation_endpoint": core.url("/revoke"),
        "revocation_endpoint_auth_methods_supported":
            ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        // Confidential clients only (see `introspection`).
        "introspection_endpoint": core.url("/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    });
    if core.settings.dynamic_registration {
        document["registration_endpoint"] = json!(core.url("/register"));
    }
    document
}

/// The OpenID Connect discovery document: the same facts, plus the members OpenID Connect
/// requires. No ID tokens are issued (`openid` is not a scope here); the algorithm listed is
/// the one access tokens are signed with.
pub fn openid(core: &Core) -> Value {
    let mut document = authorization_server(core);
    document["subject_types_supported"] = json!(["public"]);
    document["id_token_signing_alg_values_supported"] = json!([core.keys.algorithm().as_str()]);
    document
}

fn cached_json(document: Value) -> Response {
    let mut response = Json(document).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

pub(super) async fn serve_oauth(State(core): State<Arc<Core>>) -> Response {
    cached_json(authorization_server(&core))
}

pub(super) async fn serve_openid(State(core): State<Arc<Core>>) -> Response {
    cached_json(openid(&core))
}
