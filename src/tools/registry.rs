//! The registry of tools and prompts, and the tower service that lists and dispatches them.
//!
//! Definitions (names, schemas) are computed once, when an item is registered; a request reads
//! an immutable snapshot. Adding or removing an item swaps the snapshot and announces the change
//! to open streams.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, ready};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::{Prompt, PromptResult, ReadResult, Resource, ResourceTemplate, Tool, ToolContext, ToolError, ToolResult};
use crate::config::Settings;
use crate::mcp::bus::{ChangeBus, ChangeEvent};
use crate::mcp::headers::{HeaderParam, header_params};
use crate::mcp::protocol::{
    self, CallToolResult, Completion, ListChangedCapability, PromptArgument, ResourcesCapability, ServerCapabilities,
};
use crate::mcp::uri_template::UriTemplate;
use crate::mcp::{CacheScope, Catalog, Features, Item, McpError, McpReply, McpRequest, REQUIREMENTS_META, RpcError};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The `_meta` key of the caller's subject on results.
pub const SUBJECT_META: &str = "mcp-auth-server/subject";

/// A tool behind a uniform, type-erased interface.
trait DynTool: Send + Sync {
    fn call(self: Arc<Self>, ctx: ToolContext, arguments: &Value) -> BoxFuture<ToolResult>;
}

/// A prompt behind a uniform, type-erased interface.
trait DynPrompt: Send + Sync {
    fn get(self: Arc<Self>, ctx: ToolContext, arguments: &Value) -> BoxFuture<PromptResult>;
    fn complete(&self, argument: &str, value: &str) -> Vec<String>;
}

/// A resource behind a uniform, type-erased interface.
trait DynResource: Send + Sync {
    fn read(self: Arc<Self>, ctx: ToolContext) -> BoxFuture<ReadResult>;
}

/// A resource template behind a uniform, type-erased interface.
trait DynTemplate: Send + Sync {
    fn read(
        self: Arc<Self>,
        ctx: ToolContext,
        uri: String,
        variables: BTreeMap<String, String>,
    ) -> BoxFuture<ReadResult>;
    fn complete(&self, variable: &str, value: &str) -> Vec<String>;
}

struct Typed<T>(T);

impl<R: Resource> DynResource for Typed<R> {
    fn read(self: Arc<Self>, ctx: ToolContext) -> BoxFuture<ReadResult> {
        Box::pin(async move { self.0.read(ctx).await })
    }
}

impl<R: ResourceTemplate> DynTemplate for Typed<R> {
    fn read(
        self: Arc<Self>,
        ctx: ToolContext,
        uri: String,
        variables: BTreeMap<String, String>,
    ) -> BoxFuture<ReadResult> {
        Box::pin(async move { self.0.read(ctx, &uri, &variables).await })
    }

    fn complete(&self, variable: &str, value: &str) -> Vec<String> {
        self.0.complete(variable, value)
    }
}

impl<T: Tool> DynTool for Typed<T> {
    fn call(self: Arc<Self>, ctx: ToolContext, arguments: &Value) -> BoxFuture<ToolResult> {
        // Straight from the request's JSON into the typed arguments, without a copy of them.
        // Arguments that do not fit are the model's mistake to correct, so they come back as a
        // tool error it can read, naming the problem.
        let args = match T::Args::deserialize(arguments) {
            Ok(args) => args,
            Err(err) => {
                return Box::pin(std::future::ready(Ok(CallToolResult::error(format!("Invalid arguments: {err}")))));
            }
        };
        Box::pin(async move { self.0.call(ctx, args).await })
    }
}

impl<P: Prompt> DynPrompt for Typed<P> {
    fn get(self: Arc<Self>, ctx: ToolContext, arguments: &Value) -> BoxFuture<PromptResult> {
        // For prompts, bad arguments are a protocol error (-32602), per the spec.
        let args = match P::Args::deserialize(arguments) {
            Ok(args) => args,
            Err(err) => {
                let error = ToolError::Protocol(RpcError::invalid_params(format!("Invalid arguments: {err}")));
                return Box::pin(std::future::ready(Err(error)));
            }
        };
        Box::pin(async move { self.0.get(ctx, args).await })
    }

