//! # org-service
//!
//! A multi-tenant organization management service: a company signs up an organization with its
//! admin; the service keeps organization metadata in a master store, gives every tenant its own
//! collection `org_<slug>`, and lets that admin log in (JWT), rename and delete the organization.
//!
//! ## Module map
//! - [`config`]: configuration from the environment; errors name the variable.
//! - [`startup`]: [`startup::App`] builds the store, state and router; runs until shutdown,
//!   with the background tasks (reconciler, rate-limit upkeep).
//! - [`router`]: the routes, the docs and the middleware stack (no side effects).
//! - [`demo`]: the demo organizations, seeded at start-up in demo mode.
//! - [`server`]: the accept loop with its connection cap and silent/idle deadlines.
//! - [`routes`]: HTTP handlers, one module per resource, each with its OpenAPI annotation.
//! - [`extract`]: JSON/query extractors that reject with the FastAPI-shaped error envelope, and
//!   the `AuthAdmin` guard.
//! - [`error`]: [`error::ApiError`], the one place statuses are decided.
//! - [`domain`]: validated newtypes (`OrgName`, `Email`, `Password`) and records.
//! - [`auth`]: bcrypt on a bounded pool, JWT keys, refresh tokens, login throttle.
//! - [`storage`]: one trait per concern ([`storage::Store`] is all of them) and the embedded
//!   (SQLite) and MongoDB adapters.
//! - [`client_addr`]: the client's address (peer, or what trusted proxies saw).
//! - [`ratelimit`]: per-client-address limits.
//! - [`metrics`]: Prometheus metrics at `/metrics`.
//! - [`idempotency`]: `Idempotency-Key` on every POST (replay of the first response).
//! - [`failpoint`]: test-only crash and pause points inside multi-step store operations.
//! - [`telemetry`]: tracing subscriber set-up.

pub mod audit_cli;
pub mod audit_log;
pub mod auth;
pub mod client_addr;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod extract;
pub mod failpoint;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod router;
pub mod routes;
pub mod server;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
#[cfg(test)]
mod test_support;
