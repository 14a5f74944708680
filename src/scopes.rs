//! Feature `scopes` (tutorial step 8): which scopes and roles each MCP operation needs, decided
//! where the operation is known (after the JSON-RPC body is parsed), for every operation.
//!
//! The policy comes from `[scopes]` in the configuration:
//! - each operation (`tools/call`, `resources/read`, ...) needs a set of scopes;
//! - a tool, prompt or resource may replace those scopes and/or require one of some roles;
//! - a broader scope implies narrower ones (`implies`);
//! - roles restrict: a caller with roles gets at most the scopes its roles permit, whatever its
//!   token says. A caller without any known role is judged by its token alone, unless
//!   `require_role` is set.
//!
//! A missing scope that the caller could obtain is a 403 step-up challenge
//! (`error="insufficient_scope", scope="<needed plus held>"`); a role that forbids the operation
//! is a 403 without a scope to ask for. Lists show only what the caller may use, with each
//! item's requirements in its `_meta` so clients can ask for the right scopes up front. Each
//! refusal counts in `mcp_auth.authorization.denials`, once per missing scope (see
//! [`crate::observe`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::config::{ItemRule, ScopeSettings};
use crate::error::{AppError, Challenge, StartupError};
use crate::mcp::uri_template::UriTemplate;
use crate::mcp::{AccessControl, Item};
use crate::principal::Principal;

/// The scope and role policy, resolved and checked once at start-up.
///
/// Everything a decision needs is worked out here, in the form a request asks for it: role caps
/// already expanded through `implies`, and for each scope the broader scopes that imply it. A
/// decision then only looks things up; it allocates nothing unless it refuses.
#[derive(Debug)]
pub struct Policy {
    supported: BTreeSet<String>,
    require_role: bool,
    operations: BTreeMap<String, BTreeSet<String>>,
    /// Scope -> every broader scope that implies it, transitively.
    implied_by: BTreeMap<String, BTreeSet<String>>,
    /// Role -> scopes it permits, expanded through `implies`; `None` = all.
    roles: BTreeMap<String, Option<BTreeSet<String>>>,
    tools: BTreeMap<String, Rule>,
    prompts: BTreeMap<String, Rule>,
    /// Exact URIs first, then templates.
    resources: Vec<(ResourceKey, Rule)>,
    resource_metadata: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Rule {
    scopes: Option<BTreeSet<String>>,
    roles: BTreeSet<String>,
}

#[derive(Debug)]
enum ResourceKey {
    Exact(String),
    Template(String, UriTemplate),
}

/// What an operation or item requires, borrowed from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Requirement<'a> {
    scopes: &'a BTreeSet<String>,
    roles: &'a BTreeSet<String>,
}

/// The requirement of operations and items the policy says nothing about.
static NOTHING: BTreeSet<String> = BTreeSet::new();

/// Why a caller may not do something.
#[derive(Debug, PartialEq, Eq)]
enum Denial {
    /// Missing scopes the caller may obtain: step up.
    Scopes(BTreeSet<String>),
    /// The caller's roles forbid it; asking for more scopes will not help.
    Role,
}