    fn complete(&self, argument: &str, value: &str) -> Vec<String> {
        self.0.complete(argument, value)
    }
}

struct ToolEntry {
    definition: protocol::Tool,
    header_params: Arc<[HeaderParam]>,
    /// The input schema, compiled once.
    input: jsonschema::Validator,
    /// The output schema, compiled once, when the tool declares one.
    output: Option<jsonschema::Validator>,
    handler: Arc<dyn DynTool>,
}

/// The first way `instance` breaks `schema`, as a sentence naming the place.
fn schema_problem(schema: &jsonschema::Validator, instance: &Value) -> Option<String> {
    // The yes/no check is the cheap one; errors are only collected for an instance that fails.
    if schema.is_valid(instance) {
        return None;
    }
    let error = schema.iter_errors(instance).next()?;
    let path = error.instance_path().to_string();
    Some(if path.is_empty() { error.to_string() } else { format!("{error} (at {path})") })
}

struct PromptEntry {
    definition: protocol::Prompt,
    /// The argument schema, compiled once.
    input: jsonschema::Validator,
    handler: Arc<dyn DynPrompt>,
}

struct ResourceEntry {
    definition: protocol::Resource,
    handler: Arc<dyn DynResource>,
}

struct TemplateEntry {
    definition: protocol::ResourceTemplate,
    matcher: UriTemplate,
    handler: Arc<dyn DynTemplate>,
}

/// One immutable view of everything registered, in registration order.
#[derive(Default, Clone)]
struct Snapshot {
    tools: Vec<Arc<ToolEntry>>,
    tool_index: HashMap<String, usize>,
    prompts: Vec<Arc<PromptEntry>>,
    prompt_index: HashMap<String, usize>,
    resources: Vec<Arc<ResourceEntry>>,
    resource_index: HashMap<String, usize>,
    templates: Vec<Arc<TemplateEntry>>,
}

impl Snapshot {
    fn tool(&self, name: &str) -> Option<&Arc<ToolEntry>> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    fn prompt(&self, name: &str) -> Option<&Arc<PromptEntry>> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    fn resource(&self, uri: &str) -> Option<&Arc<ResourceEntry>> {
        self.resource_index.get(uri).map(|&i| &self.resources[i])
    }

    fn template(&self, uri_template: &str) -> Option<&Arc<TemplateEntry>> {
        self.templates.iter().find(|t| t.definition.uri_template == uri_template)
    }

    fn reindex(&mut self) {
        self.tool_index = self.tools.iter().enumerate().map(|(i, t)| (t.definition.name.clone(), i)).collect();
        self.prompt_index = self.prompts.iter().enumerate().map(|(i, p)| (p.definition.name.clone(), i)).collect();
        self.resource_index = self.resources.iter().enumerate().map(|(i, r)| (r.definition.uri.clone(), i)).collect();
    }
}

/// The tools and prompts a server offers. Cloning shares the registry: a clone kept by a tool
/// can add or remove items while the server runs, and open streams are told.
#[derive(Clone, Default)]
pub struct Registry {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    bus: ChangeBus,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool (builder style). Panics on an invalid definition, which is a programming
    /// error: a name outside `[A-Za-z0-9_.-]{1,128}`, a duplicate, or a bad `x-mcp-header`.
    pub fn tool<T: Tool>(self, tool: T) -> Self {
        self.add_tool(tool);
        self
    }

    /// Adds a prompt (builder style). Panics on an invalid or duplicate name.
    pub fn prompt<P: Prompt>(self, prompt: P) -> Self {
        self.add_prompt(prompt);
        self
    }

    /// Adds a tool while serving, announcing `notifications/tools/list_changed`.
    pub fn add_tool<T: Tool>(&self, tool: T) {
        let entry = tool_entry(tool).unwrap_or_else(|problem| panic!("invalid tool definition: {problem}"));
        self.update(ChangeEvent::ToolsListChanged, |s| {
            assert!(s.tool(&entry.definition.name).is_none(), "tool `{}` registered twice", entry.definition.name);
            s.tools.push(Arc::new(entry));
        });
    }

