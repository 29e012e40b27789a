//! The integration suite: one binary, every test run against both stores.
//!
//! The embedded leg always runs. The MongoDB leg runs when `TEST_MONGODB_URL` is set (CI sets it
//! to the FerretDB that `scripts/ferretdb.sh` starts); in CI (`CI=true`) a missing URL fails the
//! MongoDB tests instead of skipping them.

mod helpers;

mod admin;
mod concurrency;
mod crash;
mod deploy;
mod docs;
mod health;
mod multi_instance;
mod ops;
mod orgs;
mod outage;
mod rename_large;
mod security;
mod sessions;
mod tokens;
