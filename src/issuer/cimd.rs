//! Client ID Metadata Documents (feature `issuer`; draft-ietf-oauth-client-id-metadata-document,
//! the MCP 2026-07-28 default for clients without a prior relationship): a `client_id` that is an
//! `https://` URL names a JSON document, hosted by the client, that describes it.
//!
//! Fetching a URL that anyone can type is server-side request forgery waiting to happen, so:
//! - the URL must be `https`, with a path, without query, fragment, user info or dot segments;
//!   `http` only on a loopback host, and only with `issuer.allow_loopback_http_client_ids` (dev);
//! - the host is resolved first, and every address must be public: loopback (unless that dev
//!   setting), private, link-local (cloud metadata services live there), shared, multicast and
//!   reserved ranges are refused; the request then goes to the checked address (no second DNS
//!   answer can swap it), with no proxy and no redirects;
//! - the response must be 200, at most 5 KiB, arrive within 5 seconds, and be a JSON object
//!   whose `client_id` is the URL exactly, with a `client_name` and valid `redirect_uris`;
//! - documents are cached as their `Cache-Control: max-age` says (1 minute to 1 day; 5 minutes
//!   when it says nothing).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use url::{Host, Url};

use super::clients::{Client, Origin, Secret, check_redirect_uri, is_loopback_host};

/// Largest document accepted, in bytes (the draft suggests 5 kilobytes).
const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Time limit for fetching one document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Cache lifetimes: without `max-age`, and the bounds applied to it.
const DEFAULT_CACHE_SECS: i64 = 300;
const MIN_CACHE_SECS: i64 = 60;
const MAX_CACHE_SECS: i64 = 86_400;
/// Most documents cached at once.
const MAX_CACHED: usize = 1000;

/// Fetches, checks and caches client ID metadata documents.
pub struct MetadataDocuments {
    allow_loopback_http: bool,
    cache: Mutex<HashMap<String, (Client, i64)>>,
}

/// Whether `client_id` is meant as a metadata document URL.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

impl MetadataDocuments {
    pub fn new(allow_loopback_http: bool) -> Self {
        MetadataDocuments { allow_loopback_http, cache: Mutex::new(HashMap::new()) }
    }

    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The client the document at `client_id` describes, from the cache or fetched now. The error
    /// says what is wrong, for the person or the client to read.
    pub async fn client(&self, client_id: &str) -> Result<Client, String> {
        let now = super::now();
        if let Some((client, until)) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(client_id)
            && *until > now
        {
            return Ok(client.clone());
        }
        let url = self.check_url(client_id)?;
        let (document, max_age) = self.fetch(&url).await?;
        let client = client_from_document(client_id, &document)?;
        if max_age > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, until)| *until > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(client_id.to_owned(), (client.clone(), now + max_age));
        }
        Ok(client)
    }

    /// The URL rules of the draft (section 3), and ours for `http`.
    fn check_url(&self, client_id: &str) -> Result<Url, String> {
        let url = Url::parse(client_id).map_err(|e| format!("the client_id is not a valid URL ({e})"))?;
        if url.as_str() != client_id {
            return Err("the client_id URL is not in normal form (dot segments, case, or encoding)".into());
        }
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback_http && is_loopback_host(&url) => {}
            "http" if is_loopback_host(&url) => {
                return Err(
                    "an http client_id is accepted only with issuer.allow_loopback_http_client_ids (development)"
                        .into(),
                );
            }
            _ => return Err("a client_id URL must use https".into()),
        }
        if url.path() == "/" || url.path().is_empty() {
            return Err("a client_id URL must have a path".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a client_id URL must not have a query or fragment".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a client_id URL must not contain credentials".into());
        }
        Ok(url)
    }

    /// Resolves, checks the addresses, and fetches the document from a checked address.
    async fn fetch(&self, url: &Url) -> Result<(Value, i64), String> {
        let port = url.port_or_known_default().ok_or("the client_id URL has no port")?;
        let (domain, addresses): (Option<&str>, Vec<IpAddr>) = match url.host() {
            Some(Host::Ipv4(ip)) => (None, vec![IpAddr::V4(ip)]),
            Some(Host::Ipv6(ip)) => (None, vec![IpAddr::V6(ip)]),
            Some(Host::Domain(domain)) => {
                let found = tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host((domain, port)))
                    .await
                    .map_err(|_| format!("resolving {domain} timed out"))?
                    .map_err(|e| format!("cannot resolve {domain}: {e}"))?;
                (Some(domain), found.map(|a| a.ip()).collect())
            }
            None => return Err("the client_id URL has no host".into()),
        };
        if addresses.is_empty() {
            return Err("the client_id host has no address".into());
        }
        if let Some(refused) = addresses.iter().find(|ip| !self.may_fetch_from(**ip)) {
            return Err(format!(
                "the client_id host resolves to {refused}, a non-public address this server does not fetch from"
            ));
        }
        let mut client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(FETCH_TIMEOUT).no_proxy();
        if let Some(domain) = domain {
            client = client.resolve(domain, SocketAddr::new(addresses[0], port));
        }
        let client = client.build().map_err(|e| format!("HTTP client: {e}"))?;
        let mut response = client
            .get(url.as_str())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("fetching the client metadata document failed: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("the client metadata document answered HTTP {}", response.status().as_u16()));
        }
        if response.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
            return Err(format!("the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        let max_age = cache_lifetime(response.headers().get(reqwest::header::CACHE_CONTROL));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the document failed: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("the client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        let document = serde_json::from_slice(&body).map_err(|_| "the client metadata document is not JSON")?;
        Ok((document, max_age))
    }

    fn may_fetch_from(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_loopback_http && ip.is_loopback())
    }
}

