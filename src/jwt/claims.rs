//! From validated claims to a [`Principal`] (feature `jwt`): subject, display name, scopes,
//! roles from configurable claim paths, client, expiry, and the raw claims.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::principal::{Identity, Principal};

/// Where roles are read from: dotted claim paths such as `realm_access.roles` or
/// `resource_access.my-client.roles`. A claim whose whole name is the path is read as it is:
/// namespaced claims are URLs, dots included (Auth0: `https://example.com/roles`).
#[derive(Debug, Clone)]
pub struct RoleClaims(Vec<(String, Vec<String>)>);

impl RoleClaims {
    pub fn new(paths: &[String]) -> Self {
        RoleClaims(
            paths.iter().map(|p| (p.trim().to_owned(), p.split('.').map(|s| s.trim().to_owned()).collect())).collect(),
        )
    }

    /// Every string found at any of the paths (an array of strings, or one space-separated
    /// string).
    fn collect(&self, claims: &Map<String, Value>) -> BTreeSet<String> {
        let mut roles = BTreeSet::new();
        for (name, path) in &self.0 {
            if let Some(value) = claims.get(name.as_str()) {
                roles.extend(strings(Some(value)));
                continue;
            }
            let mut segments = path.iter();
            let Some(first) = segments.next() else { continue };
            let mut value = claims.get(first.as_str());
            for segment in segments {
                value = value.and_then(|v| v.get(segment.as_str()));
            }
            roles.extend(strings(value));
        }
        roles
    }
}

/// The strings of a claim that is an array of strings or a space-separated string.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// Builds the principal of a token whose signature, issuer, audience and times were checked.
/// `sub` must be a non-empty string.
pub fn principal(claims: Map<String, Value>, roles: &RoleClaims) -> Option<Principal> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    let subject = text("sub")?.to_owned();
    let name = text("preferred_username").or_else(|| text("name")).unwrap_or(&subject).to_owned();
    let issuer = text("iss")?.to_owned();
    // `scope` (RFC 8693/9068, space-separated) and `scp` (Entra, Okta: string or array).
    let mut scopes: BTreeSet<String> = strings(claims.get("scope")).into_iter().collect();
    scopes.extend(strings(claims.get("scp")));
    // The client: `client_id` (RFC 9068), `azp` (OpenID Connect; Entra, Keycloak, Auth0), `cid` (Okta).
    let client_id = text("client_id").or_else(|| text("azp")).or_else(|| text("cid")).map(str::to_owned);
    let expires_at = claims.get("exp").and_then(Value::as_f64).map(|e| e.floor() as i64);
    let roles = roles.collect(&claims);
    Some(Principal::new(Identity { subject, name, issuer, scopes, roles, client_id, expires_at, claims }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn scopes_come_from_scope_and_scp_in_either_shape() {
        let roles = RoleClaims::new(&[]);
        let p = principal(claims(json!({"sub": "a", "iss": "i", "scope": "x y", "scp": ["z"]})), &roles).unwrap();
        assert_eq!(p.scopes.iter().map(String::as_str).collect::<Vec<_>>(), ["x", "y", "z"]);
        let p = principal(claims(json!({"sub": "a", "iss": "i", "scp": "read write"})), &roles).unwrap();
        assert!(p.has_scope("read") && p.has_scope("write"));
    }

    #[test]
    fn roles_follow_dotted_paths_including_keycloak_client_roles() {
        let roles = RoleClaims::new(&[
            "roles".to_owned(),
            "realm_access.roles".to_owned(),
            "resource_access.mcp-client.roles".to_owned(),
        ]);
        let p = principal(
            claims(json!({
                "sub": "a", "iss": "i",
                "roles": ["admin"],
                "realm_access": { "roles": ["user"] },
                "resource_access": { "mcp-client": { "roles": ["tools"] }, "other": { "roles": ["nope"] } },
            })),
            &roles,
        )
        .unwrap();
        assert_eq!(p.roles.iter().map(String::as_str).collect::<Vec<_>>(), ["admin", "tools", "user"]);
    }

    #[test]
    fn a_namespaced_claim_with_dots_in_its_name_is_read_whole() {
        let roles = RoleClaims::new(&["https://mcp.example.com/roles".to_owned()]);
        let p = principal(
            claims(json!({"sub": "a", "iss": "i", "https://mcp.example.com/roles": ["admin"], "https://mcp": {"example": {"com/roles": ["nope"]}}})),
            &roles,
        )
        .unwrap();
        assert_eq!(p.roles.iter().map(String::as_str).collect::<Vec<_>>(), ["admin"]);
        // Without the literal claim, the dotted path is walked as before.
        let p = principal(
            claims(json!({"sub": "a", "iss": "i", "https://mcp": {"example": {"com/roles": ["nested"]}}})),
            &roles,
        );
        assert_eq!(p.unwrap().roles.iter().map(String::as_str).collect::<Vec<_>>(), ["nested"]);
    }

    #[test]
    fn name_prefers_preferred_username_then_name_then_subject() {
        let roles = RoleClaims::new(&[]);
        let p = principal(claims(json!({"sub": "s", "iss": "i", "name": "N", "preferred_username": "pu"})), &roles);
        assert_eq!(p.unwrap().name, "pu");
        let p = principal(claims(json!({"sub": "s", "iss": "i", "name": "N"})), &roles);
        assert_eq!(p.unwrap().name, "N");
        let p = principal(claims(json!({"sub": "s", "iss": "i", "azp": "cli"})), &roles).unwrap();
        assert_eq!((p.name.as_str(), p.client_id.as_deref()), ("s", Some("cli")));
        let p = principal(claims(json!({"sub": "s", "iss": "i", "cid": "okta-client"})), &roles).unwrap();
        assert_eq!(p.client_id.as_deref(), Some("okta-client"));
    }

    #[test]
    fn a_token_without_subject_has_no_principal() {
        assert!(principal(claims(json!({"iss": "i"})), &RoleClaims::new(&[])).is_none());
        assert!(principal(claims(json!({"iss": "i", "sub": ""})), &RoleClaims::new(&[])).is_none());
    }
}
