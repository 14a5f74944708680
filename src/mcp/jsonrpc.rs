//! JSON-RPC 2.0 on the wire: parsing what clients send, and the error object we answer with.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
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
/// not be read (MCP schemas type `id` as string | integer). Every error either era writes passes
/// here, so this is where an observed operation learns its error code (see [`super::observe`]).
pub fn error_frame(id: Option<&Id>, error: &RpcError) -> Vec<u8> {
    crate::observe::report(crate::observe::Outcome::Rpc(error.code));
    Frame::<(), _> { error: Some(error), id, jsonrpc: "2.0", method: None, params: None, result: None }.to_vec()
}

/// Serialises a notification.
pub fn notification_frame(method: &str, params: Value) -> Vec<u8> {
    Frame::<(), ()> { error: None, id: None, jsonrpc: "2.0", method: Some(method), params: Some(&params), result: None }
        .to_vec()
}

/// One message as received, before its shape is checked. The members are read without a JSON
/// tree of their own where the server only needs to know one thing about them (`jsonrpc`,
/// `method`), and `params` keeps its `_meta` apart (see [`Params`]): a cached `tools/call`
/// parsed its body into `serde_json` values for a ninth of its instructions (issue 9).
#[derive(Debug, Deserialize)]
struct RawMessage {
    #[serde(default)]
    jsonrpc: JsonRpc2,
    /// `Some(Value::Null)` for an explicit `"id": null`, `None` when absent.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present_any")]
    method: Option<Text>,
    #[serde(default, deserialize_with = "present_any")]
    params: Option<RawParams>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// Keeps an explicit `null` distinguishable from an absent field.
pub(super) fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A member that is there, whatever its JSON type (see [`AnyShape`]).
fn present_any<'de, D: Deserializer<'de>, T: AnyShape<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    deserializer.deserialize_any(AnyShapeVisitor(PhantomData)).map(Some)
}

/// A member read from any JSON value: what a type makes of the shapes it accepts, and of every
/// other one (read and dropped). A member of the wrong type thus reaches `validate`, which
/// answers with the request's id, instead of failing the parse of the whole message.
pub(super) trait AnyShape<'de>: Sized {
    /// Any shape the type does not take.
    fn other() -> Self;
    fn null() -> Self {
        Self::other()
    }
    fn string(_: Cow<'de, str>) -> Self {
        Self::other()
    }
    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::other())
    }
}

/// Deserialises an [`AnyShape`] type as a member of a derived struct or a map.
pub(super) struct Any<T>(pub T);

impl<'de, T: AnyShape<'de>> Deserialize<'de> for Any<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyShapeVisitor(PhantomData)).map(Any)
    }
}

struct AnyShapeVisitor<T>(PhantomData<T>);

impl<'de, T: AnyShape<'de>> Visitor<'de> for AnyShapeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::other())
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::null())
    }
    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<T, E> {
        Ok(T::string(Cow::Borrowed(value)))
    }
    fn visit_str<E>(self, value: &str) -> Result<T, E> {
        Ok(T::string(Cow::Owned(value.to_owned())))
    }
    fn visit_string<E>(self, value: String) -> Result<T, E> {
        Ok(T::string(Cow::Owned(value)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::other())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::map(map)
    }
}

/// `jsonrpc`: whether it is the string `"2.0"`.
#[derive(Debug, Default)]
struct JsonRpc2(bool);

impl<'de> Deserialize<'de> for JsonRpc2 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Any::deserialize(deserializer).map(|Any(version)| version)
    }
}

impl AnyShape<'_> for JsonRpc2 {
    fn other() -> Self {
        JsonRpc2(false)
    }
    fn string(version: Cow<'_, str>) -> Self {
        JsonRpc2(version == "2.0")
    }
}

/// A member that must be a string (`method`): `None` when it is something else.
#[derive(Debug)]
struct Text(Option<String>);

impl AnyShape<'_> for Text {
    fn other() -> Self {
        Text(None)
    }
    fn string(text: Cow<'_, str>) -> Self {
        Text(Some(text.into_owned()))
    }
}

/// `params` as received: `null` counts as absent, as it always has here.
#[derive(Debug)]
enum RawParams {
    Absent,
    Object(Params),
    NotAnObject,
}

impl<'de> AnyShape<'de> for RawParams {
    fn other() -> Self {
        RawParams::NotAnObject
    }
    fn null() -> Self {
        RawParams::Absent
    }
    fn map<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        let mut params = Params::default();
        while let Some(ParamKey(key)) = map.next_key()? {
            match key {
                // A repeated `_meta`, like any repeated key of a JSON object here, counts once:
                // the last one.
                None => params.meta = Some(Box::new(map.next_value::<Any<RequestMeta>>()?.0)),
                Some(key) => {
                    params.members.insert(key, map.next_value()?);
                }
            }
        }
        Ok(RawParams::Object(params))
    }
}

/// A key of `params`: `None` for `_meta`, which is never copied into a `String`.
struct ParamKey(Option<String>);

impl<'de> Deserialize<'de> for ParamKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ParamKeyVisitor)
    }
}

struct ParamKeyVisitor;