/// Seconds to cache a document, from its `Cache-Control` header.
fn cache_lifetime(header: Option<&reqwest::header::HeaderValue>) -> i64 {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else { return DEFAULT_CACHE_SECS };
    let directives: Vec<String> = value.split(',').map(|d| d.trim().to_ascii_lowercase()).collect();
    if directives.iter().any(|d| d == "no-store" || d == "no-cache") {
        return 0;
    }
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age=").and_then(|n| n.trim_matches('"').parse::<i64>().ok()))
        .map_or(DEFAULT_CACHE_SECS, |age| age.clamp(MIN_CACHE_SECS, MAX_CACHE_SECS))
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// documentation, multicast or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || a >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 (maps to any IPv4)
        }
    }
}

/// Checks a fetched document and turns it into a client (a public one: shared secrets make no
/// sense in a published document, and `private_key_jwt` is not implemented here).
fn client_from_document(client_id: &str, document: &Value) -> Result<Client, String> {
    let document = document.as_object().ok_or("the client metadata document is not a JSON object")?;
    if document.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err("the client metadata document's client_id is not its URL".into());
    }
    let name = document
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty() && n.chars().count() <= 200)
        .ok_or("the client metadata document needs a client_name of 1 to 200 characters")?;
    let redirect_uris: Vec<String> = match document.get("redirect_uris").and_then(Value::as_array) {
        Some(uris) if !uris.is_empty() && uris.len() <= 20 => uris
            .iter()
            .map(|u| u.as_str().map(str::to_owned).ok_or_else(|| "redirect_uris must be strings".to_owned()))
            .collect::<Result<_, _>>()?,
        _ => return Err("the client metadata document needs 1 to 20 redirect_uris".into()),
    };
    for uri in &redirect_uris {
        check_redirect_uri(uri)?;
    }
    match document.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method `{other}` is not supported for metadata-document clients (only `none`, with PKCE)"
            ));
        }
    }
    if let Some(types) = document.get("response_types").and_then(Value::as_array)
        && !types.iter().any(|t| t == "code")
    {
        return Err("response_types must include code".into());
    }
    let grant_types = match document.get("grant_types").and_then(Value::as_array) {
        None => vec!["authorization_code".to_owned()],
        Some(types) => {
            let known: Vec<String> = types
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| matches!(*t, "authorization_code" | "refresh_token"))
                .map(str::to_owned)
                .collect();
            if !known.iter().any(|t| t == "authorization_code") {
                return Err("grant_types must include authorization_code".into());
            }
            known
        }
    };
    Ok(Client {
        client_id: client_id.to_owned(),
        name: name.to_owned(),
        origin: Origin::MetadataDocument,
        redirect_uris,
        grant_types,
        secret: Secret::None,
        roles: Vec::new(),
        scopes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_public_addresses_may_be_fetched() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn client_id_urls_follow_the_draft() {
        let strict = MetadataDocuments::new(false);
        assert!(strict.check_url("https://app.example/client.json").is_ok());
        for bad in [
            "https://app.example",
            "https://app.example/",
            "https://app.example/c.json?x=1",
            "https://app.example/c.json#f",
            "https://user:pw@app.example/c.json",
            "https://app.example/a/../c.json",
            "https://APP.example/c.json",
            "http://app.example/c.json",
            "http://127.0.0.1:9000/c.json",
        ] {
            assert!(strict.check_url(bad).is_err(), "{bad}");
        }
        let dev = MetadataDocuments::new(true);
        assert!(dev.check_url("http://127.0.0.1:9000/c.json").is_ok());
        assert!(dev.check_url("http://app.example/c.json").is_err());
    }

    #[test]
    fn documents_must_name_themselves_and_list_valid_redirect_uris() {
        let id = "https://app.example/c.json";
        let good = json!({ "client_id": id, "client_name": "App", "redirect_uris": ["http://127.0.0.1/cb"] });
        let client = client_from_document(id, &good).unwrap();
        assert_eq!(
            (client.name.as_str(), client.grant_types.as_slice()),
            ("App", ["authorization_code".to_owned()].as_slice())
        );
        let mut other_id = good.clone();
        other_id["client_id"] = json!("https://evil.example/c.json");
        assert!(client_from_document(id, &other_id).is_err());
        let mut no_name = good.clone();
        no_name.as_object_mut().unwrap().remove("client_name");
        assert!(client_from_document(id, &no_name).is_err());
        let mut bad_uri = good.clone();
        bad_uri["redirect_uris"] = json!(["javascript:alert(1)"]);
        assert!(client_from_document(id, &bad_uri).is_err());
        let mut secret = good.clone();
        secret["token_endpoint_auth_method"] = json!("client_secret_basic");
        assert!(client_from_document(id, &secret).is_err());
    }

    #[test]
    fn cache_lifetime_follows_max_age_within_bounds() {
        let header = |v: &'static str| reqwest::header::HeaderValue::from_static(v);
        assert_eq!(cache_lifetime(None), DEFAULT_CACHE_SECS);
        assert_eq!(cache_lifetime(Some(&header("public, max-age=600"))), 600);
        assert_eq!(cache_lifetime(Some(&header("max-age=1"))), MIN_CACHE_SECS);
        assert_eq!(cache_lifetime(Some(&header("max-age=99999999"))), MAX_CACHE_SECS);
        assert_eq!(cache_lifetime(Some(&header("no-store"))), 0);
    }
}