    /// Removes a tool while serving; `false` if there was none of that name.
    pub fn remove_tool(&self, name: &str) -> bool {
        let mut removed = false;
        self.update(ChangeEvent::ToolsListChanged, |s| {
            let before = s.tools.len();
            s.tools.retain(|t| t.definition.name != name);
            removed = s.tools.len() != before;
        });
        removed
    }

    /// Adds a prompt while serving, announcing `notifications/prompts/list_changed`.
    pub fn add_prompt<P: Prompt>(&self, prompt: P) {
        let entry = prompt_entry(prompt).unwrap_or_else(|problem| panic!("invalid prompt definition: {problem}"));
        self.update(ChangeEvent::PromptsListChanged, |s| {
            assert!(s.prompt(&entry.definition.name).is_none(), "prompt `{}` registered twice", entry.definition.name);
            s.prompts.push(Arc::new(entry));
        });
    }

    /// Removes a prompt while serving; `false` if there was none of that name.
    pub fn remove_prompt(&self, name: &str) -> bool {
        let mut removed = false;
        self.update(ChangeEvent::PromptsListChanged, |s| {
            let before = s.prompts.len();
            s.prompts.retain(|p| p.definition.name != name);
            removed = s.prompts.len() != before;
        });
        removed
    }

    /// Adds a resource (builder style). Panics on a duplicate URI.
    pub fn resource<R: Resource>(self, resource: R) -> Self {
        self.add_resource(resource);
        self
    }

    /// Adds a resource template (builder style). Panics on an unsupported template.
    pub fn resource_template<R: ResourceTemplate>(self, template: R) -> Self {
        self.add_resource_template(template);
        self
    }

    /// Adds a resource while serving, announcing `notifications/resources/list_changed`.
    pub fn add_resource<R: Resource>(&self, resource: R) {
        let info = resource.info();
        let entry = ResourceEntry {
            definition: protocol::Resource {
                uri: info.uri,
                name: info.name,
                title: info.title,
                description: info.description,
                mime_type: info.mime_type,
                size: None,
                meta: None,
            },
            handler: Arc::new(Typed(resource)),
        };
        self.update(ChangeEvent::ResourcesListChanged, |s| {
            assert!(
                s.resource(&entry.definition.uri).is_none(),
                "resource `{}` registered twice",
                entry.definition.uri
            );
            s.resources.push(Arc::new(entry));
        });
    }

    /// Adds a resource template while serving, announcing `notifications/resources/list_changed`.
    pub fn add_resource_template<R: ResourceTemplate>(&self, template: R) {
        let info = template.info();
        let matcher = UriTemplate::parse(&info.uri_template)
            .unwrap_or_else(|problem| panic!("invalid resource template: {problem}"));
        let entry = TemplateEntry {
            definition: protocol::ResourceTemplate {
                uri_template: info.uri_template,
                name: info.name,
                title: info.title,
                description: info.description,
                mime_type: info.mime_type,
                meta: None,
            },
            matcher,
            handler: Arc::new(Typed(template)),
        };
        self.update(ChangeEvent::ResourcesListChanged, |s| s.templates.push(Arc::new(entry)));
    }

    /// Removes a resource while serving; `false` if there was none with that URI.
    pub fn remove_resource(&self, uri: &str) -> bool {
        let mut removed = false;
        self.update(ChangeEvent::ResourcesListChanged, |s| {
            let before = s.resources.len();
            s.resources.retain(|r| r.definition.uri != uri);
            removed = s.resources.len() != before;
        });
        removed
    }

    /// Announces that the contents of `uri` changed, to subscribers allowed to read it.
    pub fn resource_updated(&self, uri: &str) {
        self.bus.publish(ChangeEvent::ResourceUpdated(Arc::from(uri)));
    }