impl Visitor<'_> for ParamKeyVisitor {
    type Value = ParamKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E>(self, key: &str) -> Result<ParamKey, E> {
        Ok(ParamKey((key != "_meta").then(|| key.to_owned())))
    }
    fn visit_string<E>(self, key: String) -> Result<ParamKey, E> {
        Ok(ParamKey((key != "_meta").then_some(key)))
    }
}

/// The `params` of a request or notification: its members, which the handlers read as a JSON
/// object (it derefs to one), and the entries of its `_meta` that the server reads, taken out
/// while the message is parsed ([`RequestMeta`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// Boxed, and only when the message has a `_meta`: a message is moved a few times before it
    /// is read, and with the entries inline (128 bytes) those moves became `memcpy` calls, 1.6k
    /// instructions more per legacy call (`profile.sh legacy`), whose requests mostly have no
    /// `_meta` at all.
    meta: Option<Box<RequestMeta>>,
    members: Map<String, Value>,
}

impl Params {
    /// The `_meta` entries read (`None` without a `_meta`).
    pub fn meta(&self) -> Option<&RequestMeta> {
        self.meta.as_deref()
    }

    /// The `_meta` entries read, and the members.
    pub fn into_parts(self) -> (RequestMeta, Map<String, Value>) {
        (self.meta.map(|meta| *meta).unwrap_or_default(), self.members)
    }
}

impl Deref for Params {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Map<String, Value> {
        &self.members
    }
}

