//! The authenticated caller. The `jwt` layer creates a [`Principal`] from a validated token and
//! puts it into the request extensions; everything after it (session binding, scope checks,
//! tools) reads it from there. No feature gate: without `jwt` there is simply no principal.

use std::collections::BTreeSet;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use serde_json::{Map, Value};

use crate::error::{AppError, Challenge};

/// Who is calling, as established by a validated access token. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Principal(Arc<Identity>);

/// The fields of a [`Principal`].
#[derive(Debug)]
pub struct Identity {
    /// `sub` claim.
    pub subject: String,
    /// A display name: `preferred_username`, else `name`, else the subject.
    pub name: String,
    /// `iss` claim.
    pub issuer: String,
    /// Scopes granted to the token (`scope` string or `scp` array).
    pub scopes: BTreeSet<String>,
    /// Roles from the configured claim paths.
    pub roles: BTreeSet<String>,
    /// `client_id` (or `azp`) of the OAuth client the token was issued to, if stated.
    pub client_id: Option<String>,
    /// `exp` claim, seconds since the Unix epoch.
    pub expires_at: Option<i64>,
    /// Every claim of the token, for tools that need more.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// Wraps an identity.
    pub fn new(identity: Identity) -> Self {
        Principal(Arc::new(identity))
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// The stable identity of the caller across token refreshes: issuer and subject. Sessions
    /// and request state are bound to this, never to the token string.
    pub fn owner_key(&self) -> (&str, &str) {
        (&self.issuer, &self.subject)
    }
}

impl Deref for Principal {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.0
    }
}

/// Extracting a `Principal` refuses the request with 401 when no layer authenticated it.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| AppError::Unauthorized(Challenge::default()))
    }
}

/// `Option<Principal>`: `None` when the request is unauthenticated (no `jwt` layer).
impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}