impl Policy {
    /// Builds the policy, refusing one that names unknown scopes, roles or items.
    /// `tools` and `prompts` are the names the server offers (checked against the per-item
    /// rules); `None` skips that check.
    pub fn new(
        settings: &ScopeSettings,
        tools: Option<&[String]>,
        prompts: Option<&[String]>,
        resource_metadata: Option<String>,
    ) -> Result<Self, StartupError> {
        let supported: BTreeSet<String> = settings.supported.iter().cloned().collect();
        if supported.contains("offline_access") {
            return Err(StartupError::config(
                "scopes.supported",
                "must not list offline_access (it is not ours to grant)",
            ));
        }
        let known = |key: &str, scopes: &[String]| -> Result<BTreeSet<String>, StartupError> {
            match scopes.iter().find(|s| !supported.contains(*s)) {
                Some(unknown) => {
                    Err(StartupError::config(key, format!("names `{unknown}`, which is not in scopes.supported")))
                }
                None => Ok(scopes.iter().cloned().collect()),
            }
        };
        let mut operations = BTreeMap::new();
        for (operation, scopes) in &settings.operations {
            operations.insert(operation.clone(), known(&format!("scopes.operations.\"{operation}\""), scopes)?);
        }
        let mut implies = BTreeMap::new();
        for (broad, narrow) in &settings.implies {
            known("scopes.implies", std::slice::from_ref(broad))?;
            implies.insert(broad.clone(), known(&format!("scopes.implies.\"{broad}\""), narrow)?);
        }
        let mut roles = BTreeMap::new();
        for (role, scopes) in &settings.roles {
            let permits = if scopes.iter().any(|s| s == "*") {
                None
            } else {
                Some(expand(&implies, &known(&format!("scopes.roles.{role}"), scopes)?))
            };
            roles.insert(role.clone(), permits);
        }
        let mut implied_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for broad in implies.keys() {
            for narrow in expand(&implies, &BTreeSet::from([broad.clone()])) {
                if narrow != *broad {
                    implied_by.entry(narrow).or_default().insert(broad.clone());
                }
            }
        }
        let rule = |key: String, rule: &ItemRule| -> Result<Rule, StartupError> {
            if let Some(unknown) = rule.roles.iter().find(|r| !roles.contains_key(*r)) {
                return Err(StartupError::config(
                    key,
                    format!("names role `{unknown}`, which scopes.roles does not define"),
                ));
            }
            Ok(Rule {
                scopes: rule.scopes.as_deref().map(|s| known(&key, s)).transpose()?,
                roles: rule.roles.iter().cloned().collect(),
            })
        };
        let mut tool_rules = BTreeMap::new();
        for (name, item) in &settings.tools {
            if tools.is_some_and(|names| !names.contains(name)) {
                return Err(StartupError::config(
                    format!("scopes.tools.{name}"),
                    "names a tool this server does not offer",
                ));
            }
            tool_rules.insert(name.clone(), rule(format!("scopes.tools.{name}"), item)?);
        }
        let mut prompt_rules = BTreeMap::new();
        for (name, item) in &settings.prompts {
            if prompts.is_some_and(|names| !names.contains(name)) {
                return Err(StartupError::config(
                    format!("scopes.prompts.{name}"),
                    "names a prompt this server does not offer",
                ));
            }
            prompt_rules.insert(name.clone(), rule(format!("scopes.prompts.{name}"), item)?);
        }
        let mut resources = Vec::new();
        for (uri, item) in &settings.resources {
            let key = format!("scopes.resources.\"{uri}\"");
            let resource_key = if uri.contains('{') {
                let template = UriTemplate::parse(uri).map_err(|problem| StartupError::config(&key, problem))?;
                ResourceKey::Template(uri.clone(), template)
            } else {
                ResourceKey::Exact(uri.clone())
            };
            resources.push((resource_key, rule(key, item)?));
        }
        resources.sort_by_key(|(key, _)| matches!(key, ResourceKey::Template(..)));
        Ok(Policy {
            supported,
            require_role: settings.require_role,
            operations,
            implied_by,
            roles,
            tools: tool_rules,
            prompts: prompt_rules,
            resources,
            resource_metadata,
        })
    }

    /// Every scope the policy knows: the protected-resource metadata's `scopes_supported`.
    pub fn scopes_supported(&self) -> Vec<String> {
        self.supported.iter().cloned().collect()
    }

    /// The scopes an operation needs, for a 401 hint; `None` for an unknown operation.
    pub fn operation_scopes(&self, method: &str, name: Option<&str>) -> Option<Vec<String>> {
        let requirement = self.requirement(method, name)?;
        Some(requirement.scopes.iter().cloned().collect())
    }

    /// Whether the caller's token grants `scope`, itself or through a broader scope.
    fn holds(&self, principal: &Principal, scope: &str) -> bool {
        principal.has_scope(scope)
            || self.implied_by.get(scope).is_some_and(|broader| broader.iter().any(|b| principal.has_scope(b)))
    }

