//! DNS-rebinding protection (always on): the `Host` of every request, and the `Origin` of
//! requests to `/mcp`, must be on the allow-list (403); a request without a `Host` is malformed
//! (400, as HTTP/1.1 requires).
//!
//! Loopback names are always allowed, at any port: a rebinding attack makes the browser send
//! the attacker's domain in both headers, which never matches. `public_url` and the configured
//! `allowed_hosts` / `allowed_origins` extend the list. Every route is covered, not only `/mcp`:
//! a rebinding page could otherwise drive the sign-in pages of a server on the local machine.
//! `Origin` is checked on `/mcp` only: the authorization server's endpoints are meant to be
//! called from other origins (browser-based clients), and its forms carry anti-CSRF tokens.

use std::sync::Arc;

use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use tower_http::validate_request::ValidateRequest;
use url::Url;

use crate::config::Settings;
use crate::error::AppError;

const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// Which `Host` and `Origin` values are accepted.
#[derive(Debug, Clone)]
pub struct AllowList {
    /// Lowercase `host` or `host:port` entries; `None` = any host.
    hosts: Option<Vec<String>>,
    /// Lowercase origins (`scheme://host[:port]`).
    origins: Vec<String>,
}

impl AllowList {
    pub fn from_settings(settings: &Settings) -> Self {
        let server = &settings.server;
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
        let mut origins = Vec::new();
        if let Ok(public) = Url::parse(&server.public_url) {
            if let Some(host) = public.host_str() {
                hosts.push(host.to_ascii_lowercase());
            }
            origins.push(public.origin().ascii_serialization().to_ascii_lowercase());
        }
        let any_host = server.allowed_hosts.iter().any(|h| h == "*");
        hosts.extend(server.allowed_hosts.iter().map(|h| h.trim().to_ascii_lowercase()));
        origins.extend(
            server
                .allowed_origins
                .iter()
                .filter_map(|o| Url::parse(o).ok())
                .map(|u| u.origin().ascii_serialization().to_ascii_lowercase()),
        );
        AllowList { hosts: (!any_host).then_some(hosts), origins }
    }

    /// Whether `host` (a `Host` header value) is allowed: it must be a well-formed
    /// `name[:port]` whose name, or whole value, is on the list.
    fn host_allowed(&self, host: &str) -> bool {
        let Some((name, _port)) = split_host(host) else {
            return false;
        };
        let Some(hosts) = &self.hosts else {
            return true;
        };
        let host = host.trim();
        hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(host) || allowed.eq_ignore_ascii_case(name))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let Ok(url) = Url::parse(origin) else {
            return false;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let serialized = url.origin().ascii_serialization().to_ascii_lowercase();
        let loopback = url.host_str().is_some_and(|h| LOOPBACK_HOSTS.contains(&h.to_ascii_lowercase().as_str()));
        loopback || self.origins.contains(&serialized)
    }

    /// Why `request`'s `Host` is refused, if it is: missing (400) or not on the list (403). The
    /// authority of an absolute-form request target counts as its `Host`.
    pub fn host_refusal<B>(&self, request: &Request<B>) -> Option<AppError> {
        let host = match request.headers().get(header::HOST) {
            Some(value) => value.to_str().unwrap_or(""),
            None => match request.uri().authority() {
                Some(authority) => authority.as_str(),
                None => return Some(AppError::BadRequest("a Host header is required".into())),
            },
        };
        (!self.host_allowed(host)).then(|| AppError::HostNotAllowed(host.to_owned()))
    }

    /// Why `request`'s `Origin` is refused, if it is. Requests without one (clients outside a
    /// browser) pass.
    pub fn origin_refusal<B>(&self, request: &Request<B>) -> Option<AppError> {
        let origin = request.headers().get(header::ORIGIN)?;
        let origin = origin.to_str().unwrap_or("");
        (!self.origin_allowed(origin)).then(|| AppError::OriginNotAllowed(origin.to_owned()))
    }
}