    /// Names of the registered tools, in order.
    pub fn tool_names(&self) -> Vec<String> {
        self.current().tools.iter().map(|t| t.definition.name.clone()).collect()
    }

    /// Names of the registered prompts, in order.
    pub fn prompt_names(&self) -> Vec<String> {
        self.current().prompts.iter().map(|p| p.definition.name.clone()).collect()
    }

    /// The change bus open streams listen to.
    pub fn changes(&self) -> &ChangeBus {
        &self.bus
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("lock").clone()
    }

    fn update(&self, event: ChangeEvent, change: impl FnOnce(&mut Snapshot)) {
        {
            let mut guard = self.snapshot.write().expect("lock");
            let mut next = Snapshot::clone(&guard);
            change(&mut next);
            next.reindex();
            *guard = Arc::new(next);
        }
        self.bus.publish(event);
    }

    /// The feature service and catalog the `mcp` layer serves.
    pub fn into_features(self, settings: &Settings) -> Features<RegistryService> {
        let catalog = Arc::new(RegistryCatalog { registry: self.clone() });
        let service = RegistryService { registry: self, page_size: settings.mcp.page_size };
        Features::new(service, catalog)
    }
}

fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The JSON Schema of an argument type, as 2020-12 without the `$schema` and `title` noise.
fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.meta_schema = None).into_generator();
    let mut schema = generator.into_root_schema_for::<T>();
    // The type's doc comment would repeat the tool's own description.
    schema.remove("title");
    schema.remove("description");
    schema.to_value()
}

fn tool_entry<T: Tool>(tool: T) -> Result<ToolEntry, String> {
    let info = tool.info();
    if !valid_name(&info.name) {
        return Err(format!("`{}` is not a valid tool name", info.name));
    }
    let input_schema = info.input_schema.unwrap_or_else(schema_of::<T::Args>);
    if input_schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(format!("the input schema of `{}` must have type \"object\"", info.name));
    }
    let header_params = header_params(&input_schema).map_err(|p| format!("tool `{}`: {p}", info.name))?;
    let input = jsonschema::validator_for(&input_schema)
        .map_err(|e| format!("the input schema of `{}` is not a valid JSON Schema: {e}", info.name))?;
    let output = info
        .output_schema
        .as_ref()
        .map(jsonschema::validator_for)
        .transpose()
        .map_err(|e| format!("the output schema of `{}` is not a valid JSON Schema: {e}", info.name))?;
    Ok(ToolEntry {
        input,
        output,
        definition: protocol::Tool {
            name: info.name,
            title: info.title,
            description: info.description,
            input_schema: Arc::new(input_schema),
            output_schema: info.output_schema.map(Arc::new),
            annotations: info.annotations,
            meta: None,
        },
        header_params: header_params.into(),
        handler: Arc::new(Typed(tool)),
    })
}

fn prompt_entry<P: Prompt>(prompt: P) -> Result<PromptEntry, String> {
    let info = prompt.info();
    if !valid_name(&info.name) {
        return Err(format!("`{}` is not a valid prompt name", info.name));
    }
    // Prompt arguments are the properties of the argument type's schema.
    let schema = schema_of::<P::Args>();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let arguments = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .map(|(name, property)| PromptArgument {
                    name: name.clone(),
                    title: None,
                    description: property.get("description").and_then(Value::as_str).map(str::to_owned),
                    required: required.contains(&name.as_str()),
                })
                .collect()
        })
        .unwrap_or_default();
    let input = jsonschema::validator_for(&schema)
        .map_err(|e| format!("the arguments of prompt `{}` have no valid JSON Schema: {e}", info.name))?;
    Ok(PromptEntry {
        input,
        definition: protocol::Prompt {
            name: info.name,
            title: info.title,
            description: info.description,
            arguments,
            meta: None,
        },
        handler: Arc::new(Typed(prompt)),
    })
}

/// What the registry offers, for the transport.
struct RegistryCatalog {
    registry: Registry,
}

