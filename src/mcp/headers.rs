//! HTTP headers the transport reads: content negotiation for both eras, and the 2026-07-28
//! routing headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`) checked against the body.

use std::borrow::Cow;

use axum::http::header::AsHeaderName;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::jsonrpc::RpcError;
use super::version::{HEADER_METHOD, HEADER_NAME};
use crate::error::AppError;

/// What the client's `Accept` header admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub json: bool,
    pub sse: bool,
}

impl Accepts {
    /// Reads `Accept`. A missing header admits everything. Clients must list both types, but
    /// refusing one that lists only one of them breaks real clients for no gain (we can always
    /// answer in the type it named), so only an `Accept` that admits neither is refused.
    pub fn from_headers(headers: &HeaderMap) -> Accepts {
        let mut values = headers.get_all(header::ACCEPT).iter().filter(|v| v.to_str().is_ok()).peekable();
        if values.peek().is_none() {
            return Accepts { json: true, sse: true };
        }
        let mut accepts = Accepts { json: false, sse: false };
        // This runs on every request: the (ASCII) value is cut up as bytes, and media types
        // compare case-insensitively without being copied to lower case.
        let is = |media: &[u8], name: &str| media.eq_ignore_ascii_case(name.as_bytes());
        for media in values.flat_map(|v| v.as_bytes().split(|&b| b == b',')) {
            let media = media.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
            if media == b"*/*" {
                return Accepts { json: true, sse: true };
            } else if is(media, "application/*") || is(media, "application/json") {
                accepts.json = true;
            } else if is(media, "text/*") || is(media, "text/event-stream") {
                accepts.sse = true;
            }
        }
        accepts
    }

    pub fn any(self) -> bool {
        self.json || self.sse
    }
}

/// POST bodies must be JSON (`application/json`, any parameters).
pub fn require_json_body(headers: &HeaderMap) -> Result<(), AppError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else if media.is_empty() {
        Err(AppError::UnsupportedMediaType("Content-Type must be application/json".into()))
    } else {
        Err(AppError::UnsupportedMediaType(format!("Content-Type must be application/json, not {media}")))
    }
}

/// Reads a routing header: absent, or exactly one value with optional whitespace trimmed and
/// the Base64 sentinel decoded. A repeated header is a mismatch (proxies may disagree on which
/// copy counts).
fn routing_header<'h, N>(headers: &'h HeaderMap, name: N) -> Result<Option<Cow<'h, str>>, RpcError>
where
    N: AsHeaderName + Copy + std::fmt::Display,
{
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(RpcError::header_mismatch(format!("Header mismatch: {name} is repeated")));
    }
    let raw = std::str::from_utf8(first.as_bytes())
        .map_err(|_| RpcError::header_mismatch(format!("Header mismatch: {name} is not valid UTF-8")))?;
    let trimmed = raw.trim_matches([' ', '\t']);
    decode_sentinel(trimmed)
        .map(Some)
        .ok_or_else(|| RpcError::header_mismatch(format!("Header mismatch: {name} has an invalid base64 value")))
}

/// Decodes `=?base64?<standard base64>?=`; any other value is literal (and borrowed). Decoding
/// is strict: canonical padding, no stray bits, valid UTF-8. `None` means malformed.
pub fn decode_sentinel(value: &str) -> Option<Cow<'_, str>> {
    let Some(encoded) = value.strip_prefix("=?base64?").and_then(|rest| rest.strip_suffix("?=")) else {
        return Some(Cow::Borrowed(value));
    };
    let bytes = STANDARD.decode(encoded).ok()?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