/// Splits a `Host` value into its name and port, or `None` when it is not of the form
/// `reg-name[:port]`, `IPv4[:port]` or `[IPv6][:port]` (so `127.0.0.1:3000.evil.example` is
/// refused, not read as `127.0.0.1`).
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    let host = host.trim();
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        match &host[end + 1..] {
            "" => (&host[..=end], None),
            rest => (&host[..=end], Some(rest.strip_prefix(':')?)),
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse().ok()?)
        }
        Some(_) => return None,
    };
    let valid_name = if name.starts_with('[') {
        name[1..name.len() - 1].parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    valid_name.then_some((name, port))
}

/// The `Host` check of every route, for tower-http's `ValidateRequestHeaderLayer::custom`:
/// refuses a missing or foreign `Host` before anything else looks at the request.
#[derive(Clone)]
pub struct HostCheck(pub Arc<AllowList>);

impl<B> ValidateRequest<B> for HostCheck {
    type ResponseBody = axum::body::Body;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response> {
        match self.0.host_refusal(request) {
            Some(refusal) => Err(refusal.into_response()),
            None => Ok(()),
        }
    }
}

/// The `Origin` check of `/mcp` (browsers send it on cross-origin requests), before
/// authentication looks at the request; as [`HostCheck`], a request validator.
#[derive(Clone)]
pub struct OriginCheck(pub Arc<AllowList>);

impl<B> ValidateRequest<B> for OriginCheck {
    type ResponseBody = axum::body::Body;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response> {
        match self.0.origin_refusal(request) {
            Some(refusal) => Err(refusal.into_response()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> AllowList {
        let settings = Settings::from_toml(
            "[server]\npublic_url = \"https://mcp.example.com/base\"\nallowed_origins = [\"https://app.example.org\"]",
        )
        .unwrap();
        AllowList::from_settings(&settings)
    }

    #[test]
    fn loopback_and_public_hosts_pass_others_do_not() {
        let allow = allow();
        assert!(allow.host_allowed("127.0.0.1:3000"));
        assert!(allow.host_allowed("localhost"));
        assert!(allow.host_allowed("[::1]:8080"));
        assert!(allow.host_allowed("MCP.example.com"));
        assert!(!allow.host_allowed("evil.example.com"));
        assert!(!allow.host_allowed("evil.example.com:3000"));
    }

    #[test]
    fn a_host_is_parsed_strictly_so_a_port_cannot_smuggle_a_name() {
        let allow = allow();
        for forged in [
            "127.0.0.1:3000.evil.example",
            "127.0.0.1:evil.example",
            "localhost:",
            "localhost:99999999",
            "127.0.0.1:3000:4000",
            "[::1]evil.example",
            "[::1]:3000.evil",
            "[not-an-address]",
            "",
            "local host",
            "127.0.0.1/evil",
            "user@127.0.0.1",
        ] {
            assert!(!allow.host_allowed(forged), "{forged:?}");
        }
        assert_eq!(split_host("[::1]:3000"), Some(("[::1]", Some(3000))));
        assert_eq!(split_host("mcp.example.com"), Some(("mcp.example.com", None)));
    }

    #[test]
    fn a_request_without_a_host_is_refused_as_malformed() {
        let allow = allow();
        let request = Request::get("/health").body(()).unwrap();
        assert!(matches!(allow.host_refusal(&request), Some(AppError::BadRequest(_))));
        let absolute = Request::get("http://127.0.0.1:3000/health").body(()).unwrap();
        assert!(allow.host_refusal(&absolute).is_none());
    }

    #[test]
    fn origins_must_be_listed_or_loopback() {
        let allow = allow();
        assert!(allow.origin_allowed("http://localhost:6274"));
        assert!(allow.origin_allowed("https://mcp.example.com"));
        assert!(allow.origin_allowed("https://app.example.org"));
        assert!(!allow.origin_allowed("http://evil.example.com"));
        assert!(!allow.origin_allowed("null"));
    }
}
