//! OAuth clients of the authorization server (feature `issuer`): where they come from, how they
//! authenticate, and the redirect URI rules.
//!
//! A client is found by its `client_id` in this order: the configuration (`[[issuer.clients]]`),
//! the dynamically registered ones (RFC 7591, in the [`Store`](super::store::Store)), and, for an
//! `https://` URL, its client ID metadata document (fetched by [`super::cimd`]).
//!
//! Redirect URIs are compared exactly, with one exception from RFC 8252 section 7.3: a loopback
//! IP redirect URI (`http://127.0.0.1/...`, `http://[::1]/...`, and `http://localhost/...`) matches
//! the same URI with any port, because a native app listens on whatever port is free when it
//! starts, while its registration (a static metadata document, say) cannot know it.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::store::RegisteredClient;
use crate::config::{IssuerClient, JwtAlgorithm};
use crate::error::StartupError;
use crate::jwt::KeySet;

/// Where a client's registration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[[issuer.clients]]`.
    Configured,
    /// RFC 7591 dynamic registration at `/register`.
    Registered,
    /// A client ID metadata document at the `client_id` URL.
    MetadataDocument,
}

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone)]
pub enum Secret {
    /// A public client (`token_endpoint_auth_method` `none`): PKCE protects its codes.
    None,
    /// An Argon2 PHC hash from the configuration (people choose these secrets).
    Argon2(SecretString),
    /// The SHA-256 digest of a secret this server generated (32 random bytes: no need for a
    /// slow hash).
    Digest(String),
    /// No secret: a JWT the client signs with its private key (`private_key_jwt`, RFC 7523
    /// section 2.2), checked with these public keys by [`super::assertion`].
    PrivateKeyJwt(ClientKeys),
}

/// Where a `private_key_jwt` client's public keys come from.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    /// A JWKS given with the registration (`jwks`), parsed when the client is.
    Inline(Arc<KeySet>),
    /// A JWKS URL (`jwks_uri`), fetched and cached when an assertion needs it.
    Uri(String),
}

impl ClientKeys {
    /// Parses an inline JWKS document. Every algorithm a key can verify is kept here; which ones
    /// an assertion may use is `issuer.client_assertion_algorithms`, checked per assertion.
    pub fn inline(jwks: &Value) -> Result<ClientKeys, String> {
        KeySet::from_jwks(jwks, &JwtAlgorithm::ALL)
            .map(|set| ClientKeys::Inline(Arc::new(set)))
            .map_err(|e| format!("jwks: {e}"))
    }
}

/// A client as the authorization server knows it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    /// Shown on the consent page. For registered and metadata-document clients it is what the
    /// client says about itself, and the page says so.
    pub name: String,
    pub origin: Origin,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub secret: Secret,
    /// `client_credentials`: the roles it acts with.
    pub roles: Vec<String>,
    /// `client_credentials`: the scopes it may get (empty = what its roles permit).
    pub scopes: Vec<String>,
}