impl Catalog for RegistryCatalog {
    fn capabilities(&self) -> ServerCapabilities {
        let snapshot = self.registry.current();
        let has_prompts = !snapshot.prompts.is_empty();
        let has_resources = !snapshot.resources.is_empty() || !snapshot.templates.is_empty();
        ServerCapabilities {
            tools: Some(ListChangedCapability { list_changed: true }),
            prompts: has_prompts.then_some(ListChangedCapability { list_changed: true }),
            resources: has_resources.then_some(ResourcesCapability { subscribe: true, list_changed: true }),
            completions: (has_prompts || !snapshot.templates.is_empty()).then(Map::new),
            logging: Some(Map::new()),
        }
    }

    fn header_params(&self, tool: &str) -> Arc<[HeaderParam]> {
        self.registry.current().tool(tool).map(|t| t.header_params.clone()).unwrap_or_else(|| Arc::from([]))
    }

    fn changes(&self) -> broadcast::Receiver<ChangeEvent> {
        self.registry.bus.subscribe()
    }

    fn offers(&self, item: Item<'_>) -> bool {
        let snapshot = self.registry.current();
        match item {
            Item::Tool(name) => snapshot.tool(name).is_some(),
            Item::Prompt(name) => snapshot.prompt(name).is_some(),
            Item::Resource(_) => false,
        }
    }
}

/// The tower service that answers feature methods from the registry.
#[derive(Clone)]
pub struct RegistryService {
    registry: Registry,
    page_size: usize,
}

impl tower::Service<McpRequest> for RegistryService {
    type Response = McpReply;
    type Error = McpError;
    type Future = RegistryFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), McpError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: McpRequest) -> RegistryFuture {
        let snapshot = self.registry.current();
        let page_size = self.page_size;
        let subject = request.ctx.principal.as_ref().map(|p| p.subject.clone());
        let step = match request.method.as_str() {
            "tools/list" => list_tools(&snapshot, &request, page_size).map(Step::done),
            "tools/call" => call_tool(&snapshot, request),
            "prompts/list" => list_prompts(&snapshot, &request, page_size).map(Step::done),
            "prompts/get" => get_prompt(&snapshot, request),
            "completion/complete" => complete(&snapshot, &request).map(Step::done),
            "resources/list" => list_resources(&snapshot, &request, page_size).map(Step::done),
            "resources/templates/list" => list_templates(&snapshot, &request, page_size).map(Step::done),
            "resources/read" => read_resource(&snapshot, request),
            other => Err(RpcError::method_not_found(other).into()),
        };
        RegistryFuture { step: step.unwrap_or_else(|error| Step::Done(Some(Err(error)))), subject }
    }
}

/// The registry's answer to one request. Everything but the handler runs before it exists,
/// in [`RegistryService::call`]; it then polls the handler's own future and finishes its
/// result, so a call allocates one future (the handler's) rather than also one around it.
pub struct RegistryFuture {
    step: Step,
    /// Whom the result is tagged with (see [`with_subject`]).
    subject: Option<String>,
}

/// What is left to do for a request.
enum Step {
    /// Answered already (a list, a completion, an error); taken when polled.
    Done(Option<Result<McpReply, McpError>>),
    /// A tool running; its result is checked against the tool's output schema.
    Tool { call: BoxFuture<ToolResult>, tool: Arc<ToolEntry> },
    /// A prompt being rendered.
    Prompt(BoxFuture<PromptResult>),
    /// A resource being read; it must have contents.
    Read { read: BoxFuture<ReadResult>, uri: String, scope: CacheScope },
}

impl Step {
    fn done(reply: McpReply) -> Step {
        Step::Done(Some(Ok(reply)))
    }
}

