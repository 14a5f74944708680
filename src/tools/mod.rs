//! Feature `tools` (tutorial steps 3-4): the [`Tool`] and [`Prompt`] traits, the [`Registry`]
//! that lists and dispatches them, and the tutorial's own definitions, one file each.
//!
//! A tool is a type with typed arguments: the input schema is derived from the argument type
//! (schemars), and arguments that do not fit it come back as an `isError` result naming the
//! problem, which the model can read and correct. Tools see a [`ToolContext`], never HTTP.

mod echo;
mod get_time;
mod greeting;
mod help;
mod registry;
mod whoami;

use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

pub use crate::mcp::protocol::{
    CallToolResult, Content, GetPromptResult, InputRequest, InputRequired, LogLevel, PromptMessage, ResourceContents,
    Role, ToolAnnotations,
};
pub use echo::Echo;
pub use get_time::GetTime;
pub use greeting::Greeting;
pub use help::Help;
pub use registry::{Registry, RegistryService, SUBJECT_META};
pub use schemars::JsonSchema;
pub use whoami::WhoAmI;

pub use crate::mcp::{DownstreamToken, ExchangeError};
use crate::mcp::{RequestContext, RpcError};
use crate::principal::Principal;

/// The registry the binary serves: the tutorial's tools and prompts.
pub fn builtin() -> Registry {
    Registry::new().tool(Echo).tool(GetTime).tool(WhoAmI).prompt(Greeting).prompt(Help)
}

/// A tool: a name, a description, typed arguments, and what calling it does.
pub trait Tool: Send + Sync + 'static {
    /// The arguments; their JSON Schema is the tool's `inputSchema`.
    type Args: DeserializeOwned + JsonSchema + Send;

    /// Name, description and hints.
    fn info(&self) -> ToolInfo;

    /// Runs the tool.
    fn call(&self, ctx: ToolContext, args: Self::Args) -> impl Future<Output = ToolResult> + Send;
}

/// A prompt template: typed (string) arguments and the messages it produces.
pub trait Prompt: Send + Sync + 'static {
    /// The arguments; each property becomes a prompt argument.
    type Args: DeserializeOwned + JsonSchema + Send;

    /// Name and description.
    fn info(&self) -> PromptInfo;

    /// Renders the prompt.
    fn get(&self, ctx: ToolContext, args: Self::Args) -> impl Future<Output = PromptResult> + Send;

    /// Suggestions for `argument` starting from `value` (`completion/complete`).
    fn complete(&self, argument: &str, value: &str) -> Vec<String> {
        let _ = (argument, value);
        Vec::new()
    }
}

/// A concrete resource the client can list and read by URI.
pub trait Resource: Send + Sync + 'static {
    /// URI, name and description.
    fn info(&self) -> ResourceInfo;

    /// Reads the resource's current contents.
    fn read(&self, ctx: ToolContext) -> impl Future<Output = ReadResult> + Send;
}

/// A family of resources named by an RFC 6570 URI template such as `notes://{id}`.
pub trait ResourceTemplate: Send + Sync + 'static {
    /// Template, name and description.
    fn info(&self) -> ResourceTemplateInfo;

    /// Reads the resource at `uri`; `variables` are the template's values in it.
    fn read(
        &self,
        ctx: ToolContext,
        uri: &str,
        variables: &BTreeMap<String, String>,
    ) -> impl Future<Output = ReadResult> + Send;

    /// Suggestions for template `variable` starting from `value` (`completion/complete`).
    fn complete(&self, variable: &str, value: &str) -> Vec<String> {
        let _ = (variable, value);
        Vec::new()
    }
}

/// What a tool call produces.
pub type ToolResult = Result<CallToolResult, ToolError>;
/// What a prompt produces.
pub type PromptResult = Result<GetPromptResult, ToolError>;
/// What reading a resource produces.
pub type ReadResult = Result<Vec<ResourceContents>, ToolError>;

/// Why a tool (or prompt) did not produce a normal result.
#[derive(Debug)]
pub enum ToolError {
    /// The tool ran and failed; the model sees the message (`isError: true`).
    Failed(String),
    /// The caller must supply input first (elicitation, sampling, roots) and retry.
    InputRequired(InputRequired),
    /// The operation needs these scopes as well; the client gets a 403 step-up challenge.
    InsufficientScope(Vec<String>),
    /// A protocol error (for example -32021, a missing client capability).
    Protocol(RpcError),
}

impl ToolError {
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed(message.into())
    }
}

