//! The checks JWTs and introspection answers share (feature `jwt`): why a token is refused
//! ([`Rejection`]), time claims with leeway, the audience. A leaf module: [`super::verify`] and
//! [`super::introspect`] both use it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Why a token was refused. The [`description`](Rejection::description) goes to the client;
/// the `Display` form, with `kid` or subject but never the token, goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a compact JWS, bad base64url, bad JSON, a `crit` header.
    Malformed(&'static str),
    /// `alg` is not on the allow-list (this includes `none` and HMAC).
    Algorithm(String),
    /// No key with this `kid` (or no `kid` and several keys).
    UnknownKey(Option<String>),
    /// The signature does not verify with the selected key.
    Signature { kid: String },
    /// A required claim is missing or has the wrong type.
    Claim { claim: &'static str, sub: Option<String> },
    /// `exp` (plus leeway) has passed.
    Expired { sub: String },
    /// `nbf` is in the future (beyond leeway).
    NotYetValid { sub: String },
    /// `iat` is in the future (beyond leeway).
    IssuedInFuture { sub: String },
    /// `iss` is not the configured issuer.
    Issuer { sub: String },
    /// `iss` names no trusted issuer (read before the signature, to route the token).
    UnknownIssuer,
    /// The introspection endpoint says the (opaque) token is not active.
    Inactive,
    /// `aud` does not name this server.
    Audience { sub: String },
    /// No `aud` claim, and the audience is enforced.
    NoAudience { sub: String },
    /// The embedded issuer revoked the token's grant (see [`super::revoked`]).
    Revoked { sub: String },
    /// Whether the token's grant was revoked cannot be read from the store right now: not a
    /// verdict on the token, and answered 503 (fail closed).
    Unavailable,
}

impl Rejection {
    /// The reason as a metric label (`mcp_auth.authentication.failures`): a word per kind.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::Algorithm(_) => "algorithm",
            Rejection::UnknownKey(_) => "unknown_key",
            Rejection::Signature { .. } => "signature",
            Rejection::Claim { .. } => "claim",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::IssuedInFuture { .. } => "issued_in_future",
            Rejection::Issuer { .. } | Rejection::UnknownIssuer => "issuer",
            Rejection::Inactive => "inactive",
            Rejection::Audience { .. } => "audience",
            Rejection::NoAudience { .. } => "no_audience",
            Rejection::Revoked { .. } => "revoked",
            Rejection::Unavailable => "unavailable",
        }
    }

    /// A short reason for `error_description`.
    pub fn description(&self) -> &'static str {
        match self {
            Rejection::Malformed(what) => what,
            Rejection::Algorithm(_) => "signature algorithm not accepted",
            Rejection::UnknownKey(_) => "unknown signing key",
            Rejection::Signature { .. } => "invalid signature",
            Rejection::Claim { claim: "exp", .. } => "token has no valid exp claim",
            Rejection::Claim { claim: "sub", .. } => "token has no valid sub claim",
            Rejection::Claim { .. } => "token has an invalid claim",
            Rejection::Expired { .. } => "token expired",
            Rejection::NotYetValid { .. } => "token not yet valid",
            Rejection::IssuedInFuture { .. } => "token issued in the future",
            Rejection::Issuer { .. } | Rejection::UnknownIssuer => "wrong issuer",
            Rejection::Inactive => "token not active",
            Rejection::Audience { .. } => "token not issued for this resource",
            Rejection::NoAudience { .. } => "token has no audience",
            Rejection::Revoked { .. } => "token revoked",
            Rejection::Unavailable => "cannot check the token right now; try again shortly",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())?;
        // `alg` and `kid` come from whoever sent the token: cut them short in the log.
        match self {
            Rejection::Algorithm(alg) => write!(f, " (alg {:?})", short(alg)),
            Rejection::UnknownKey(Some(kid)) | Rejection::Signature { kid } => write!(f, " (kid {:?})", short(kid)),
            Rejection::UnknownKey(None) => f.write_str(" (no kid)"),
            Rejection::Claim { sub: Some(sub), .. }
            | Rejection::Expired { sub }
            | Rejection::NotYetValid { sub }
            | Rejection::IssuedInFuture { sub }
            | Rejection::Issuer { sub }
            | Rejection::Audience { sub }
            | Rejection::NoAudience { sub }
            | Rejection::Revoked { sub } => write!(f, " (sub {sub:?})"),
            _ => Ok(()),
        }
    }
}

/// At most 64 bytes of `text`, cut at a character boundary.
fn short(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `exp`, `nbf` and `iat` against `now`, with `leeway` seconds of clock skew.
pub fn check_times(
    leeway: i64,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    now: i64,
    sub: &str,
) -> Result<(), Rejection> {
    if now > exp.saturating_add(leeway) {
        return Err(Rejection::Expired { sub: sub.to_owned() });
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(Rejection::NotYetValid { sub: sub.to_owned() });
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(Rejection::IssuedInFuture { sub: sub.to_owned() });
    }
    Ok(())
}

/// `aud` against the `accepted` audiences (`None`: not enforced). Without an `aud`, `required`
/// decides (a JWT must have one; an introspection answer need not).
pub fn check_audience(
    accepted: Option<&[String]>,
    aud: Option<&Value>,
    required: bool,
    sub: String,
) -> Result<(), Rejection> {
    let Some(accepted) = accepted else { return Ok(()) };
    let named = |aud: &str| accepted.iter().any(|a| a == aud);
    match aud {
        None if required => Err(Rejection::NoAudience { sub }),
        None => Ok(()),
        Some(Value::String(aud)) if named(aud) => Ok(()),
        Some(Value::Array(auds)) if auds.iter().filter_map(Value::as_str).any(named) => Ok(()),
        Some(_) => Err(Rejection::Audience { sub }),
    }
}

/// A JWT NumericDate: seconds since the epoch, possibly fractional (rounded down).
pub fn numeric_date(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64)),
        _ => None,
    }
}