    /// The caps of the roles of `principal` that the policy knows.
    fn role_caps<'a>(&'a self, principal: &'a Principal) -> impl Iterator<Item = &'a Option<BTreeSet<String>>> + 'a {
        principal.roles.iter().filter_map(|role| self.roles.get(role))
    }

    /// Whether the caller's roles permit `scope`: a caller without known roles, or with a role
    /// that permits everything, has no cap.
    fn role_permits(&self, principal: &Principal, scope: &str) -> bool {
        let mut caps = self.role_caps(principal).peekable();
        caps.peek().is_none() || caps.any(|cap| cap.as_ref().is_none_or(|cap| cap.contains(scope)))
    }

    /// What an operation (and the item it names, if any) requires.
    fn requirement(&self, method: &str, name: Option<&str>) -> Option<Requirement<'_>> {
        let base = self.operations.get(method).unwrap_or(&NOTHING);
        let rule = match (method, name) {
            ("tools/call", Some(name)) => self.tools.get(name),
            ("prompts/get", Some(name)) => self.prompts.get(name),
            ("resources/read" | "resources/subscribe" | "resources/unsubscribe", Some(uri)) => self.resource_rule(uri),
            _ => None,
        };
        Some(match rule {
            Some(rule) => Requirement { scopes: rule.scopes.as_ref().unwrap_or(base), roles: &rule.roles },
            None => Requirement { scopes: base, roles: &NOTHING },
        })
    }

    fn resource_rule(&self, uri: &str) -> Option<&Rule> {
        self.resources
            .iter()
            .find(|(key, _)| match key {
                ResourceKey::Exact(exact) => exact == uri,
                // A template's own listing uses the template string as its name.
                ResourceKey::Template(raw, template) => raw == uri || template.matches(uri).is_some(),
            })
            .map(|(_, rule)| rule)
    }

    /// Decides whether `principal` meets `requirement`.
    fn check(&self, principal: &Principal, requirement: Requirement<'_>) -> Result<(), Denial> {
        if self.require_role && self.role_caps(principal).next().is_none() {
            return Err(Denial::Role);
        }
        if !requirement.roles.is_empty() && !principal.roles.iter().any(|r| requirement.roles.contains(r)) {
            return Err(Denial::Role);
        }
        if !requirement.scopes.iter().all(|scope| self.role_permits(principal, scope)) {
            return Err(Denial::Role);
        }
        if requirement.scopes.iter().all(|scope| self.holds(principal, scope)) {
            return Ok(());
        }
        Err(Denial::Scopes(requirement.scopes.iter().filter(|s| !self.holds(principal, s)).cloned().collect()))
    }

    /// The 403 for a denial of `method` (of the item `name`): a step-up challenge naming
    /// everything needed plus what the caller already holds, or a flat refusal when no scope
    /// would help.
    fn refusal(&self, principal: &Principal, denial: Denial, method: &str, name: Option<&str>) -> AppError {
        let what = match name {
            Some(name) => format!("{method} of `{name}`"),
            None => method.to_owned(),
        };
        match &denial {
            Denial::Scopes(missing) => {
                crate::observe::authorization_denied(missing.iter().map(String::as_str), "missing_scope")
            }
            Denial::Role => crate::observe::authorization_denied([], "role"),
        }
        match denial {
            Denial::Scopes(missing) => {
                let mut scope: BTreeSet<String> = principal.scopes.iter().cloned().collect();
                scope.extend(missing.iter().cloned());
                let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
                AppError::Forbidden(Challenge {
                    error: Some("insufficient_scope"),
                    description: Some(format!("{what} requires scope {}", missing.join(" "))),
                    scope: Some(scope.into_iter().collect::<Vec<_>>().join(" ")),
                    resource_metadata: self.resource_metadata.clone(),
                })
            }
            Denial::Role => AppError::Forbidden(Challenge {
                error: Some("insufficient_scope"),
                description: Some(format!("the caller's role does not permit {what}")),
                scope: None,
                resource_metadata: self.resource_metadata.clone(),
            }),
        }
    }

    fn item_requirement(&self, item: Item<'_>) -> Option<Requirement<'_>> {
        match item {
            Item::Tool(name) => self.requirement("tools/call", Some(name)),
            Item::Prompt(name) => self.requirement("prompts/get", Some(name)),
            Item::Resource(uri) => self.requirement("resources/read", Some(uri)),
        }
    }
}

