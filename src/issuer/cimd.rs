//! Client ID Metadata Documents (feature `issuer`; draft-ietf-oauth-client-id-metadata-document,
//! the MCP 2026-07-28 default for clients without a prior relationship): a `client_id` that is an
//! `https://` URL names a JSON document, hosted by the client, that describes it.
//!
//! Fetching a URL that anyone can type is server-side request forgery waiting to happen, so:
//! - the URL must be `https`, with a path, without query, fragment, user info or dot segments;
//!   `http` only on a loopback host, and only with `issuer.allow_loopback_http_client_ids` (dev);
//! - the host is resolved first, and every address must be public: every range of IANA's IPv4
//!   and IPv6 special-purpose address registries is refused (loopback unless that dev setting,
//!   private, link-local where cloud metadata services live, shared, documentation, translation
//!   and tunnelling prefixes that embed other addresses, multicast, reserved); the request then
//!   goes to the checked address (no second DNS answer can swap it), with no proxy and no
//!   redirects, and the address the connection reached is checked again;
//! - the response must be 200, at most 5 KiB, arrive within 5 seconds, and be a JSON object
//!   whose `client_id` is the URL exactly, with a `client_name` and valid `redirect_uris`;
//! - documents are cached (in the server's store: instances share it) as their `Cache-Control:
//!   max-age` says (1 minute to 1 day; 5 minutes when it says nothing), and failures for a short
//!   while, so that requests naming a URL cannot
//!   make this server fetch it again and again; concurrent requests for one URL share one fetch,
//!   and at most a few fetches run at once (the rest are told to try again shortly): anyone can
//!   trigger a fetch, without signing in.
//!
//! A document may declare `token_endpoint_auth_method` `private_key_jwt` with its public keys
//! (`jwks`, or `jwks_uri`): the JWKS at `jwks_uri` is fetched by [`MetadataDocuments::fetch_jwks`]
//! under the same rules (16 KiB), for [`super::assertion`], which caches it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use serde_json::Value;
use url::{Host, Url};

use serde::{Deserialize, Serialize};

use super::ClientError;
use super::clients::{Client, ClientKeys, Origin, Secret, check_redirect_uri, is_loopback_host};
use super::store::IssuerStore;

/// Largest document accepted, in bytes (the draft suggests 5 kilobytes).
const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Largest JWKS accepted, in bytes (a few RSA keys).
const MAX_JWKS_BYTES: usize = 16 * 1024;
/// Time limit for fetching one document.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Cache lifetimes: without `max-age`, and the bounds applied to it.
const DEFAULT_CACHE_SECS: i64 = 300;
const MIN_CACHE_SECS: i64 = 60;
const MAX_CACHE_SECS: i64 = 86_400;
/// How long a failed fetch is remembered, in seconds.
const FAILURE_CACHE_SECS: i64 = 30;
/// Fetches running at once, whatever the URLs.
const MAX_FETCHES_IN_FLIGHT: usize = 8;

/// What the store keeps for a document URL: the client it describes, or why there is none.
#[derive(Serialize, Deserialize)]
enum Cached {
    Client {
        name: String,
        redirect_uris: Vec<String>,
        grant_types: Vec<String>,
        /// `private_key_jwt`: the document's `jwks_uri`, or its `jwks` as JSON text.
        #[serde(default)]
        jwks_uri: Option<String>,
        #[serde(default)]
        jwks: Option<String>,
    },
    Refused(String),
}

impl Cached {
    fn answer(self, client_id: &str) -> Result<Client, ClientError> {
        match self {
            Cached::Client { name, redirect_uris, grant_types, jwks_uri, jwks } => {
                let secret = match (jwks_uri, jwks) {
                    (Some(uri), _) => Secret::PrivateKeyJwt(ClientKeys::Uri(uri)),
                    (None, Some(jwks)) => {
                        let jwks = serde_json::from_str(&jwks).map_err(|_| ClientError::Unknown("bad jwks".into()))?;
                        Secret::PrivateKeyJwt(ClientKeys::inline(&jwks).map_err(ClientError::Unknown)?)
                    }
                    (None, None) => Secret::None,
                };
                Ok(Client {
                    client_id: client_id.to_owned(),
                    name,
                    origin: Origin::MetadataDocument,
                    redirect_uris,
                    grant_types,
                    secret,
                    roles: Vec::new(),
                    scopes: Vec::new(),
                })
            }
            Cached::Refused(problem) => Err(ClientError::Unknown(problem)),
        }
    }
}

