//! JSON-RPC 2.0 on the wire: parsing what clients send, and the error object we answer with.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// JSON-RPC and MCP error codes used by this server.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A request the client cancelled (LSP's code). Only ever answered where HTTP forces an
    /// answer (a JSON response); a cancelled stream simply ends.
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// Legacy (2025-11-25 and older) resource-not-found.
    pub const RESOURCE_NOT_FOUND_LEGACY: i64 = -32002;
    /// 2026-07-28: a routing header disagrees with the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// 2026-07-28: the request needs a client capability it did not declare.
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    /// 2026-07-28: the protocol version is not one we serve.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
}

/// A request id: a string or an integer, never null (MCP forbids null ids).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Number(i64),
    String(Arc<str>),
}

impl Id {
    /// Reads an id from JSON; `None` for null, floats, booleans and structures.
    pub fn from_value(value: &Value) -> Option<Id> {
        match value {
            Value::Number(n) => n.as_i64().map(Id::Number),
            Value::String(s) => Some(Id::String(Arc::from(s.as_str()))),
            _ => None,
        }
    }

    /// The id as JSON, with its original type (a string stays a string).
    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => json!(n),
            Id::String(s) => json!(&**s),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Number(n) => serializer.serialize_i64(*n),
            Id::String(s) => serializer.serialize_str(s),
        }
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, Serialize)]
pub struct RpcError {
    pub code: i64,
    pub message: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<Cow<'static, str>>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::PARSE_ERROR, message)
    }

    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INVALID_REQUEST, message)
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(code::METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    pub fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::INTERNAL_ERROR, message)
    }

    pub fn header_mismatch(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(code::HEADER_MISMATCH, message)
    }

    /// -32021, naming the missing capabilities as a `ClientCapabilities` object.
    pub fn missing_client_capability(required: Value) -> Self {
        Self::new(code::MISSING_CLIENT_CAPABILITY, "Missing required client capability")
            .with_data(json!({ "requiredCapabilities": required }))
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// The envelope of a response or notification, serialised around borrowed contents: a result
/// is written straight from the handler's value, never copied into a new JSON tree first. The
/// fields are in the order the keys of a `serde_json::Map` would sort into.
#[derive(Serialize)]
struct Frame<'a, R: Serialize, E: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a E>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Id>,
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a R>,
}

impl<'a, R: Serialize, E: Serialize> Frame<'a, R, E> {
    fn to_vec(&self) -> Vec<u8> {
        // serde_json starts at 128 bytes; most frames are a little larger, and growing twice
        // (128 -> 256 -> 512) copied them twice.
        let mut frame = Vec::with_capacity(512);
        serde_json::to_writer(&mut frame, self).expect("frames serialise");
        frame
    }
}

/// Serialises `{"jsonrpc":"2.0","id":..,"result":..}`.
pub fn result_frame(id: &Id, result: &impl Serialize) -> Vec<u8> {
    Frame::<_, ()> { error: None, id: Some(id), jsonrpc: "2.0", method: None, params: None, result: Some(result) }
        .to_vec()
}

/// Serialises an error response. The id is omitted, never `null`, when the request's id could
/// not be read (MCP schemas type `id` as string | integer).
pub fn error_frame(id: Option<&Id>, error: &RpcError) -> Vec<u8> {
    Frame::<(), _> { error: Some(error), id, jsonrpc: "2.0", method: None, params: None, result: None }.to_vec()
}

/// Serialises a notification.
pub fn notification_frame(method: &str, params: Value) -> Vec<u8> {
    Frame::<(), ()> { error: None, id: None, jsonrpc: "2.0", method: Some(method), params: Some(&params), result: None }
        .to_vec()
}

/// One message as received, before its shape is checked.
#[derive(Debug, Deserialize)]
struct RawMessage {
    #[serde(default)]
    jsonrpc: Option<Value>,
    /// `Some(Value::Null)` for an explicit `"id": null`, `None` when absent.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// Keeps an explicit `null` distinguishable from an absent field.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A well-formed client message.
#[derive(Debug, Clone)]
pub enum Message {
    Request {
        id: Id,
        method: String,
        params: Map<String, Value>,
    },
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// A client's answer to a request the server sent (legacy sessions only).
    Response {
        id: Id,
        outcome: Result<Value, Value>,
    },
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response { .. } => None,
        }
    }

    pub fn params(&self) -> Option<&Map<String, Value>> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => Some(params),
            Message::Response { .. } => None,
        }
    }
}

/// The body of a POST: one message or (2025-03-26 only) a batch.
#[derive(Debug)]
pub enum Incoming {
    Single(Message),
    Batch(Vec<Result<Message, (Option<Id>, RpcError)>>),
}

/// Why a body could not be turned into a message: the error to answer with, and the request id
/// when it was readable.
#[derive(Debug)]
pub struct Rejected {
    pub id: Option<Id>,
    pub error: RpcError,
}