impl Client {
    /// A public client with the code and refresh grants (tests, registration).
    pub fn public(client_id: &str, name: &str, redirect_uris: Vec<String>) -> Self {
        Client {
            client_id: client_id.to_owned(),
            name: name.to_owned(),
            origin: Origin::Registered,
            redirect_uris,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            secret: Secret::None,
            roles: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// A client registered at `/register`, as the store keeps it.
    pub fn registered(stored: RegisteredClient) -> Self {
        Client {
            client_id: stored.client_id,
            name: stored.name,
            origin: Origin::Registered,
            redirect_uris: stored.redirect_uris,
            grant_types: stored.grant_types,
            secret: stored.secret_digest.map_or(Secret::None, Secret::Digest),
            roles: Vec::new(),
            scopes: Vec::new(),
        }
    }

    /// A client from `[[issuer.clients]]`; its redirect URIs and secret hash are checked.
    pub fn configured(config: &IssuerClient, extra_schemes: &[String]) -> Result<Self, StartupError> {
        let key = format!("issuer.clients.{}", config.client_id);
        for uri in &config.redirect_uris {
            check_redirect_uri(uri, extra_schemes)
                .map_err(|problem| StartupError::config(format!("{key}.redirect_uris"), problem))?;
        }
        let secret = if config.token_endpoint_auth_method.trim() == "private_key_jwt" {
            if config.jwks_uri.is_empty() {
                let jwks: Value = serde_json::from_str(&config.jwks)
                    .map_err(|e| StartupError::config(format!("{key}.jwks"), format!("is not JSON: {e}")))?;
                Secret::PrivateKeyJwt(
                    ClientKeys::inline(&jwks)
                        .map_err(|problem| StartupError::config(format!("{key}.jwks"), problem))?,
                )
            } else {
                Secret::PrivateKeyJwt(ClientKeys::Uri(config.jwks_uri.clone()))
            }
        } else if config.secret_hash.expose_secret().is_empty() {
            Secret::None
        } else {
            super::password::check_hash(config.secret_hash.expose_secret())
                .map_err(|problem| StartupError::config(format!("{key}.secret_hash"), problem))?;
            Secret::Argon2(config.secret_hash.clone())
        };
        Ok(Client {
            client_id: config.client_id.clone(),
            name: config.name.clone(),
            origin: Origin::Configured,
            redirect_uris: config.redirect_uris.clone(),
            grant_types: config.grant_types.clone(),
            secret,
            roles: config.roles.clone(),
            scopes: config.scopes.clone(),
        })
    }

    /// Whether the client must authenticate (with a secret or a client assertion).
    pub fn is_confidential(&self) -> bool {
        !matches!(self.secret, Secret::None)
    }

    /// Whether the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// The redirect URI to answer at: the requested one if it matches a registered one, or the
    /// only registered one when none is requested. The flag says whether one was requested.
    pub fn redirect_for(&self, requested: Option<&str>) -> Option<(String, bool)> {
        match requested {
            Some(requested) => self
                .redirect_uris
                .iter()
                .any(|registered| redirect_matches(registered, requested))
                .then(|| (requested.to_owned(), true)),
            None if self.redirect_uris.len() == 1 => Some((self.redirect_uris[0].clone(), false)),
            None => None,
        }
    }
}

/// Whether `uri` may be registered as a redirect URI: absolute, no fragment, and `https`, `http`
/// on a loopback host (MCP: "either localhost or HTTPS"; RFC 8252 section 7.3), or a native app's
/// private-use scheme in reverse-domain form (RFC 8252 section 7.1: `com.example.app:/callback`,
/// a scheme with a period) or one of `extra_schemes` (`issuer.redirect_schemes`). Other schemes
/// are refused: `ms-msdt:`, `chrome:`, `view-source:`, `jar:`, `ftp:` and their like would hand
/// the code to whatever the person's system runs for them.
pub fn check_redirect_uri(uri: &str, extra_schemes: &[String]) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err(format!("a redirect URI is at most {MAX_REDIRECT_URI_BYTES} characters"));
    }
    let url = Url::parse(uri).map_err(|e| format!("`{uri}` is not an absolute URI ({e})"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` has a fragment, which redirect URIs must not have"));
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" | "https" => Err(format!("`{uri}`: http redirect URIs must be on localhost; use https otherwise")),
        scheme if is_private_use_scheme(scheme) || extra_schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) => {
            Ok(())
        }
        scheme => Err(format!(
            "`{uri}`: the {scheme} scheme cannot be a redirect URI (https, loopback http, or a native app's \
             reverse-domain scheme such as com.example.app)"
        )),
    }
}

/// Longest redirect URI accepted, in bytes.
pub const MAX_REDIRECT_URI_BYTES: usize = 2000;

/// A private-use scheme in reverse-domain form (RFC 8252 section 7.1): labels separated by
/// periods, at least two of them.
fn is_private_use_scheme(scheme: &str) -> bool {
    let labels: Vec<&str> = scheme.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.starts_with(|c: char| c.is_ascii_alphabetic())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Where a redirect URI sends the person's answer, said truthfully for the consent page.
pub enum Destination {
    /// A website: its host.
    Website(String),
    /// A program on this computer, listening on loopback: its address and port.
    ThisComputer(String),
    /// The application that handles this scheme on the person's device.
    App(String),
}

impl Destination {
    pub fn of(redirect: &Url) -> Destination {
        match redirect.scheme() {
            "http" | "https" if is_loopback_host(redirect) => {
                let host = redirect.host_str().unwrap_or_default();
                let port = redirect.port_or_known_default().map(|port| format!(":{port}")).unwrap_or_default();
                Destination::ThisComputer(format!("{host}{port}"))
            }
            "http" | "https" => Destination::Website(redirect.host_str().unwrap_or_default().to_owned()),
            scheme => Destination::App(scheme.to_owned()),
        }
    }
}

/// Whether the URL's host is a loopback name or address.
pub fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Exact match, or the same loopback `http` URI with another port (RFC 8252 section 7.3).
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(registered), Ok(requested)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    registered.scheme() == "http"
        && requested.scheme() == "http"
        && is_loopback_host(&registered)
        && registered.host_str() == requested.host_str()
        && registered.path() == requested.path()
        && registered.query() == requested.query()
        && requested.fragment().is_none()
        && requested.username().is_empty()
        && requested.password().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_exactly_except_for_loopback_ports() {
        assert!(redirect_matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example/cb/"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example/cb?x=1"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example:8443/cb"));
        assert!(!redirect_matches("https://app.example/cb", "https://evil.example/cb"));
        assert!(redirect_matches("http://127.0.0.1/callback", "http://127.0.0.1:49152/callback"));
        assert!(redirect_matches("http://127.0.0.1:3000/callback", "http://127.0.0.1:4000/callback"));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:8080/cb"));
        assert!(redirect_matches("http://localhost:1/cb", "http://localhost:2/cb"));
        assert!(!redirect_matches("http://127.0.0.1/callback", "http://127.0.0.1:4000/other"));
        assert!(!redirect_matches("http://127.0.0.1/callback", "http://localhost:4000/callback"));
        assert!(!redirect_matches("http://127.0.0.1/callback", "http://127.0.0.1.evil.example:4000/callback"));
        assert!(!redirect_matches("http://127.0.0.1/cb", "http://user@127.0.0.1:4000/cb"));
    }

    #[test]
    fn redirect_uris_must_be_https_loopback_http_or_a_reverse_domain_scheme() {
        for good in [
            "https://app.example/cb",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/callback",
            "com.example.app://callback",
            "io.modelcontextprotocol.inspector:/cb",
        ] {
            assert!(check_redirect_uri(good, &[]).is_ok(), "{good}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "/relative",
            "ms-msdt:/id PCWDiagnostic",
            "chrome://settings",
            "view-source:https://app.example/",
            "jar:https://app.example/a.jar!/",
            "ftp://evil.example/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "com..app:/cb",
            "com.-app:/cb",
        ] {
            assert!(check_redirect_uri(bad, &[]).is_err(), "{bad}");
        }
        let extra = ["cursor".to_owned()];
        assert!(check_redirect_uri("cursor://anysphere.cursor-retrieval/oauth/callback", &extra).is_ok());
        assert!(check_redirect_uri("ftp://evil.example/cb", &extra).is_err());
        assert!(check_redirect_uri(&format!("https://a.example/{}", "x".repeat(2000)), &[]).is_err());
    }

    #[test]
    fn the_destination_of_a_redirect_is_named_for_what_it_is() {
        let of = |uri: &str| match Destination::of(&Url::parse(uri).unwrap()) {
            Destination::Website(host) => format!("website {host}"),
            Destination::ThisComputer(address) => format!("this computer {address}"),
            Destination::App(scheme) => format!("app {scheme}"),
        };
        assert_eq!(of("https://app.example/cb"), "website app.example");
        assert_eq!(of("http://127.0.0.1:5000/cb"), "this computer 127.0.0.1:5000");
        assert_eq!(of("com.example.app:/cb"), "app com.example.app");
    }

    #[test]
    fn without_a_requested_redirect_uri_only_a_single_registered_one_is_used() {
        let one = Client::public("c", "n", vec!["https://a.example/cb".into()]);
        assert_eq!(one.redirect_for(None), Some(("https://a.example/cb".into(), false)));
        let two = Client::public("c", "n", vec!["https://a.example/1".into(), "https://a.example/2".into()]);
        assert_eq!(two.redirect_for(None), None);
        assert_eq!(two.redirect_for(Some("https://a.example/2")), Some(("https://a.example/2".into(), true)));
        assert_eq!(two.redirect_for(Some("https://a.example/3")), None);
    }
}
