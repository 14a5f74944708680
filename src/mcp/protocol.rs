//! Typed MCP models: what the server advertises and returns. Field names follow the schema
//! (`schema/2026-07-28/schema.ts`); optional fields are omitted, never `null`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Implementation`: who we are (serverInfo).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Implementation {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website_url: Option<String>,
}

/// `{ "listChanged": bool }` for tools and prompts.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListChangedCapability {
    pub list_changed: bool,
}

/// `{ "subscribe": bool, "listChanged": bool }` for resources.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesCapability {
    pub subscribe: bool,
    pub list_changed: bool,
}

/// `ServerCapabilities`: what this server offers. Absent = not offered.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerCapabilities {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<ListChangedCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompts: Option<ListChangedCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completions: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Map<String, Value>>,
}

impl ServerCapabilities {
    /// Whether any change notification can ever be sent (listen streams / GET streams matter).
    pub fn has_change_notifications(&self) -> bool {
        self.tools.is_some_and(|c| c.list_changed)
            || self.prompts.is_some_and(|c| c.list_changed)
            || self.resources.is_some_and(|c| c.list_changed || c.subscribe)
    }
}

/// Log severities of RFC 5424, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    pub fn parse(value: &Value) -> Option<LogLevel> {
        serde_json::from_value(value.clone()).ok()
    }
}

/// Hints about a tool's behaviour. Clients treat them as untrusted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// `Tool`: a tool's definition as listed by `tools/list`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    /// A JSON Schema object (2020-12 unless it says otherwise), kept exactly as given.
    pub input_schema: Arc<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Arc<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// `PromptArgument`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PromptArgument {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// `Prompt`: a prompt template as listed by `prompts/list`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<PromptArgument>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// `Resource`: a concrete resource as listed by `resources/list`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub uri: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// `ResourceTemplate`: an RFC 6570 URI template as listed by `resources/templates/list`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    pub uri_template: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// `TextResourceContents` | `BlobResourceContents`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ResourceContents {
    #[serde(rename_all = "camelCase")]
    Text {
        uri: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    Blob {
        uri: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        /// Base64.
        blob: String,
    },
}

/// `ContentBlock`: one piece of a tool result or prompt message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    #[serde(rename_all = "camelCase")]
    Image {
        /// Base64.
        data: String,
        mime_type: String,
    },
    #[serde(rename_all = "camelCase")]
    Audio {
        /// Base64.
        data: String,
        mime_type: String,
    },
    #[serde(rename_all = "camelCase")]
    ResourceLink {
        uri: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    Resource {
        resource: ResourceContents,
    },
}

impl Content {
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text { text: text.into() }
    }
}

/// `CallToolResult`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallToolResult {
    pub content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

impl CallToolResult {
    /// A successful result with one text block.
    pub fn text(text: impl Into<String>) -> Self {
        CallToolResult { content: vec![Content::text(text)], ..Default::default() }
    }

    /// A tool execution error the model can read and act on (not a protocol error).
    pub fn error(message: impl Into<String>) -> Self {
        CallToolResult { content: vec![Content::text(message)], is_error: true, ..Default::default() }
    }

    /// A structured result, also serialised as text for clients that ignore `structuredContent`.
    pub fn structured(value: Value) -> Self {
        CallToolResult {
            content: vec![Content::text(value.to_string())],
            structured_content: Some(value),
            ..Default::default()
        }
    }
}

/// `Role` of a prompt message.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// `PromptMessage`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PromptMessage {
    pub role: Role,
    pub content: Content,
}

impl PromptMessage {
    pub fn user(text: impl Into<String>) -> Self {
        PromptMessage { role: Role::User, content: Content::text(text) }
    }
}

/// `GetPromptResult`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GetPromptResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
}

/// `ReadResourceResult`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReadResourceResult {
    pub contents: Vec<ResourceContents>,
}

/// `CompleteResult.completion`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    /// At most 100 values.
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more: Option<bool>,
}

/// One server-to-client request embedded in an `input_required` result (`InputRequest`):
/// `elicitation/create`, `sampling/createMessage` or `roots/list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputRequest {
    pub method: String,
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl InputRequest {
    /// A form-mode elicitation.
    pub fn elicit(message: impl Into<String>, requested_schema: Value) -> Self {
        let mut params = Map::new();
        params.insert("mode".into(), Value::from("form"));
        params.insert("message".into(), Value::from(message.into()));
        params.insert("requestedSchema".into(), requested_schema);
        InputRequest { method: "elicitation/create".into(), params }
    }

    /// A sampling request for one user message.
    pub fn sample(prompt: impl Into<String>, max_tokens: u32) -> Self {
        let params = serde_json::json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": prompt.into() } }],
            "maxTokens": max_tokens,
        });
        InputRequest {
            method: "sampling/createMessage".into(),
            params: params.as_object().cloned().unwrap_or_default(),
        }
    }

    /// A request for the client's roots.
    pub fn list_roots() -> Self {
        InputRequest { method: "roots/list".into(), params: Map::new() }
    }

    /// The client capability this request needs, as a `ClientCapabilities` fragment.
    pub fn required_capability(&self) -> Value {
        match self.method.as_str() {
            "sampling/createMessage" => serde_json::json!({ "sampling": {} }),
            "roots/list" => serde_json::json!({ "roots": {} }),
            "elicitation/create" => {
                let mode = self.params.get("mode").and_then(Value::as_str).unwrap_or("form");
                serde_json::json!({ "elicitation": { mode: {} } })
            }
            other => serde_json::json!({ other: {} }),
        }
    }
}

/// `InputRequiredResult` (multi round-trip requests): what the client must supply before it
/// retries the original request.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InputRequired {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub input_requests: BTreeMap<String, InputRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_state: Option<String>,
}

/// The client's declared capabilities (an open set, so kept as JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientCapabilities(pub Map<String, Value>);

impl ClientCapabilities {
    /// Whether the client declared everything in `required` (a `ClientCapabilities` fragment).
    /// Elicitation follows the spec's rule that `elicitation: {}` means form mode only.
    pub fn satisfies(&self, required: &Value) -> bool {
        let Some(required) = required.as_object() else {
            return true;
        };
        required.iter().all(|(key, need)| {
            let Some(have) = self.0.get(key) else {
                return false;
            };
            if key == "elicitation" {
                let declared_modes = have.as_object().map(|m| m.len()).unwrap_or(0);
                return need.as_object().is_none_or(|modes| {
                    modes.keys().all(|mode| have.get(mode).is_some() || (mode == "form" && declared_modes == 0))
                });
            }
            true
        })
    }
}
