//! # mcp-auth-server
//!
//! A Model Context Protocol server over HTTP, secured as an OAuth 2.1 protected resource, and a
//! tutorial: each Cargo feature adds one layer, and each step of the README is a feature set.
//!
//! # Features
//! | feature | module | adds |
//! |---|---|---|
//! | (none) | [`health`] | step 1: `GET /health` |
//! | `mcp` | `mcp` | step 2: JSON-RPC + MCP lifecycle of both eras on `/mcp` |
//! | `tools` | `tools` | steps 3-4: tool and prompt definitions, and their dispatch |
//! | `jwt` | `jwt` | steps 5-6: keys, JWKS, token minting, access-token validation on `/mcp` |
//! | `oauth-meta` | `oauth_meta` | step 7: protected-resource and authorization-server metadata |
//! | `scopes` | `scopes` | step 8: scope and role authorization per MCP operation |
//! | `jwt` | `token_exchange` | tools' downstream tokens: the caller's token exchanged (RFC 8693), cached |
//! | `issuer` | `issuer` | step 10: an embedded OAuth 2.1 authorization server (sign-in, consent, tokens) |
//! | `mcp` | `store` | the storage contract for state that outlives a request, and its `memory:` backend |
//! | `store-sqlite` | `store_sqlite` | that contract on an SQLite file: state survives a restart (one instance) |
//! | `store-redis` | `store_redis` | that contract on Redis: state shared by several instances |
//! | `otel` | `otel` | traces over OTLP/HTTP: a span per HTTP and per MCP request (`telemetry.otlp_endpoint`) |
//!
//! # Layout
//! - [`config`] — typed settings, layered from files and environment.
//! - [`telemetry`] — logging, and the hooks exported traces use.
//! - [`observe`] — the metric names and the functions that record them (a no-op until
//!   [`admin`] installs the recorder).
//! - [`admin`] — the admin listener: `/metrics`, the detailed health report, the probes.
//! - [`error`] — HTTP-level refusals and start-up errors (each protocol maps its own errors: see
//!   there).
//! - [`router`] — the composition root, the only place that switches layers per feature.
//! - [`guard`] — DNS-rebinding protection: the `Host` and `Origin` allow-list.
//! - [`serve`] — accepting connections, graceful shutdown.
//! - [`principal`] — the authenticated caller, as later layers see it.

pub mod admin;
pub mod config;
pub mod error;
pub mod guard;
pub mod health;
pub mod observe;
pub mod principal;
pub mod router;
pub mod serve;
pub mod telemetry;

#[cfg(feature = "issuer")]
pub mod issuer;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(feature = "oauth-meta")]
pub mod oauth_meta;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "scopes")]
pub mod scopes;
#[cfg(feature = "mcp")]
pub mod store;
#[cfg(feature = "store-redis")]
pub mod store_redis;
#[cfg(feature = "store-sqlite")]
pub mod store_sqlite;
#[cfg(feature = "jwt")]
pub mod token_exchange;
#[cfg(feature = "tools")]
pub mod tools;

pub use config::Settings;
pub use router::{AppBuilder, app};
