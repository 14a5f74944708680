//! DNS-rebinding protection (always on): `Host` and `Origin` must be on the allow-list (403).
//!
//! Loopback names are always allowed, at any port: a rebinding attack makes the browser send
//! the attacker's domain in both headers, which never matches. `public_url` and the configured
//! `allowed_hosts` / `allowed_origins` extend the list.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

    fn host_allowed(&self, host: &str) -> bool {
        let Some(hosts) = &self.hosts else {
            return true;
        };
        // The entries are lower case; comparing without case spares a lower-cased copy of the
        // header on every request.
        let host = host.trim();
        let name = strip_port(host);
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

    /// Why `request` is refused, if it is: a foreign `Host` or `Origin`.
    pub fn refusal(&self, request: &Request) -> Option<AppError> {
        let headers = request.headers();
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        if let Some(host) = host
            && !self.host_allowed(host)
        {
            return Some(AppError::HostNotAllowed(host.to_owned()));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Some(AppError::OriginNotAllowed(origin.to_owned()));
            }
        }
        None
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:3000 -> [::1]
        return host.find(']').map(|end| &host[..=end]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(name, _)| name).unwrap_or(host)
}

/// The guard as axum middleware: refuses a bad `Host` or `Origin` before anything else
/// (authentication included) looks at the request.
pub async fn check(State(allow): State<Arc<AllowList>>, request: Request, next: Next) -> Response {
    match allow.refusal(&request) {
        Some(refusal) => refusal.into_response(),
        None => next.run(request).await,
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
    fn origins_must_be_listed_or_loopback() {
        let allow = allow();
        assert!(allow.origin_allowed("http://localhost:6274"));
        assert!(allow.origin_allowed("https://mcp.example.com"));
        assert!(allow.origin_allowed("https://app.example.org"));
        assert!(!allow.origin_allowed("http://evil.example.com"));
        assert!(!allow.origin_allowed("null"));
    }
}