/// A well-formed client message.
#[derive(Debug, Clone)]
pub enum Message {
    Request {
        id: Id,
        method: String,
        params: Params,
    },
    Notification {
        method: String,
        params: Params,
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

/// The most messages a batch (2025-03-26 only) may hold.
pub const MAX_BATCH: usize = 100;

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
        // Counted before any item becomes a `Message`, which holds a `Params` with its `RequestMeta`:
        // converted first, a hostile batch of 100,000 empty objects took 25 MB at once.
        if items.len() > MAX_BATCH {
            let error = RpcError::invalid_request(format!("a batch holds at most {MAX_BATCH} messages"));
            return Err(Rejected { id: None, error });
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
    if !raw.jsonrpc.0 {
        return Err(invalid("jsonrpc must be \"2.0\""));
    }
    match (raw.method, raw.result, raw.error) {
        (Some(Text(method)), None, None) => {
            let Some(method) = method else {
                return Err(invalid("method must be a string"));
            };
            let params = match raw.params {
                None | Some(RawParams::Absent) => Params::default(),
                Some(RawParams::Object(params)) => params,
                Some(RawParams::NotAnObject) => {
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

/// The entries of a request's `_meta` that this server reads: the 2026-07-28 envelope (protocol
/// version, client capabilities, log level) and, in every era, the progress token. They are read
/// while the request is parsed (see `jsonrpc::Params`) rather than looked up in a JSON object of
/// their own; other entries are skipped. Values keep their JSON type (an explicit `null`
/// included), so a handler can say what is wrong with them. A `_meta` that is not an object has
/// none of them; one that repeats an entry is refused with the message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RequestMeta {
    // The names are `version::META_*`; a test in `jsonrpc` checks that they agree.
    #[serde(default, deserialize_with = "present", rename = "io.modelcontextprotocol/protocolVersion")]
    pub protocol_version: Option<Value>,
    #[serde(default, deserialize_with = "present", rename = "io.modelcontextprotocol/clientCapabilities")]
    pub client_capabilities: Option<Value>,
    #[serde(default, deserialize_with = "present", rename = "io.modelcontextprotocol/logLevel")]
    pub log_level: Option<Value>,
    #[serde(default, deserialize_with = "present", rename = "progressToken")]
    pub progress_token: Option<Value>,
    /// W3C Trace Context of the caller's span (unprefixed, as SEP-414 and the OpenTelemetry MCP
    /// conventions put it), for the MCP span's parent when traces are exported.
    #[serde(default, deserialize_with = "present")]
    pub traceparent: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub tracestate: Option<Value>,
}

impl<'de> AnyShape<'de> for RequestMeta {
    fn other() -> Self {
        RequestMeta::default()
    }
    fn map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        RequestMeta::deserialize(MapAccessDeserializer::new(map))
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
        // Where a member of the wrong type is read and dropped, serde_json skips it without
        // recursing: the message is refused for its type, or (`_meta`) has no entries.
        let nested = |before: &str, after: &str| {
            parse(format!("{{{before}{}{}{after}}}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes())
        };
        assert_eq!(nested(r#""id":1,"method":"x","jsonrpc":"#, "").unwrap_err().error.code, code::INVALID_REQUEST);
        assert_eq!(
            nested(r#""jsonrpc":"2.0","id":1,"method":"x","params":"#, "").unwrap_err().error.code,
            code::INVALID_PARAMS
        );
        let Ok(Incoming::Single(message)) = nested(r#""jsonrpc":"2.0","method":"x","params":{"_meta":"#, "}") else {
            panic!("a message")
        };
        assert_eq!(request_params(message).meta(), Some(&RequestMeta::default()));
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

    fn single(body: Value) -> Result<Message, Rejected> {
        parse(body.to_string().as_bytes()).map(|incoming| match incoming {
            Incoming::Single(message) => message,
            Incoming::Batch(_) => panic!("not a single message"),
        })
    }

    fn request_params(message: Message) -> Params {
        match message {
            Message::Request { params, .. } | Message::Notification { params, .. } => params,
            Message::Response { .. } => panic!("a response"),
        }
    }

    #[test]
    fn meta_entries_are_read_apart_from_the_members() {
        use super::super::version::{META_CLIENT_CAPABILITIES, META_LOG_LEVEL, META_PROTOCOL_VERSION};
        let meta = json!({
            META_PROTOCOL_VERSION: "2026-07-28",
            META_CLIENT_CAPABILITIES: { "sampling": {} },
            META_LOG_LEVEL: "info",
            "progressToken": null,
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "vendor/other": [1, { "deep": true }],
        });
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
            "name": "echo", "_meta": meta, "arguments": { "message": "hi", "_meta": 1 },
        }});
        let expected = RequestMeta {
            protocol_version: Some(json!("2026-07-28")),
            client_capabilities: Some(json!({ "sampling": {} })),
            log_level: Some(json!("info")),
            progress_token: Some(Value::Null),
            traceparent: Some(json!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")),
            tracestate: None,
        };
        let (meta, members) = request_params(single(body.clone()).unwrap()).into_parts();
        assert_eq!(meta, expected, "the names agree with version::META_*; null is kept");
        assert_eq!(
            Value::Object(members),
            json!({ "name": "echo", "arguments": { "message": "hi", "_meta": 1 } }),
            "members as sent; only the top-level _meta is taken out"
        );
        // In a batch the message is read from a JSON value, by the same code.
        let Ok(Incoming::Batch(mut batch)) = parse(json!([body]).to_string().as_bytes()) else { panic!("a batch") };
        assert_eq!(request_params(batch.remove(0).unwrap()).meta(), Some(&expected));
    }

    #[test]
    fn members_of_the_wrong_type_are_refused_with_the_id() {
        let refused = |body: Value| single(body).unwrap_err();
        let err = refused(json!({ "jsonrpc": "2.0", "id": 3, "method": 5 }));
        assert_eq!((err.id, err.error.code), (Some(Id::Number(3)), code::INVALID_REQUEST));
        let err = refused(json!({ "jsonrpc": "2.0", "id": 3, "method": "x", "params": [1, [2]] }));
        assert_eq!((err.id, err.error.code), (Some(Id::Number(3)), code::INVALID_PARAMS));
        let err = refused(json!({ "jsonrpc": "2.0", "id": 3, "method": "x", "params": "p" }));
        assert_eq!((err.id, err.error.code), (Some(Id::Number(3)), code::INVALID_PARAMS));
        for version in [json!(2), json!(["2.0"]), json!({ "v": "2.0" }), json!(null), json!("2.00")] {
            let err = refused(json!({ "jsonrpc": version, "id": 3, "method": "x" }));
            assert_eq!((err.id, err.error.code), (Some(Id::Number(3)), code::INVALID_REQUEST), "jsonrpc {version}");
        }
        // A repeated `_meta` entry is malformed, as a repeated member of the message is.
        let err =
            parse(br#"{"jsonrpc":"2.0","id":3,"method":"x","params":{"_meta":{"progressToken":1,"progressToken":2}}}"#)
                .unwrap_err();
        assert_eq!(err.error.code, code::INVALID_REQUEST);
    }

    #[test]
    fn null_params_and_a_meta_that_is_no_object_count_as_absent() {
        let params =
            request_params(single(json!({ "jsonrpc": "2.0", "id": 1, "method": "x", "params": null })).unwrap());
        assert_eq!(params, Params::default());
        for meta in [json!("v"), json!([{ "progressToken": 1 }]), json!(7), json!(null)] {
            let body = json!({ "jsonrpc": "2.0", "method": "x", "params": { "_meta": meta, "a": 1 } });
            let params = request_params(single(body).unwrap());
            assert_eq!(params.meta(), Some(&RequestMeta::default()), "_meta {meta}");
            assert_eq!(params.get("a"), Some(&json!(1)));
        }
    }

    #[test]
    fn a_batch_is_counted_before_its_messages_are_read() {
        let batch = |n: usize| format!("[{}]", vec![r#"{"jsonrpc":"2.0","method":"ping","id":1}"#; n].join(","));
        assert!(
            matches!(parse(batch(MAX_BATCH).as_bytes()), Ok(Incoming::Batch(messages)) if messages.len() == MAX_BATCH)
        );
        let err = parse(batch(MAX_BATCH + 1).as_bytes()).unwrap_err();
        assert_eq!((err.id, err.error.code), (None, code::INVALID_REQUEST));
        assert_eq!(err.error.message, "a batch holds at most 100 messages");
    }

    #[test]
    fn wrong_version_keeps_the_id() {
        let err = parse(br#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#).unwrap_err();
        assert_eq!(err.id, Some(Id::Number(7)));
    }
}