/// Parses a POST body. Syntax errors (including invalid UTF-8, nesting beyond serde_json's limit
/// and duplicate keys) are -32700; valid JSON of the wrong shape is -32600.
pub fn parse(body: &[u8]) -> Result<Incoming, Rejected> {
    // UTF-8 checked once for the whole body: parsed from bytes, serde_json checks every string
    // on its own, and for the short strings of a message that call cost more than the check
    // (a sixth of the parse, before this).
    let body = std::str::from_utf8(body)
        .map_err(|e| Rejected { id: None, error: RpcError::parse_error(format!("Parse error: {e}")) })?;
    let first = body.bytes().find(|b| !b.is_ascii_whitespace());
    if first == Some(b'[') {
        let items: Vec<Value> = serde_json::from_str(body).map_err(|e| reject_json(&e))?;
        if items.is_empty() {
            return Err(Rejected { id: None, error: RpcError::invalid_request("empty batch") });
        }
        let messages = items
            .into_iter()
            .map(|item| {
                let raw: RawMessage = serde_json::from_value(item)
                    .map_err(|e| (None, RpcError::invalid_request(format!("invalid message: {e}"))))?;
                validate(raw).map_err(|r| (r.id, r.error))
            })
            .collect();
        return Ok(Incoming::Batch(messages));
    }
    let raw: RawMessage = serde_json::from_str(body).map_err(|e| reject_json(&e))?;
    validate(raw).map(Incoming::Single)
}

fn reject_json(err: &serde_json::Error) -> Rejected {
    let error = if err.is_data() {
        RpcError::invalid_request(format!("not a JSON-RPC message: {err}"))
    } else {
        RpcError::parse_error(format!("Parse error: {err}"))
    };
    Rejected { id: None, error }
}

fn validate(raw: RawMessage) -> Result<Message, Rejected> {
    let id = match &raw.id {
        None => None,
        Some(value) => match Id::from_value(value) {
            Some(id) => Some(id),
            None => {
                return Err(Rejected {
                    id: None,
                    error: RpcError::invalid_request("id must be a string or an integer"),
                });
            }
        },
    };
    let invalid = |message: &'static str| Rejected { id: id.clone(), error: RpcError::invalid_request(message) };
    if raw.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("jsonrpc must be \"2.0\""));
    }
    match (raw.method, raw.result, raw.error) {
        (Some(method), None, None) => {
            let Value::String(method) = method else {
                return Err(invalid("method must be a string"));
            };
            let params = match raw.params {
                None => Map::new(),
                Some(Value::Object(map)) => map,
                Some(_) => {
                    return Err(Rejected { id, error: RpcError::invalid_params("params must be an object") });
                }
            };
            Ok(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            })
        }
        (None, Some(result), None) => match id {
            Some(id) => Ok(Message::Response { id, outcome: Ok(result) }),
            None => Err(invalid("a response needs an id")),
        },
        (None, None, Some(error)) => match id {
            Some(id) => Ok(Message::Response { id, outcome: Err(error) }),
            None => Err(invalid("a response needs an id")),
        },
        _ => Err(invalid("a message has exactly one of method, result or error")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_notification_and_response_are_told_apart() {
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Incoming::Single(Message::Request { id: Id::Number(1), .. }))
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Incoming::Single(Message::Notification { .. }))
        ));
        assert!(matches!(
            parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Incoming::Single(Message::Response { outcome: Ok(_), .. }))
        ));
    }

    #[test]
    fn null_id_is_an_invalid_request_without_id() {
        let err = parse(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).unwrap_err();
        assert_eq!(err.error.code, code::INVALID_REQUEST);
        assert!(err.id.is_none());
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert_eq!(parse(b"\xff\xfe{").unwrap_err().error.code, code::PARSE_ERROR);
        assert_eq!(parse(b"{\"jsonrpc\":").unwrap_err().error.code, code::PARSE_ERROR);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"x"}"#).unwrap_err();
        assert!(err.error.code == code::INVALID_REQUEST || err.error.code == code::PARSE_ERROR);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes()).unwrap_err().error.code, code::PARSE_ERROR);
    }

    #[test]
    fn frames_hold_what_they_did_when_built_as_json_values() {
        let json = |bytes: Vec<u8>| serde_json::from_slice::<Value>(&bytes).unwrap();
        let result = json!({ "z": 1, "a": [true] });
        assert_eq!(
            result_frame(&Id::String("a".into()), &result),
            serde_json::to_vec(&json!({ "jsonrpc": "2.0", "id": "a", "result": result })).unwrap(),
            "byte for byte"
        );
        let error = RpcError::invalid_params("bad").with_data(json!({ "x": 1 }));
        assert_eq!(
            json(error_frame(Some(&Id::Number(7)), &error)),
            json!({ "jsonrpc": "2.0", "id": 7, "error": { "code": -32602, "message": "bad", "data": { "x": 1 } } })
        );
        assert_eq!(
            json(error_frame(None, &RpcError::parse_error("p"))),
            json!({ "jsonrpc": "2.0", "error": { "code": -32700, "message": "p" } }),
            "no id rather than a null one"
        );
        assert_eq!(
            json(notification_frame("notifications/x", json!({ "b": 2 }))),
            json!({ "jsonrpc": "2.0", "method": "notifications/x", "params": { "b": 2 } })
        );
    }

    #[test]
    fn wrong_version_keeps_the_id() {
        let err = parse(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#).unwrap_err();
        assert_eq!(err.id, Some(Id::Number(7)));
    }
}