impl Future for RegistryFuture {
    type Output = Result<McpReply, McpError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin (the handlers' futures are boxed), so the future is too.
        let this = self.get_mut();
        let reply = match &mut this.step {
            Step::Done(reply) => reply.take().expect("RegistryFuture polled after it completed"),
            Step::Tool { call, tool } => match ready!(call.as_mut().poll(cx)) {
                Ok(result) => Ok(McpReply::Tool(check_output(tool, result))),
                Err(error) => tool_error(error),
            },
            Step::Prompt(get) => match ready!(get.as_mut().poll(cx)) {
                Ok(result) => Ok(McpReply::complete(result)),
                Err(error) => handler_error(error),
            },
            Step::Read { read, uri, scope } => match ready!(read.as_mut().poll(cx)) {
                Ok(contents) if contents.is_empty() => {
                    Err(RpcError::internal(format!("resource {uri} has no contents")).into())
                }
                Ok(contents) => Ok(McpReply::cacheable(protocol::ReadResourceResult { contents }, *scope)),
                Err(error) => handler_error(error),
            },
        };
        this.step = Step::Done(None);
        Poll::Ready(reply.map(|reply| with_subject(reply, this.subject.take())))
    }
}

/// Tags a complete result with the caller's subject (`_meta`), so a client (or a log) can see
/// whom the server answered.
fn with_subject(reply: McpReply, subject: Option<String>) -> McpReply {
    match (reply, subject) {
        (McpReply::Complete { mut result, cache }, Some(subject)) => {
            let meta = result.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
            if let Some(meta) = meta.as_object_mut() {
                meta.insert(SUBJECT_META.into(), Value::String(subject));
            }
            McpReply::Complete { result, cache }
        }
        (McpReply::Tool(mut result), Some(subject)) => {
            result.meta.get_or_insert_default().insert(SUBJECT_META.into(), Value::String(subject));
            McpReply::Tool(result)
        }
        (reply, _) => reply,
    }
}

/// Reads a pagination cursor: an opaque token naming the offset of the next page.
fn page_start(request: &McpRequest) -> Result<usize, McpError> {
    match request.params.get("cursor") {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(cursor)) => cursor
            .strip_prefix("o:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| RpcError::invalid_params("Invalid params: invalid cursor").into()),
        Some(_) => Err(RpcError::invalid_params("Invalid params: cursor must be a string").into()),
    }
}

/// One page of `items`, with `nextCursor` when more follow.
fn page<T: serde::Serialize>(key: &str, items: Vec<T>, start: usize, size: usize, private: bool) -> McpReply {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let mut result = Map::new();
    result.insert(key.into(), json!(page));
    if start + size < total {
        result.insert("nextCursor".into(), json!(format!("o:{}", start + size)));
    }
    McpReply::cacheable(result, if private { CacheScope::Private } else { CacheScope::Public })
}

/// Adds what using an item requires to its `_meta`, when an authorization layer says.
fn with_requirements(meta: &Option<Map<String, Value>>, requirements: Option<Value>) -> Option<Map<String, Value>> {
    match requirements {
        None => meta.clone(),
        Some(requirements) => {
            let mut meta = meta.clone().unwrap_or_default();
            meta.insert(REQUIREMENTS_META.into(), requirements);
            Some(meta)
        }
    }
}

fn list_tools(snapshot: &Snapshot, request: &McpRequest, page_size: usize) -> Result<McpReply, McpError> {
    let start = page_start(request)?;
    let ctx = &request.ctx;
    let tools: Vec<protocol::Tool> = snapshot
        .tools
        .iter()
        .filter(|t| ctx.may_use(Item::Tool(&t.definition.name)))
        .map(|t| {
            let requirements = ctx.requirements(Item::Tool(&t.definition.name));
            if requirements.is_none() {
                return t.definition.clone();
            }
            protocol::Tool { meta: with_requirements(&t.definition.meta, requirements), ..t.definition.clone() }
        })
        .collect();
    Ok(page("tools", tools, start, page_size, ctx.lists_are_private()))
}

fn list_prompts(snapshot: &Snapshot, request: &McpRequest, page_size: usize) -> Result<McpReply, McpError> {
    let start = page_start(request)?;
    let ctx = &request.ctx;
    let prompts: Vec<protocol::Prompt> = snapshot
        .prompts
        .iter()
        .filter(|p| ctx.may_use(Item::Prompt(&p.definition.name)))
        .map(|p| {
            let requirements = ctx.requirements(Item::Prompt(&p.definition.name));
            protocol::Prompt { meta: with_requirements(&p.definition.meta, requirements), ..p.definition.clone() }
        })
        .collect();
    Ok(page("prompts", prompts, start, page_size, ctx.lists_are_private()))
}