/// The body value a routing header mirrors, in its header form.
fn header_form(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether a header value equals a body value. Integers compare numerically (`42.0` = `42`).
fn same(header: &str, body: &Value) -> bool {
    match body {
        Value::Number(n) => match (header.parse::<f64>(), n.as_f64()) {
            (Ok(h), Some(b)) => h == b,
            _ => false,
        },
        other => header_form(other).is_some_and(|b| b == header),
    }
}

/// One `x-mcp-header` annotation of a tool's input schema: the header suffix and the chain of
/// `properties` keys leading to the annotated value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    pub name: String,
    pub path: Vec<String>,
    /// The full header name, `mcp-param-<name>` in lower case: made once, at registration.
    pub header: String,
}

impl HeaderParam {
    pub fn new(name: &str, path: Vec<String>) -> Self {
        Self { name: name.to_owned(), path, header: format!("mcp-param-{}", name.to_ascii_lowercase()) }
    }
}

/// Checks the 2026-07-28 routing headers of a request against its body (400 + -32020 on any
/// disagreement). `header_params` are the annotations of the called tool, if any.
pub fn check_routing_headers(
    headers: &HeaderMap,
    method: &str,
    params: &Map<String, Value>,
    header_params: &[HeaderParam],
) -> Result<(), RpcError> {
    match routing_header(headers, &HEADER_METHOD)? {
        None => {
            return Err(RpcError::header_mismatch("Header mismatch: Mcp-Method header is required"));
        }
        Some(value) if value != method => {
            return Err(RpcError::header_mismatch(format!(
                "Header mismatch: Mcp-Method header value '{value}' does not match body value '{method}'"
            )));
        }
        Some(_) => {}
    }

    let name_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body = params.get(field).and_then(Value::as_str);
        match (routing_header(headers, &HEADER_NAME)?, body) {
            (None, Some(_)) => {
                return Err(RpcError::header_mismatch("Header mismatch: Mcp-Name header is required"));
            }
            (Some(value), Some(body)) if value != body => {
                return Err(RpcError::header_mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{value}' does not match body value '{body}'"
                )));
            }
            (Some(value), None) => {
                return Err(RpcError::header_mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{value}' has no {field} in the body"
                )));
            }
            _ => {}
        }
    }

    if header_params.is_empty() {
        return Ok(());
    }
    let arguments = params.get("arguments").and_then(Value::as_object);
    for param in header_params {
        let body = arguments.and_then(|args| lookup(args, &param.path)).filter(|v| !v.is_null());
        match (routing_header(headers, param.header.as_str())?, body) {
            (None, None) => {}
            (Some(value), Some(body)) if same(&value, body) => {}
            (None, Some(_)) => {
                return Err(RpcError::header_mismatch(format!(
                    "Header mismatch: Mcp-Param-{} header is required",
                    param.name
                )));
            }
            (Some(value), _) => {
                return Err(RpcError::header_mismatch(format!(
                    "Header mismatch: Mcp-Param-{} header value '{value}' does not match the body",
                    param.name
                )));
            }
        }
    }
    Ok(())
}

fn lookup<'a>(args: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut value = args.get(first)?;
    for key in rest {
        value = value.as_object()?.get(key)?;
    }
    Some(value)
}

/// Collects the `x-mcp-header` annotations of an input schema. Only properties reachable through
/// a chain of `properties` keys count (the spec's static-reachability rule); annotations that
/// break the rules make the definition invalid, reported as `Err` so a bad tool is refused at
/// registration instead of being silently dropped by clients.
pub fn header_params(schema: &Value) -> Result<Vec<HeaderParam>, String> {
    let mut found = Vec::new();
    collect(schema, &mut Vec::new(), &mut found)?;
    if count_annotations(schema) != found.len() {
        return Err("x-mcp-header may only annotate properties reachable through `properties` keys".into());
    }
    let mut seen = std::collections::HashSet::new();
    for param in &found {
        if !seen.insert(param.name.to_ascii_lowercase()) {
            return Err(format!("x-mcp-header `{}` is used twice", param.name));
        }
    }
    Ok(found)
}

