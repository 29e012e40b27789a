//! Authentication: password hashing off the executor, JWT issue/verify, refresh tokens and the
//! login throttle. The HTTP side of it (the `AuthAdmin` guard) is in [`crate::extract`]: nothing
//! here knows the application state.

pub mod jwt;
pub mod password;
pub mod refresh;
pub mod throttle;

pub use jwt::{Claims, TokenKeys};
pub use password::PasswordHasher;
