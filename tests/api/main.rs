//! The integration suite: one binary, every test run against both stores.
//!
//! The embedded leg always runs. The MongoDB leg runs when the tests are built with
//! `TEST_MONGODB_URL` set (CI sets it to the FerretDB that `scripts/ferretdb.sh` starts) and is
//! otherwise reported as ignored by the runner (build.rs decides); in CI (`CI=true`) a missing
//! URL fails the MongoDB tests instead of leaving them out.

mod helpers;
mod team_helpers;

mod admin;
mod api_keys;
mod audit;
mod audit_integrity;
mod concurrency;
mod crash;
mod crash_teams;
mod deploy;
mod docs;
mod documents;
mod email_index;
mod examples;
mod hardening_auth;
mod hardening_http;
mod hardening_names;
mod hardening_ops;
mod hardening_races;
mod health;
mod idempotency;
mod invitations;
mod multi_instance;
mod ops;
mod orgs;
mod outage;
mod reconcile_race;
mod rename_large;
mod security;
mod sessions;
mod teams;
mod teams_migration;
mod tenant_layout;
mod tenant_migration;
mod tokens;