/// Fetches, checks and caches client ID metadata documents. The cache is the server's store, so
/// instances share it and it survives a restart; the one-fetch-per-URL lock is per instance.
pub struct MetadataDocuments {
    allow_loopback_http: bool,
    /// `issuer.redirect_schemes`.
    redirect_schemes: Vec<String>,
    store: IssuerStore,
    /// URL -> the lock its one fetch at a time holds.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Fetches running at once.
    in_flight: Arc<Semaphore>,
}

/// Whether `client_id` is meant as a metadata document URL.
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

impl MetadataDocuments {
    pub fn new(allow_loopback_http: bool, redirect_schemes: Vec<String>, store: IssuerStore) -> Self {
        MetadataDocuments {
            allow_loopback_http,
            redirect_schemes,
            store,
            fetching: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Semaphore::new(MAX_FETCHES_IN_FLIGHT)),
        }
    }

    /// The client the document at `client_id` describes, from the cache or fetched now. The error
    /// says what is wrong, for the person or the client to read.
    pub async fn client(&self, client_id: &str) -> Result<Client, ClientError> {
        if let Some(cached) = self.store.document::<Cached>(client_id).await? {
            return cached.answer(client_id);
        }
        let url = self.check_url(client_id).map_err(ClientError::Unknown)?;
        // One fetch per URL at a time: the others wait for it and take its answer from the cache.
        let lock = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            fetching.entry(client_id.to_owned()).or_default().clone()
        };
        let answer = {
            let _turn = lock.lock().await;
            match self.store.document::<Cached>(client_id).await {
                Ok(Some(cached)) => cached.answer(client_id),
                Ok(None) => self.fetch_and_remember(client_id, &url).await,
                Err(err) => Err(err.into()),
            }
        };
        let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        if Arc::strong_count(&lock) <= 2 {
            fetching.remove(client_id);
        }
        answer
    }

    async fn fetch_and_remember(&self, client_id: &str, url: &Url) -> Result<Client, ClientError> {
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            return Err(ClientError::Unknown(
                "this server is fetching too many client metadata documents; try again shortly".into(),
            ));
        };
        let answer = match self.fetch(url, MAX_DOCUMENT_BYTES, false).await {
            Ok((document, max_age)) => {
                client_from_document(client_id, &document, &self.redirect_schemes).map(|client| (client, max_age))
            }
            Err(problem) => Err(problem),
        };
        match answer {
            Ok(((client, keys), max_age)) => {
                if max_age > 0 {
                    let cached = Cached::Client {
                        name: client.name.clone(),
                        redirect_uris: client.redirect_uris.clone(),
                        grant_types: client.grant_types.clone(),
                        jwks_uri: keys.uri,
                        jwks: keys.inline,
                    };
                    self.store.save_document(client_id, &cached, Duration::from_secs(max_age as u64)).await?;
                }
                Ok(client)
            }
            Err(problem) => {
                let cached = Cached::Refused(problem.clone());
                let ttl = Duration::from_secs(FAILURE_CACHE_SECS as u64);
                self.store.save_document(client_id, &cached, ttl).await?;
                Err(ClientError::Unknown(problem))
            }
        }
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

    /// Fetches a client's JWKS (`jwks_uri`) with the rules of metadata documents: one of the
    /// fetches in flight, https (loopback http only in development), public addresses only,
    /// no redirects, 16 KiB, 5 seconds. `any_address`: a URL from the configuration, which the
    /// operator chose, may be on a private network. Returns the document and its cache lifetime.
    pub async fn fetch_jwks(&self, jwks_uri: &str, any_address: bool) -> Result<(Value, i64), String> {
        let url = Url::parse(jwks_uri).map_err(|e| format!("the jwks_uri is not a valid URL ({e})"))?;
        if !any_address {
            match url.scheme() {
                "https" => {}
                "http" if self.allow_loopback_http && is_loopback_host(&url) => {}
                _ => return Err("a jwks_uri must use https".into()),
            }
            if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
                return Err("a jwks_uri must not contain credentials or a fragment".into());
            }
        }
        let Ok(_slot) = self.in_flight.clone().try_acquire_owned() else {
            return Err("this server is fetching too many client documents; try again shortly".into());
        };
        self.fetch(&url, MAX_JWKS_BYTES, any_address).await
    }

    /// Resolves, checks the addresses, and fetches the document from a checked address (any
    /// address with `any_address`: configured URLs), at most `max_bytes` of it.
    async fn fetch(&self, url: &Url, max_bytes: usize, any_address: bool) -> Result<(Value, i64), String> {
        let may_fetch_from = |ip: IpAddr| any_address || self.may_fetch_from(ip);
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
        if let Some(refused) = addresses.iter().find(|ip| !may_fetch_from(**ip)) {
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
        // The address the connection reached, checked again: it must be the one checked above.
        let reached = response.remote_addr().map(|address| address.ip());
        if reached.is_none_or(|ip| !addresses.contains(&ip) || !may_fetch_from(ip)) {
            return Err("the client metadata document was served from an address that was not checked".into());
        }
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("the client metadata document answered HTTP {}", response.status().as_u16()));
        }
        if response.content_length().is_some_and(|n| n > max_bytes as u64) {
            return Err(format!("the client metadata document is larger than {max_bytes} bytes"));
        }
        let max_age = cache_lifetime(response.headers().get(reqwest::header::CACHE_CONTROL));
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading the document failed: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > max_bytes {
                return Err(format!("the client metadata document is larger than {max_bytes} bytes"));
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

/// The IPv4 ranges of IANA's special-purpose address registry (and multicast): none is
/// fetched from, whether or not the registry calls it globally reachable.
const SPECIAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (CGNAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local (cloud metadata services)
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 31, 196, 0), 24), // AS112
    (Ipv4Addr::new(192, 52, 193, 0), 24), // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(192, 175, 48, 0), 24), // direct delegation AS112
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and the limited broadcast address
];