/// Arguments as an object, borrowed from the request; absent means `{}`.
fn arguments(params: &Map<String, Value>) -> Result<Cow<'_, Value>, McpError> {
    match params.get("arguments") {
        None | Some(Value::Null) => Ok(Cow::Owned(Value::Object(Map::new()))),
        Some(args @ Value::Object(_)) => Ok(Cow::Borrowed(args)),
        Some(_) => Err(RpcError::invalid_params("Invalid params: arguments must be an object").into()),
    }
}

/// A prompt's or a resource's failure: unlike a tool's, it has no error result to report it in,
/// so it is an internal error.
fn handler_error(error: ToolError) -> Result<McpReply, McpError> {
    match error {
        ToolError::Failed(message) => Err(RpcError::internal(message).into()),
        error => tool_error(error),
    }
}

fn tool_error(error: ToolError) -> Result<McpReply, McpError> {
    match error {
        ToolError::Failed(message) => Ok(McpReply::Tool(CallToolResult::error(message))),
        ToolError::InputRequired(input) => Ok(McpReply::InputRequired(input)),
        ToolError::InsufficientScope(scopes) => Err(McpError::InsufficientScope(scopes)),
        ToolError::Protocol(error) => Err(McpError::Rpc(error)),
    }
}

/// Checks a `tools/call` and starts the tool; [`RegistryFuture`] finishes its result.
fn call_tool(snapshot: &Snapshot, request: McpRequest) -> Result<Step, McpError> {
    let name = request.str_param("name")?;
    let Some(tool) = snapshot.tool(name).cloned() else {
        return Err(RpcError::invalid_params(format!("Unknown tool: {name}")).into());
    };
    let args = arguments(&request.params)?;
    // The schema is the contract: arguments that break it are the model's to fix.
    if let Some(problem) = schema_problem(&tool.input, &args) {
        return Ok(Step::done(McpReply::Tool(CallToolResult::error(format!("Invalid arguments: {problem}")))));
    }
    let ctx = ToolContext::new(request.ctx, &request.params);
    let call = tool.handler.clone().call(ctx, &args);
    Ok(Step::Tool { call, tool })
}

/// A tool with an output schema must return conforming `structuredContent`; a tool that does
/// not is a bug, reported to the model as a tool error rather than passed on.
fn check_output(tool: &ToolEntry, result: CallToolResult) -> CallToolResult {
    let Some(schema) = &tool.output else { return result };
    if result.is_error {
        return result;
    }
    let problem = match &result.structured_content {
        None => Some("no structuredContent".to_owned()),
        Some(value) => schema_problem(schema, value),
    };
    match problem {
        None => result,
        Some(problem) => {
            tracing::error!(tool = %tool.definition.name, %problem, "tool output breaks its outputSchema");
            CallToolResult::error(format!("The tool's result does not match its output schema: {problem}"))
        }
    }
}

/// Checks a `prompts/get` and starts the prompt.
fn get_prompt(snapshot: &Snapshot, request: McpRequest) -> Result<Step, McpError> {
    let name = request.str_param("name")?;
    let Some(prompt) = snapshot.prompt(name) else {
        return Err(RpcError::invalid_params(format!("Unknown prompt: {name}")).into());
    };
    let args = arguments(&request.params)?;
    // For prompts, bad arguments are a protocol error (-32602), per the spec.
    if let Some(problem) = schema_problem(&prompt.input, &args) {
        return Err(RpcError::invalid_params(format!("Invalid arguments: {problem}")).into());
    }
    let ctx = ToolContext::new(request.ctx, &request.params);
    Ok(Step::Prompt(prompt.handler.clone().get(ctx, &args)))
}