/// A token exchange that failed becomes a failed call: the model reads why (no token in it).
impl From<ExchangeError> for ToolError {
    fn from(error: ExchangeError) -> Self {
        ToolError::Failed(error.to_string())
    }
}

impl From<RpcError> for ToolError {
    fn from(error: RpcError) -> Self {
        ToolError::Protocol(error)
    }
}

/// How a tool is listed.
#[derive(Debug, Clone)]
pub struct ToolInfo {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub annotations: Option<ToolAnnotations>,
    /// Replaces the schema derived from the argument type (kept verbatim).
    pub input_schema: Option<Value>,
    pub output_schema: Option<Value>,
}

impl ToolInfo {
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        ToolInfo {
            name: name.into(),
            title: None,
            description: description.into(),
            annotations: None,
            input_schema: None,
            output_schema: None,
        }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Marks the tool as read-only and idempotent, without side effects outside this server.
    pub fn read_only(mut self) -> Self {
        self.annotations = Some(ToolAnnotations {
            read_only_hint: Some(true),
            destructive_hint: Some(false),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
            ..Default::default()
        });
        self
    }

    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = Some(schema);
        self
    }

    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }
}

/// How a prompt is listed.
#[derive(Debug, Clone)]
pub struct PromptInfo {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
}

impl PromptInfo {
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        PromptInfo { name: name.into(), title: None, description: description.into() }
    }

    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
}

/// How a resource is listed.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub uri: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

impl ResourceInfo {
    pub fn new(uri: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceInfo { uri: uri.into(), name: name.into(), title: None, description: None, mime_type: None }
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }
}

/// How a resource template is listed.
#[derive(Debug, Clone)]
pub struct ResourceTemplateInfo {
    pub uri_template: String,
    pub name: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub mime_type: Option<String>,
}

impl ResourceTemplateInfo {
    pub fn new(uri_template: impl Into<String>, name: impl Into<String>) -> Self {
        ResourceTemplateInfo {
            uri_template: uri_template.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
        }
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }
}

/// Arguments of a tool or prompt that takes none.
#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// What a tool or prompt knows about its call: who is calling, what the client can do, the
/// client's answers to earlier input requests, and a way to report progress and log.
#[derive(Clone)]
pub struct ToolContext {
    request: RequestContext,
    input_responses: Option<Map<String, Value>>,
    request_state: Option<String>,
}

impl ToolContext {
    pub(crate) fn new(request: RequestContext, params: &Map<String, Value>) -> Self {
        ToolContext {
            request,
            input_responses: params.get("inputResponses").and_then(Value::as_object).cloned(),
            request_state: params.get("requestState").and_then(Value::as_str).map(str::to_owned),
        }
    }

    /// The authenticated caller (`None` without the `jwt` layer).
    pub fn principal(&self) -> Option<&Principal> {
        self.request.principal.as_ref()
    }

    /// The protocol-level request context.
    pub fn request(&self) -> &RequestContext {
        &self.request
    }

    /// Whether the client declared `capability` (a `ClientCapabilities` fragment such as
    /// `{"sampling": {}}`).
    pub fn client_supports(&self, capability: &Value) -> bool {
        self.request.client_capabilities.satisfies(capability)
    }

    /// The client's answer to the input request named `key` in an earlier round.
    pub fn input_response(&self, key: &str) -> Option<&Value> {
        self.input_responses.as_ref().and_then(|r| r.get(key))
    }

    /// All answers sent with this round (`None` on a first call).
    pub fn input_responses(&self) -> Option<&Map<String, Value>> {
        self.input_responses.as_ref()
    }

    /// The state this tool returned with its last `input_required` answer, verified.
    pub fn request_state(&self) -> Option<&str> {
        self.request_state.as_deref()
    }