fn count_annotations(value: &Value) -> usize {
    match value {
        Value::Object(map) => {
            usize::from(map.contains_key("x-mcp-header")) + map.values().map(count_annotations).sum::<usize>()
        }
        Value::Array(items) => items.iter().map(count_annotations).sum(),
        _ => 0,
    }
}

fn collect(schema: &Value, path: &mut Vec<String>, found: &mut Vec<HeaderParam>) -> Result<(), String> {
    let Some(object) = schema.as_object() else {
        return Ok(());
    };
    if let Some(name) = object.get("x-mcp-header") {
        let name = name.as_str().ok_or("x-mcp-header must be a string")?;
        let is_token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !is_token {
            return Err(format!("x-mcp-header `{name}` is not an HTTP field-name token"));
        }
        if path.is_empty() {
            return Err("x-mcp-header on the schema root".into());
        }
        match object.get("type").and_then(Value::as_str) {
            Some("string" | "integer" | "boolean") => {}
            _ => {
                return Err(format!("x-mcp-header `{name}` must annotate a string, integer or boolean"));
            }
        }
        found.push(HeaderParam::new(name, path.clone()));
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (key, sub) in properties {
            path.push(key.clone());
            collect(sub, path, found)?;
            path.pop();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sentinel_decoding_is_strict() {
        assert_eq!(decode_sentinel("=?base64?SGVsbG8=?=").as_deref(), Some("Hello"));
        assert_eq!(decode_sentinel("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(), Some("Hello, 世界"));
        assert_eq!(decode_sentinel("=?base64?SGVsbG8?="), None, "missing padding");
        assert_eq!(decode_sentinel("=?base64?SGVs!!!bG8=?="), None, "bad alphabet");
        assert_eq!(decode_sentinel("SGVsbG8=").as_deref(), Some("SGVsbG8="), "no markers: literal");
        assert_eq!(decode_sentinel("=?base64?SGVsbG8=").as_deref(), Some("=?base64?SGVsbG8="));
    }

    #[test]
    fn accept_admits_what_it_lists() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(Accepts::from_headers(&h), Accepts { json: true, sse: false });
        h.insert(header::ACCEPT, "text/html".parse().unwrap());
        assert!(!Accepts::from_headers(&h).any());
        assert!(Accepts::from_headers(&HeaderMap::new()).any());
        h.insert(header::ACCEPT, "Application/JSON;q=0.9 ,\tTEXT/Event-Stream; charset=utf-8".parse().unwrap());
        assert_eq!(Accepts::from_headers(&h), Accepts { json: true, sse: true });
        h.insert(header::ACCEPT, "text/html, */*;q=0.1".parse().unwrap());
        assert_eq!(Accepts::from_headers(&h), Accepts { json: true, sse: true });
        h.insert(header::ACCEPT, "text/*".parse().unwrap());
        h.append(header::ACCEPT, "image/png".parse().unwrap());
        assert_eq!(Accepts::from_headers(&h), Accepts { json: false, sse: true });
        h.insert(header::ACCEPT, "application/jsonx, xtext/event-stream".parse().unwrap());
        assert!(!Accepts::from_headers(&h).any(), "whole media types only");
    }

    #[test]
    fn header_params_follow_properties_only() {
        let schema = json!({"type":"object","properties":{
            "region": {"type":"string","x-mcp-header":"Region"},
            "nested": {"type":"object","properties":{"id":{"type":"integer","x-mcp-header":"Id"}}},
            "list": {"type":"array","items":{"type":"string"}}
        }});
        let params = header_params(&schema).unwrap();
        assert_eq!(params.len(), 2);
        assert!(
            header_params(&json!({"type":"object","properties":{"n":{"type":"number","x-mcp-header":"N"}}})).is_err()
        );
        let under_items =
            json!({"type":"object","properties":{"l":{"type":"array","items":{"type":"string","x-mcp-header":"L"}}}});
        assert!(header_params(&under_items).is_err());
    }
}