/// The IPv6 ranges of IANA's special-purpose address registry (and multicast). The ones that
/// embed an IPv4 address (IPv4-compatible, NAT64, 6to4, Teredo) are refused outright: through
/// them a public-looking address can reach a private IPv4 one.
const SPECIAL_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // unspecified, loopback, IPv4-compatible
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96), // IPv4/IPv6 translation (NAT64)
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use IPv4/IPv6 translation
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64), // dummy prefix
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments (Teredo, ...)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48), // direct delegation AS112
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16), // segment routing (SRv6) SIDs
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

fn in_range(address: u128, network: u128, prefix: u8, bits: u32) -> bool {
    let shift = bits - u32::from(prefix);
    (address >> shift) == (network >> shift)
}

/// Whether an address is on the public internet: in none of the special-purpose ranges above.
/// An IPv4-mapped IPv6 address is judged as the IPv4 address it maps.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !SPECIAL_V4
            .iter()
            .any(|(network, prefix)| in_range(u32::from(v4).into(), u32::from(*network).into(), *prefix, 32)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                !SPECIAL_V6.iter().any(|(network, prefix)| in_range(u128::from(v6), u128::from(*network), *prefix, 128))
            }
        },
    }
}

/// A document's `private_key_jwt` keys as the cache keeps them.
#[derive(Default)]
struct DocumentKeys {
    uri: Option<String>,
    inline: Option<String>,
}