/// `scopes` plus everything they imply, transitively (at start-up only).
fn expand(implies: &BTreeMap<String, BTreeSet<String>>, scopes: &BTreeSet<String>) -> BTreeSet<String> {
    let mut expanded: BTreeSet<String> = BTreeSet::new();
    let mut pending: Vec<&String> = scopes.iter().collect();
    while let Some(scope) = pending.pop() {
        if expanded.insert(scope.clone())
            && let Some(narrower) = implies.get(scope)
        {
            pending.extend(narrower);
        }
    }
    expanded
}

impl AccessControl for Policy {
    fn authorize(
        &self,
        principal: Option<&Principal>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<(), AppError> {
        // Fail closed: with this policy on, every operation needs an authenticated caller.
        let Some(principal) = principal else {
            return Err(AppError::Unauthorized(Challenge {
                resource_metadata: self.resource_metadata.clone(),
                ..Challenge::default()
            }));
        };
        let name = match method {
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => params.get("uri"),
            _ => params.get("name"),
        }
        .and_then(Value::as_str);
        let requirement = self.requirement(method, name).unwrap_or(Requirement { scopes: &NOTHING, roles: &NOTHING });
        self.check(principal, requirement).map_err(|denial| self.refusal(principal, denial, method, name))
    }

    fn challenge(&self, principal: Option<&Principal>, needed: &[String]) -> AppError {
        match principal {
            Some(principal) => {
                let scopes: BTreeSet<String> = needed.iter().cloned().collect();
                let requirement = Requirement { scopes: &scopes, roles: &NOTHING };
                let denial = match self.check(principal, requirement) {
                    Ok(()) => Denial::Scopes(scopes.clone()),
                    Err(denial) => denial,
                };
                self.refusal(principal, denial, "this operation", None)
            }
            None => AppError::Unauthorized(Challenge {
                resource_metadata: self.resource_metadata.clone(),
                ..Challenge::default()
            }),
        }
    }

    fn allows(&self, principal: Option<&Principal>, item: Item<'_>) -> bool {
        match (principal, self.item_requirement(item)) {
            (Some(principal), Some(requirement)) => self.check(principal, requirement).is_ok(),
            _ => false,
        }
    }

    fn requirements(&self, item: Item<'_>) -> Option<Value> {
        let requirement = self.item_requirement(item)?;
        let mut value = Map::new();
        value.insert("requiredScopes".into(), json!(requirement.scopes));
        if !requirement.roles.is_empty() {
            value.insert("requiredRoles".into(), json!(requirement.roles));
        }
        Some(Value::Object(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::principal::Identity;

    fn policy(extra: &str) -> Policy {
        let settings = Settings::from_toml(extra).unwrap();
        Policy::new(
            &settings.scopes,
            None,
            None,
            Some("https://rs.example/.well-known/oauth-protected-resource".into()),
        )
        .unwrap()
    }

    fn caller(scopes: &[&str], roles: &[&str]) -> Principal {
        Principal::new(Identity {
            subject: "u1".into(),
            name: "u1".into(),
            issuer: "https://issuer.example".into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            roles: roles.iter().map(|s| (*s).to_owned()).collect(),
            client_id: None,
            expires_at: None,
            claims: Map::new(),
        })
    }

    fn call(tool: &str) -> Map<String, Value> {
        json!({ "name": tool }).as_object().unwrap().clone()
    }

    #[test]
    fn a_missing_scope_is_a_step_up_challenge_with_needed_plus_held() {
        let policy = policy("");
        let bob = caller(&["mcp:read", "mcp:prompts"], &[]);
        let err = policy.authorize(Some(&bob), "tools/call", &call("echo")).unwrap_err();
        let AppError::Forbidden(challenge) = err else { panic!("403 expected") };
        assert_eq!(challenge.error, Some("insufficient_scope"));
        assert_eq!(challenge.scope.as_deref(), Some("mcp:prompts mcp:read mcp:tools"));
        assert!(challenge.resource_metadata.is_some());
        assert!(policy.authorize(Some(&bob), "prompts/get", &call("greeting")).is_ok());
    }

    #[test]
    fn roles_restrict_and_never_extend() {
        let policy = policy("");
        let guest_with_big_token = caller(&["mcp:read", "mcp:tools"], &["guest"]);
        let err = policy.authorize(Some(&guest_with_big_token), "tools/call", &call("echo")).unwrap_err();
        let AppError::Forbidden(challenge) = err else { panic!() };
        assert_eq!(challenge.scope, None, "no scope would help a guest");
        let admin_without_scope = caller(&["mcp:read"], &["admin"]);
        assert!(policy.authorize(Some(&admin_without_scope), "tools/call", &call("echo")).is_err());
        let user = caller(&["mcp:read", "mcp:tools"], &["user"]);
        assert!(policy.authorize(Some(&user), "tools/call", &call("echo")).is_ok());
    }

    #[test]
    fn broader_scopes_imply_narrower_ones() {
        let policy = policy(
            "[scopes]\nsupported = [\"mcp:read\", \"mcp:tools\", \"mcp:prompts\", \"mcp:admin\"]\n[scopes.implies]\n\"mcp:admin\" = [\"mcp:read\", \"mcp:tools\", \"mcp:prompts\"]",
        );
        let admin = caller(&["mcp:admin"], &[]);
        assert!(policy.authorize(Some(&admin), "tools/call", &call("echo")).is_ok());
    }

    #[test]
    fn item_rules_replace_scopes_and_require_roles_and_lists_follow() {
        let policy = policy(
            "[scopes.tools.nuke]\nscopes = [\"mcp:tools\"]\nroles = [\"admin\"]\n[scopes.tools.peek]\nscopes = [\"mcp:read\"]",
        );
        let user = caller(&["mcp:read", "mcp:tools"], &["user"]);
        assert!(policy.authorize(Some(&user), "tools/call", &call("nuke")).is_err());
        assert!(!policy.allows(Some(&user), Item::Tool("nuke")));
        let reader = caller(&["mcp:read"], &[]);
        assert!(policy.allows(Some(&reader), Item::Tool("peek")));
        assert!(!policy.allows(Some(&reader), Item::Tool("echo")));
        assert_eq!(
            policy.requirements(Item::Tool("nuke")).unwrap(),
            json!({ "requiredScopes": ["mcp:tools"], "requiredRoles": ["admin"] })
        );
    }

    #[test]
    fn require_role_refuses_callers_without_a_known_role() {
        let policy = policy("[scopes]\nrequire_role = true");
        let nobody = caller(&["mcp:read"], &["uma_authorization"]);
        assert!(policy.authorize(Some(&nobody), "tools/list", &Map::new()).is_err());
    }

    #[test]
    fn a_policy_naming_unknowns_stops_start_up() {
        let settings = Settings::from_toml("[scopes.operations]\n\"tools/call\" = [\"mcp:write\"]").unwrap();
        let err = Policy::new(&settings.scopes, None, None, None).unwrap_err().to_string();
        assert!(err.contains("mcp:write") && err.contains("scopes.operations"), "{err}");
        let settings = Settings::from_toml("[scopes.tools.ghost]\nroles = [\"admin\"]").unwrap();
        let names = ["echo".to_owned()];
        let err = Policy::new(&settings.scopes, Some(&names), None, None).unwrap_err().to_string();
        assert!(err.contains("scopes.tools.ghost"), "{err}");
        let settings = Settings::from_toml("[scopes.tools.echo]\nroles = [\"wizard\"]").unwrap();
        assert!(Policy::new(&settings.scopes, Some(&names), None, None).unwrap_err().to_string().contains("wizard"));
    }

    #[test]
    fn no_caller_is_refused() {
        assert!(matches!(policy("").authorize(None, "tools/list", &Map::new()), Err(AppError::Unauthorized(_))));
    }
}
