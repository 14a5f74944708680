//! Protocol versions, and which era a request belongs to.
//!
//! Modern (2026-07-28): stateless, every request carries `_meta` with its protocol version.
//! Legacy (2025-11-25, 2025-06-18, 2025-03-26): an `initialize` handshake opens a session.
//! Both are served on the same endpoint; the era is decided per request, from how the request
//! itself is shaped (the body-primary procedure of the dual-era rules).

use axum::http::{HeaderMap, HeaderName};

use super::jsonrpc::Message;

/// The modern revisions served (stateless, per-request `_meta`).
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];
/// The legacy revisions served through an `initialize` handshake, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Versions that are negotiated with `initialize` (including ones too old for Streamable HTTP).
const HANDSHAKE_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// What a legacy request means when it has no `MCP-Protocol-Version` header.
pub const DEFAULT_LEGACY_VERSION: &str = "2025-03-26";

/// `_meta` key of the per-request protocol version.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the per-request client capabilities.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the per-request client info.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the per-request log level.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of serverInfo on modern results.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key that tags notifications on a listen stream.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

// Header names as `HeaderName`s: a lookup by `&str` validates and lower-cases the name first,
// on every request.
pub static HEADER_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub static HEADER_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
pub static HEADER_METHOD: HeaderName = HeaderName::from_static("mcp-method");
pub static HEADER_NAME: HeaderName = HeaderName::from_static("mcp-name");
pub static HEADER_LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// A negotiated legacy protocol version; ordered by date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LegacyVersion {
    V2025_03_26,
    V2025_06_18,
    V2025_11_25,
}

impl LegacyVersion {
    pub fn parse(version: &str) -> Option<Self> {
        match version {
            "2025-03-26" => Some(Self::V2025_03_26),
            "2025-06-18" => Some(Self::V2025_06_18),
            "2025-11-25" => Some(Self::V2025_11_25),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
        }
    }

    /// The `initialize` negotiation: echo a version we support, else offer our newest.
    pub fn negotiate(requested: &str) -> Self {
        Self::parse(requested).unwrap_or(Self::V2025_11_25)
    }

    /// SEP-1699 priming events and server-side stream closes: only clients of 2025-11-25 or
    /// later understand them (older ones crash on an empty `data:` line).
    pub fn supports_polling(self) -> bool {
        self >= Self::V2025_11_25
    }

    /// 2025-11-25 and older report an unknown resource as -32002.
    pub fn resource_not_found_code(self) -> i64 {
        super::jsonrpc::code::RESOURCE_NOT_FOUND_LEGACY
    }
}

/// Which era a request is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Modern,
    Legacy,
}

/// Whether `version` is negotiated by handshake (legacy). Anything else, including unknown
/// strings, is treated as a modern claim so it gets a modern error (-32022) that names the
/// versions we support.
pub fn is_handshake_version(version: &str) -> bool {
    HANDSHAKE_VERSIONS.contains(&version)
}

/// The `MCP-Protocol-Version` header, if present and readable.
pub fn header_version(headers: &HeaderMap) -> Option<&str> {
    headers.get(&HEADER_PROTOCOL_VERSION).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Decides the era of a POSTed message (the dual-era decision procedure):
/// 1. a response to a server request only exists in sessions: legacy;
/// 2. a request whose `_meta` claims a protocol version: modern, whatever its method;
/// 3. `initialize` without such a claim: the legacy handshake;
/// 4. otherwise the header decides: a non-handshake version is modern (and malformed, since the
///    body lacks its envelope); absent or a handshake version is legacy.
pub fn classify(message: &Message, headers: &HeaderMap) -> Era {
    let params = match message {
        Message::Response { .. } => return Era::Legacy,
        Message::Request { params, .. } | Message::Notification { params, .. } => params,
    };
    if params.meta().is_some_and(|meta| meta.protocol_version.is_some()) {
        return Era::Modern;
    }
    if message.method() == Some("initialize") {
        return Era::Legacy;
    }
    match header_version(headers) {
        Some(version) if !is_handshake_version(version) => Era::Modern,
        _ => Era::Legacy,
    }
}

#[cfg(test)]
mod tests {
    use super::super::jsonrpc::Incoming;
    use super::*;
    use serde_json::json;

    fn request(method: &str, params: serde_json::Value) -> Message {
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        match super::super::jsonrpc::parse(body.to_string().as_bytes()) {
            Ok(Incoming::Single(message)) => message,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn headers(version: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = version {
            h.insert(&HEADER_PROTOCOL_VERSION, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_meta_claim_is_modern_even_for_initialize() {
        let msg = request("initialize", json!({"_meta": {META_PROTOCOL_VERSION: "2026-07-28"}}));
        assert_eq!(classify(&msg, &headers(None)), Era::Modern);
    }

    #[test]
    fn initialize_without_claim_is_legacy() {
        assert_eq!(classify(&request("initialize", json!({})), &headers(Some("2026-07-28"))), Era::Legacy);
    }

    #[test]
    fn the_header_decides_without_a_claim() {
        let msg = request("tools/list", json!({}));
        assert_eq!(classify(&msg, &headers(Some("2026-07-28"))), Era::Modern);
        assert_eq!(classify(&msg, &headers(Some("v999.0.0"))), Era::Modern);
        assert_eq!(classify(&msg, &headers(Some("2025-06-18"))), Era::Legacy);
        assert_eq!(classify(&msg, &headers(None)), Era::Legacy);
    }

    #[test]
    fn negotiation_echoes_supported_and_counter_offers_the_newest() {
        assert_eq!(LegacyVersion::negotiate("2025-06-18"), LegacyVersion::V2025_06_18);
        assert_eq!(LegacyVersion::negotiate("2024-11-05"), LegacyVersion::V2025_11_25);
        assert_eq!(LegacyVersion::negotiate("1999-01-01"), LegacyVersion::V2025_11_25);
    }
}