/// Checks a fetched document and turns it into a client: a public one, or one that signs client
/// assertions with the keys it publishes (shared secrets make no sense in a published document).
fn client_from_document(
    client_id: &str,
    document: &Value,
    redirect_schemes: &[String],
) -> Result<(Client, DocumentKeys), String> {
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
        check_redirect_uri(uri, redirect_schemes)?;
    }
    let mut keys = DocumentKeys::default();
    let secret = match document.get("token_endpoint_auth_method").and_then(Value::as_str) {
        None | Some("none") => Secret::None,
        Some("private_key_jwt") => match (document.get("jwks_uri"), document.get("jwks")) {
            (Some(Value::String(uri)), None) => {
                let url = Url::parse(uri).map_err(|_| "jwks_uri is not a URL")?;
                // (Loopback `http` is fetched only with the development setting, see `fetch_jwks`.)
                if !(url.scheme() == "https" || url.scheme() == "http" && is_loopback_host(&url)) {
                    return Err("jwks_uri must use https".into());
                }
                keys.uri = Some(uri.clone());
                Secret::PrivateKeyJwt(ClientKeys::Uri(uri.clone()))
            }
            (None, Some(jwks)) => {
                let secret = Secret::PrivateKeyJwt(ClientKeys::inline(jwks)?);
                keys.inline = Some(jwks.to_string());
                secret
            }
            _ => return Err("private_key_jwt needs exactly one of jwks_uri (a string) and jwks".into()),
        },
        Some(other) => {
            return Err(format!(
                "token_endpoint_auth_method `{other}` is not supported for metadata-document clients (`none`, \
                 with PKCE, or `private_key_jwt`)"
            ));
        }
    };
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
    let client = Client {
        client_id: client_id.to_owned(),
        name: name.to_owned(),
        origin: Origin::MetadataDocument,
        redirect_uris,
        grant_types,
        secret,
        roles: Vec::new(),
        scopes: Vec::new(),
    };
    Ok((client, keys))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_public_addresses_may_be_fetched() {
        // One address in every special-purpose range, and its edges where they are easy to get wrong.
        for special in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.9",
            "192.0.2.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.1",
            "192.168.1.1",
            "192.175.48.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::7f00:1",
            "::a00:1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "100::1",
            "100:0:0:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:1::1",
            "2001:2::1",
            "2001:10::1",
            "2001:1ff::1",
            "2001:db8::1",
            "2002::1",
            "2002:7f00:1::1",
            "2620:4f:8000::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "feff::1",
            "ff02::1",
        ] {
            assert!(!is_public(special.parse().unwrap()), "{special}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "2606:4700::1111",
            "2001:200::1",
            "2620:4f:8001::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn client_id_urls_follow_the_draft() {
        let store = || IssuerStore::new(Arc::new(crate::store::MemoryStore::new()));
        let strict = MetadataDocuments::new(false, Vec::new(), store());
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
        let dev = MetadataDocuments::new(true, Vec::new(), store());
        assert!(dev.check_url("http://127.0.0.1:9000/c.json").is_ok());
        assert!(dev.check_url("http://app.example/c.json").is_err());
    }

    #[test]
    fn documents_must_name_themselves_and_list_valid_redirect_uris() {
        let id = "https://app.example/c.json";
        let good = json!({ "client_id": id, "client_name": "App", "redirect_uris": ["http://127.0.0.1/cb"] });
        let (client, _) = client_from_document(id, &good, &[]).unwrap();
        assert_eq!(
            (client.name.as_str(), client.grant_types.as_slice()),
            ("App", ["authorization_code".to_owned()].as_slice())
        );
        let mut other_id = good.clone();
        other_id["client_id"] = json!("https://evil.example/c.json");
        assert!(client_from_document(id, &other_id, &[]).is_err());
        let mut no_name = good.clone();
        no_name.as_object_mut().unwrap().remove("client_name");
        assert!(client_from_document(id, &no_name, &[]).is_err());
        let mut bad_uri = good.clone();
        bad_uri["redirect_uris"] = json!(["javascript:alert(1)"]);
        assert!(client_from_document(id, &bad_uri, &[]).is_err());
        let mut secret = good.clone();
        secret["token_endpoint_auth_method"] = json!("client_secret_basic");
        assert!(client_from_document(id, &secret, &[]).is_err());
        let mut keyed = good.clone();
        keyed["token_endpoint_auth_method"] = json!("private_key_jwt");
        assert!(client_from_document(id, &keyed, &[]).is_err(), "private_key_jwt without keys");
        keyed["jwks_uri"] = json!("https://app.example/jwks.json");
        let (client, keys) = client_from_document(id, &keyed, &[]).unwrap();
        assert!(matches!(client.secret, Secret::PrivateKeyJwt(ClientKeys::Uri(_))));
        assert_eq!(keys.uri.as_deref(), Some("https://app.example/jwks.json"));
        keyed["jwks"] = json!({ "keys": [] });
        assert!(client_from_document(id, &keyed, &[]).is_err(), "both jwks and jwks_uri");
    }

    #[tokio::test]
    async fn a_documents_jwks_uri_is_fetched_only_from_public_https_addresses() {
        let store = || IssuerStore::new(Arc::new(crate::store::MemoryStore::new()));
        let strict = MetadataDocuments::new(false, Vec::new(), store());
        for (uri, problem) in [
            ("http://127.0.0.1:9/jwks.json", "must use https"),
            ("http://keys.example/jwks.json", "must use https"),
            ("https://user:pw@keys.example/jwks.json", "credentials"),
            ("https://127.0.0.1:9/jwks.json", "non-public address"),
            ("https://[::1]:9/jwks.json", "non-public address"),
            ("https://169.254.169.254/jwks.json", "non-public address"),
        ] {
            let refused = strict.fetch_jwks(uri, false).await.unwrap_err();
            assert!(refused.contains(problem), "{uri}: {refused}");
        }
        // A configured URL may be on a private network: refused here only because nothing listens.
        let refused = strict.fetch_jwks("http://127.0.0.1:9/jwks.json", true).await.unwrap_err();
        assert!(refused.contains("failed"), "{refused}");
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