    /// Reports progress when the client asked for it.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        self.request.progress(progress, total, message).await;
    }

    /// Logs to the client (`notifications/message`) at or above the level it asked for.
    pub async fn log(&self, level: LogLevel, data: impl Into<Value>) {
        self.request.log(level, None, data.into()).await;
    }

    /// Ends the current SSE connection so the client reconnects and resumes it (SEP-1699
    /// polling); only legacy sessions at 2025-11-25 or later support it, elsewhere a no-op.
    pub async fn close_sse_connection(&self) {
        self.request.close_sse_connection().await;
    }

    /// Resolves when the client gives up on the call.
    pub async fn cancelled(&self) {
        self.request.cancellation.cancelled().await;
    }

    /// A token for the downstream API `audience` with `scopes`, for calling it as the caller:
    /// the caller's token exchanged at its issuer (RFC 8693, `[[token_exchange.issuers]]`, or
    /// `issuer.token_exchange_audiences` for the embedded one) and cached until shortly before
    /// it expires. The caller's own token is never given to tools, nor sent downstream.
    pub async fn downstream_token(&self, audience: &str, scopes: &[&str]) -> Result<DownstreamToken, ExchangeError> {
        self.request.downstream_token(audience, scopes).await
    }

    /// Fails with a step-up challenge unless the caller holds every scope in `scopes`. Without
    /// authentication there is no caller to check and nothing is required.
    pub fn require_scopes(&self, scopes: &[&str]) -> Result<(), ToolError> {
        let Some(principal) = self.principal() else {
            return Ok(());
        };
        let missing: Vec<String> = scopes.iter().filter(|s| !principal.has_scope(s)).map(|s| (*s).to_owned()).collect();
        if missing.is_empty() { Ok(()) } else { Err(ToolError::InsufficientScope(missing)) }
    }
}

/// A tool from a closure: `tool_fn(info, |ctx, args: MyArgs| async move { ... })`.
pub fn tool_fn<A, F, Fut>(info: ToolInfo, call: F) -> impl Tool
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ToolResult> + Send + 'static,
{
    FnItem { info, call, args: PhantomData::<fn(A)> }
}

/// A prompt from a closure: `prompt_fn(info, |ctx, args: MyArgs| async move { ... })`.
pub fn prompt_fn<A, F, Fut>(info: PromptInfo, get: F) -> impl Prompt
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = PromptResult> + Send + 'static,
{
    FnItem { info, call: get, args: PhantomData::<fn(A)> }
}

/// A resource from a closure: `resource_fn(info, |ctx| async move { ... })`.
pub fn resource_fn<F, Fut>(info: ResourceInfo, read: F) -> impl Resource
where
    F: Fn(ToolContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ReadResult> + Send + 'static,
{
    FnItem { info, call: read, args: PhantomData::<fn(())> }
}

/// A resource template from a closure: `template_fn(info, |ctx, uri, variables| async move { ... })`.
pub fn template_fn<F, Fut>(info: ResourceTemplateInfo, read: F) -> impl ResourceTemplate
where
    F: Fn(ToolContext, String, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ReadResult> + Send + 'static,
{
    FnItem { info, call: read, args: PhantomData::<fn(())> }
}

/// The closure-backed item behind the `*_fn` constructors.
struct FnItem<I, F, A> {
    info: I,
    call: F,
    args: PhantomData<fn(A)>,
}

impl<A, F, Fut> Tool for FnItem<ToolInfo, F, A>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ToolResult> + Send + 'static,
{
    type Args = A;

    fn info(&self) -> ToolInfo {
        self.info.clone()
    }

    fn call(&self, ctx: ToolContext, args: A) -> impl Future<Output = ToolResult> + Send {
        (self.call)(ctx, args)
    }
}

impl<A, F, Fut> Prompt for FnItem<PromptInfo, F, A>
where
    A: DeserializeOwned + JsonSchema + Send + 'static,
    F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = PromptResult> + Send + 'static,
{
    type Args = A;

    fn info(&self) -> PromptInfo {
        self.info.clone()
    }

    fn get(&self, ctx: ToolContext, args: A) -> impl Future<Output = PromptResult> + Send {
        (self.call)(ctx, args)
    }
}

impl<F, Fut> Resource for FnItem<ResourceInfo, F, ()>
where
    F: Fn(ToolContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ReadResult> + Send + 'static,
{
    fn info(&self) -> ResourceInfo {
        self.info.clone()
    }

    fn read(&self, ctx: ToolContext) -> impl Future<Output = ReadResult> + Send {
        (self.call)(ctx)
    }
}

impl<F, Fut> ResourceTemplate for FnItem<ResourceTemplateInfo, F, ()>
where
    F: Fn(ToolContext, String, BTreeMap<String, String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ReadResult> + Send + 'static,
{
    fn info(&self) -> ResourceTemplateInfo {
        self.info.clone()
    }

    fn read(
        &self,
        ctx: ToolContext,
        uri: &str,
        variables: &BTreeMap<String, String>,
    ) -> impl Future<Output = ReadResult> + Send {
        (self.call)(ctx, uri.to_owned(), variables.clone())
    }
}
