//! Authentication: password hashing off the executor, JWT issue/verify, refresh tokens, the
//! login throttle and the in-process state of API-key checks. The HTTP side of it (the `AuthAdmin` guard) is in [`crate::extract`]: nothing
//! here knows the application state.

pub mod jwt;
pub mod key_guard;
pub mod password;
pub mod refresh;
pub mod throttle;

pub use jwt::{Claims, TokenKeys};
pub use password::PasswordHasher;