/// `completion/complete` for prompt arguments.
fn complete(snapshot: &Snapshot, request: &McpRequest) -> Result<McpReply, McpError> {
    let reference = request.params.get("ref").and_then(Value::as_object);
    let argument = request.params.get("argument").and_then(Value::as_object);
    let (Some(reference), Some(argument)) = (reference, argument) else {
        return Err(RpcError::invalid_params("Invalid params: ref and argument are required").into());
    };
    let arg_name = argument.get("name").and_then(Value::as_str).unwrap_or_default();
    let arg_value = argument.get("value").and_then(Value::as_str).unwrap_or_default();
    let values = match reference.get("type").and_then(Value::as_str) {
        Some("ref/prompt") => {
            let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
            let prompt = snapshot
                .prompt(name)
                .filter(|_| request.ctx.may_use(Item::Prompt(name)))
                .ok_or_else(|| RpcError::invalid_params(format!("Unknown prompt: {name}")))?;
            prompt.handler.complete(arg_name, arg_value)
        }
        Some("ref/resource") => {
            let uri = reference.get("uri").and_then(Value::as_str).unwrap_or_default();
            let template = snapshot
                .template(uri)
                .filter(|_| request.ctx.may_use(Item::Resource(uri)))
                .ok_or_else(|| RpcError::invalid_params(format!("Unknown resource template: {uri}")))?;
            template.handler.complete(arg_name, arg_value)
        }
        _ => return Err(RpcError::invalid_params("Invalid params: unknown ref type").into()),
    };
    let total = values.len();
    let values: Vec<String> = values.into_iter().take(100).collect();
    let completion = Completion { has_more: Some(total > values.len()), total: Some(total as u64), values };
    Ok(McpReply::complete(json!({ "completion": completion })))
}

fn list_resources(snapshot: &Snapshot, request: &McpRequest, page_size: usize) -> Result<McpReply, McpError> {
    let start = page_start(request)?;
    let ctx = &request.ctx;
    let resources: Vec<protocol::Resource> = snapshot
        .resources
        .iter()
        .filter(|r| ctx.may_use(Item::Resource(&r.definition.uri)))
        .map(|r| {
            let requirements = ctx.requirements(Item::Resource(&r.definition.uri));
            protocol::Resource { meta: with_requirements(&r.definition.meta, requirements), ..r.definition.clone() }
        })
        .collect();
    Ok(page("resources", resources, start, page_size, ctx.lists_are_private()))
}

fn list_templates(snapshot: &Snapshot, request: &McpRequest, page_size: usize) -> Result<McpReply, McpError> {
    let start = page_start(request)?;
    let ctx = &request.ctx;
    let templates: Vec<protocol::ResourceTemplate> = snapshot
        .templates
        .iter()
        .filter(|t| ctx.may_use(Item::Resource(&t.definition.uri_template)))
        .map(|t| {
            let requirements = ctx.requirements(Item::Resource(&t.definition.uri_template));
            protocol::ResourceTemplate {
                meta: with_requirements(&t.definition.meta, requirements),
                ..t.definition.clone()
            }
        })
        .collect();
    Ok(page("resourceTemplates", templates, start, page_size, ctx.lists_are_private()))
}

/// `resources/read`: a registered resource, else the first template that matches. Unknown URIs
/// are an error with the code of the request's era; never an empty `contents`.
fn read_resource(snapshot: &Snapshot, request: McpRequest) -> Result<Step, McpError> {
    let uri = request.str_param("uri")?.to_owned();
    let scope = if request.ctx.lists_are_private() { CacheScope::Private } else { CacheScope::Public };
    let read = if let Some(resource) = snapshot.resource(&uri) {
        let ctx = ToolContext::new(request.ctx, &request.params);
        resource.handler.clone().read(ctx)
    } else if let Some((template, variables)) =
        snapshot.templates.iter().find_map(|t| t.matcher.matches(&uri).map(|vars| (t, vars)))
    {
        let ctx = ToolContext::new(request.ctx, &request.params);
        template.handler.clone().read(ctx, uri.clone(), variables)
    } else {
        return Err(request.ctx.resource_not_found(&uri).into());
    };
    Ok(Step::Read { read, uri, scope })
}
